/**
 * COPY and ADD: the sources (the context, a heredoc, ADD's URLs, or another stage or image with
 * --from) are collected and hashed for the step's key; on a miss they are copied into a fresh
 * root (copy.ts), ADD unpacking local archives first. Temporary trees are removed afterwards.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { TsrunError } from '../errors.js';
import { decompress } from '../layers/compression.js';
import { archiveKind } from '../layers/sniff.js';
import { unpackTar } from '../layers/unpack.js';
import type { ContainerConfig } from '../oci/schemas.js';
import { readFileInRoot } from '../snapshot/rootfs-copy.js';
import { stateId, type BuildState } from './cache.js';
import { applySources, collectSources, hashSources, type Source, type SourceRoot } from './copy.js';
import type { Instruction, Stage } from './dockerfile.js';
import { resolveChown } from './evaluate.js';
import { downloadUrls, heredocFiles } from './sources.js';
import type { StepRoot } from './step-root.js';
import { derive, parseMode, stageRef, type StepHost } from './state.js';
import { expandWord, expandWords } from './words.js';

export async function copyInstruction(
  b: StepHost,
  stage: Stage,
  ins: Instruction,
  state: BuildState,
  config: ContainerConfig,
  vars: Map<string, string>,
): Promise<BuildState> {
  const esc = b.df.escape;
  const heredoc = ins.heredoc
    ? await heredocFiles(b.deps.store.tempPath('heredoc'), ins, vars, b.df.escape)
    : undefined;
  let remote: { dir: string; names: string[] } | undefined;
  try {
    const words = heredoc
      ? heredoc.words
      : ins.json
        ? ins.json.map((w) => expandWord(w, vars, esc))
        : expandWords(ins.args, vars, esc);
    if (words.length < 2)
      throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: ${ins.keyword} needs a source and a destination`);
    const dest = words[words.length - 1] as string;
    const what = heredoc ? ins.text : `${ins.keyword} ${words.join(' ')}`;
    const isUrl = (p: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(p);
    const urls = ins.keyword === 'ADD' ? words.slice(0, -1).filter(isUrl) : [];
    const patterns = words.slice(0, -1).filter((p) => !urls.includes(p));
    if (ins.keyword === 'COPY' && words.slice(0, -1).some(isUrl)) {
      throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: COPY cannot fetch URLs`, {
        hint: 'use ADD for a URL',
      });
    }
    if (urls.length > 0) remote = await downloadUrls(b.deps.store.tempPath('add-url'), urls, ins.line);
    const chown = ins.flags.chown !== undefined ? expandWord(ins.flags.chown, vars, esc) : undefined;
    const chmod = ins.flags.chmod !== undefined ? parseMode(expandWord(ins.flags.chmod, vars, esc)) : undefined;
    const fromRef = ins.flags.from !== undefined ? expandWord(ins.flags.from, vars, esc) : undefined;
    const workdir = config.WorkingDir || '/';
    const key = ['COPY', ins.keyword, dest, workdir, chown, chmod];

    const apply = (sources: Source[], keepOwners: boolean) => async (root: StepRoot) => {
      const owner =
        chown !== undefined
          ? resolveChown(
              chown,
              await readFileInRoot(root.rootfs, '/etc/passwd'),
              await readFileInRoot(root.rootfs, '/etc/group'),
            )
          : undefined;
      // ADD extracts local archives only (never heredocs or downloads, as Docker).
      const local = (src: Source) => !heredoc && !(remote && src.entries[0]?.abs.startsWith(`${remote.dir}/`));
      const expanded =
        ins.keyword === 'ADD' ? await extractArchives(b, sources, local) : { sources, cleanup: async () => {} };
      try {
        await applySources(root.rootfs, expanded.sources, { dest, workdir, owner, keepOwners, chmod, what });
      } finally {
        await expanded.cleanup();
      }
    };

    if (fromRef !== undefined && !heredoc) {
      if (/^\d+$/.test(fromRef) && Number(fromRef) >= stage.index) {
        throw new TsrunError(
          'ERR_DOCKERFILE',
          `line ${ins.line}: COPY --from=${fromRef} refers to a stage that is not before this one`,
        );
      }
      const idx = stageRef(b.df, fromRef, stage.index, true);
      const source = idx !== undefined ? (b.built.get(idx) as BuildState) : await b.imageState(fromRef);
      return await b.cached(state, [...key, 'from', stateId(source), patterns], async () =>
        b.withRoot(source, async (srcRoot) => {
          const sources = await collectSources({ dir: srcRoot }, patterns, what);
          const layer = await b.fsStep(state, apply(sources, true));
          return derive(state, `${what} (from ${fromRef})`, () => {}, layer);
        }),
      );
    }
    const root: SourceRoot = heredoc ? { dir: heredoc.dir } : { dir: b.o.contextDir, ...b.o.ignore };
    const sources = [
      ...(patterns.length > 0 ? await collectSources(root, patterns, what) : []),
      ...(remote ? await collectSources({ dir: remote.dir }, remote.names, what) : []),
    ];
    const digest = await hashSources(sources, false);
    return await b.cached(state, [...key, heredoc ? 'heredoc' : 'context', digest], async () => {
      const layer = await b.fsStep(state, apply(sources, false));
      return derive(
        state,
        `${ins.keyword} ${heredoc ? 'heredoc ' : ''}${digest.slice(0, 19)} in ${dest}`,
        () => {},
        layer,
      );
    });
  } finally {
    for (const d of [heredoc?.dir, remote?.dir]) if (d) await fs.rm(d, { recursive: true, force: true });
  }
}

/** ADD: tar sources (by content) are unpacked into temporary trees whose contents are copied. */
async function extractArchives(
  b: StepHost,
  sources: Source[],
  extractable: (s: Source) => boolean,
): Promise<{ sources: Source[]; cleanup: () => Promise<void> }> {
  const temps: string[] = [];
  const out: Source[] = [];
  for (const s of sources) {
    const top = s.entries[0];
    const kind = top && top.st.isFile() && extractable(s) ? await archiveKind(top.abs) : undefined;
    if (!top || kind === undefined) {
      out.push(s);
      continue;
    }
    const dir = b.deps.store.tempPath('add');
    temps.push(dir);
    await fs.mkdir(dir, { mode: 0o755 });
    await unpackTar(decompress(createReadStream(top.abs), kind), dir, {
      ...b.unpackAs,
      overlayXattrPrefix: b.xattrPrefix,
    });
    out.push(...(await collectSources({ dir }, ['.'], `ADD ${s.name}`)));
  }
  return {
    sources: out,
    cleanup: async () => {
      for (const t of temps) await fs.rm(t, { recursive: true, force: true });
    },
  };
}
