/**
 * Where COPY/ADD sources come from besides the build context: heredocs written out as files, and
 * ADD's URLs fetched. Each writes into a directory the caller names (under the store's tmp/) and
 * removes on failure; on success the caller removes it after the copy.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TsrunError, isTsrunError } from '../errors.js';
import type { Instruction } from './dockerfile.js';
import { expandHeredoc, expandWord, rawWords } from './words.js';

/**
 * `COPY <<EOF /dest` (BuildKit's heredocs): each heredoc becomes a file named after its
 * delimiter, in `dir` (made here), which the copy then reads from (the caller removes it); an
 * unquoted delimiter expands variables in the body, a quoted one keeps it as written; `<<-`
 * strips leading tabs. Returns the directory and the COPY's words (file names, destination).
 */
export async function heredocFiles(
  dir: string,
  ins: Instruction,
  vars: Map<string, string>,
  esc: string,
): Promise<{ dir: string; words: string[] }> {
  const [first = '', ...lines] = ins.args.split('\n');
  const docs: { name: string; strip: boolean; expand: boolean }[] = [];
  const rest: string[] = [];
  for (const t of rawWords(first, esc)) {
    const m = /^<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2$/.exec(t);
    if (m) docs.push({ name: m[3] as string, strip: m[1] === '-', expand: m[2] === '' });
    else rest.push(t);
  }
  if (rest.length !== 1)
    throw new TsrunError(
      'ERR_DOCKERFILE',
      `line ${ins.line}: ${ins.keyword} <<NAME takes one destination after its heredocs`,
    );
  await fs.mkdir(dir, { mode: 0o755 });
  try {
    let i = 0;
    for (const d of docs) {
      const end = lines.indexOf(d.name, i);
      if (end < 0)
        throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: heredoc ${d.name} has no closing ${d.name} line`);
      let body =
        lines
          .slice(i, end)
          .map((l) => (d.strip ? l.replace(/^\t+/, '') : l))
          .join('\n') + '\n';
      if (d.expand) body = expandHeredoc(body, vars, esc);
      await fs.writeFile(path.join(dir, d.name), body, { mode: 0o644 });
      await fs.utimes(path.join(dir, d.name), 0, 0);
      i = end + 1;
    }
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, words: [...docs.map((d) => d.name), expandWord(rest[0] as string, vars, esc)] };
}

/** ADD <url>...: each URL fetched into `dir` (made here, removed on failure), mode 0600, Last-Modified as its time. */
/**
 * ADD <url>: each URL is fetched (on every build, as Docker does: the cache key is its content)
 * into a temporary directory, as a file named after the URL's last path segment, mode 0600,
 * with the Last-Modified time when the server gives one. Never extracted.
 */
export async function downloadUrls(
  dir: string,
  urls: readonly string[],
  line: number,
): Promise<{ dir: string; names: string[] }> {
  const { default: fetch } = await import('node-fetch');
  const { tlsAgent } = await import('../registry/http.js');
  await fs.mkdir(dir, { mode: 0o755 });
  const names: string[] = [];
  try {
    for (const u of urls) {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new TsrunError('ERR_DOCKERFILE', `line ${line}: ADD ${u}: only http and https URLs can be fetched`);
      const name = decodeURIComponent(url.pathname.split('/').filter(Boolean).pop() ?? '') || 'index.html';
      if (name.includes('/') || name === '.' || name === '..' || names.includes(name))
        throw new TsrunError('ERR_DOCKERFILE', `line ${line}: ADD ${u}: cannot name a file after this URL`);
      const res = await fetch(u, {
        redirect: 'follow',
        agent: (parsed: URL) => (parsed.protocol === 'https:' ? tlsAgent() : undefined),
      });
      if (!res.ok || !res.body)
        throw new TsrunError('ERR_BUILD_STEP', `ADD ${u}: the server answered ${res.status} ${res.statusText}`);
      const file = path.join(dir, name);
      await pipeline(res.body, createWriteStream(file, { mode: 0o600 }));
      const modified = Date.parse(res.headers.get('last-modified') ?? '');
      const t = Number.isNaN(modified) ? new Date(0) : new Date(modified);
      await fs.utimes(file, t, t);
      names.push(name);
    }
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    if (isTsrunError(err)) throw err;
    throw new TsrunError('ERR_BUILD_STEP', `ADD: fetching ${urls.join(', ')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { dir, names };
}
