/**
 * COPY and ADD: choosing sources (globs, .dockerignore), hashing them for the build cache, and
 * writing them into a step's root filesystem (Dockerfile reference: "COPY", "ADD",
 * ".dockerignore file").
 *
 * Untrusted on both sides. A source root (the build context, or another stage's root) is read
 * with scoped resolution (`resolveInRoot`): `..` stops at its root and symlinks resolve inside it,
 * so `COPY ../secret` or a context symlink to /etc/passwd cannot reach host files; inside a copied
 * tree links are copied as links. The destination is the image's root: its symlinks are likewise
 * resolved inside it, and nothing is written through a link.
 *
 * Rules kept from Docker: a directory source copies its contents; several sources (or a glob
 * matching several) need a destination ending in `/`; a relative destination is under WORKDIR;
 * missing destination directories are created (0755); files are owned by 0:0 unless `--chown`
 * (sources from another stage keep their owners); `--chmod` sets the mode of what is copied.
 * Reproducible: files keep their mtimes, created directories take the newest source mtime, and
 * directories that existed get their mtimes back, so the same sources give the same layer.
 * Hard links among the copied files stay links (one inode in the layer, as Docker's COPY).
 *
 * Speed: a context of 20,000 small files is walked, hashed and copied with synchronous calls,
 * one syscall each: the asynchronous API costs a thread-pool round trip per call (several per
 * file), which made such a COPY slower than podman's (docs/benchmarks.md, "Many small files"). The event
 * loop is given a turn every few hundred entries, so Ctrl-C is still seen.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants as C,
  createReadStream,
  fstatSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  openSync,
  promises as fs,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import type { Ignore } from '@balena/dockerignore';
import { TsrunError } from '../errors.js';
import { cleanPath } from '../layers/unpack.js';
import { resolveInRoot } from '../snapshot/rootfs-copy.js';

export interface SourceRoot {
  dir: string;
  /** Is this path (relative to dir, "a/b") excluded (.dockerignore)? */
  ignores?: (rel: string) => boolean;
  /** Whether excluded directories may hold re-included entries (`!pattern`): then walk them. */
  hasExceptions?: boolean;
}

export interface SourceEntry {
  /** Host path (inside the source root). */
  abs: string;
  /** Path below the source ('' for the source itself). */
  rel: string;
  st: Stats;
}

export interface Source {
  /** The matched path relative to the root ("" for the root). */
  name: string;
  /** The source itself first, then (for a directory) every entry below it, parents first. */
  entries: SourceEntry[];
}

const GLOB = /[*?[]/;

/** Go's filepath.Match for one path segment, as a RegExp. */
export function segmentRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new TsrunError('ERR_DOCKERFILE', `bad pattern "${pattern}": unterminated [`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\(?!.)/g, '\\\\')}]`;
      i = end;
    } else re += ch.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

async function expandGlob(root: SourceRoot, pattern: string): Promise<string[]> {
  let matches = [''];
  for (const seg of pattern.split('/')) {
    const next: string[] = [];
    for (const m of matches) {
      if (!GLOB.test(seg)) {
        next.push(m ? `${m}/${seg}` : seg);
        continue;
      }
      const dir = path.join(root.dir, m);
      const st = await fs.lstat(dir).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      const re = segmentRegExp(seg);
      for (const name of (await fs.readdir(dir)).sort()) if (re.test(name)) next.push(m ? `${m}/${name}` : name);
    }
    matches = next;
  }
  const out: string[] = [];
  for (const m of matches) {
    if (root.ignores?.(m)) continue;
    if (await fs.lstat(path.join(root.dir, m)).catch(() => undefined)) out.push(m);
  }
  return out;
}

/** Every so many entries, let the event loop run (signals, timers) during a long synchronous walk or copy. */
let sinceYield = 0;
async function breathe(): Promise<void> {
  if (++sinceYield % 512 === 0) await new Promise((r) => setImmediate(r));
}

async function walk(root: SourceRoot, abs: string, relInRoot: string, rel: string, out: SourceEntry[]): Promise<void> {
  for (const name of readdirSync(abs).sort()) {
    await breathe();
    const childInRoot = relInRoot ? `${relInRoot}/${name}` : name;
    const childAbs = path.join(abs, name);
    const st = lstatSync(childAbs);
    const ignored = root.ignores?.(childInRoot) ?? false;
    if (ignored && !(st.isDirectory() && root.hasExceptions)) continue;
    const childRel = rel ? `${rel}/${name}` : name;
    if (!ignored) out.push({ abs: childAbs, rel: childRel, st });
    if (st.isDirectory()) await walk(root, childAbs, childInRoot, childRel, out);
  }
}

/**
 * The sources named by `patterns` (as written after COPY/ADD, already expanded), each with every
 * entry it would copy. A pattern that matches nothing is an error naming it.
 */
export async function collectSources(root: SourceRoot, patterns: readonly string[], what: string): Promise<Source[]> {
  const sources: Source[] = [];
  for (const pattern of patterns) {
    const cleaned = cleanPath(pattern);
    const names = GLOB.test(cleaned) ? await expandGlob(root, cleaned) : [cleaned];
    if (names.length === 0) {
      throw new TsrunError('ERR_BUILD_CONTEXT', `${what}: no source files were specified by "${pattern}"`, {
        hint: 'check the pattern against the build context (and .dockerignore)',
      });
    }
    for (const name of names) {
      const abs = await resolveInRoot(root.dir, name);
      const st = await fs.lstat(abs).catch(() => undefined);
      if (!st || (name !== '' && root.ignores?.(name))) {
        throw new TsrunError(
          'ERR_BUILD_CONTEXT',
          `${what}: "${pattern}" not found in the build context or excluded by .dockerignore`,
          {
            hint: 'sources are paths inside the build context; ".." and symlinks cannot leave it',
          },
        );
      }
      const entries: SourceEntry[] = [{ abs, rel: '', st }];
      if (st.isDirectory()) await walk(root, abs, name, '', entries);
      sources.push({ name, entries });
    }
  }
  return sources;
}

const CHUNK = 1 << 20;
/** One buffer for the synchronous reads and copies below (they never overlap). */
let chunkBuf: Buffer | undefined;
const chunk = () => (chunkBuf ??= Buffer.allocUnsafe(CHUNK));

async function fileDigest(p: string, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size > 16 * CHUNK) {
    for await (const c of createReadStream(p)) h.update(c as Buffer);
    return h.digest('hex');
  }
  const fd = openSync(p, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const buf = chunk();
    for (let got; (got = readSync(fd, buf, 0, CHUNK, null)) > 0;) h.update(buf.subarray(0, got));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Copy a regular file's bytes to a new file `dst` (O_EXCL, never through a link on either end). */
function copyRegularFileSync(src: string, dst: string, mode: number): void {
  const input = openSync(src, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    if (!fstatSync(input).isFile()) throw new TsrunError('ERR_BUILD_CONTEXT', `${src} changed while it was copied`);
    const output = openSync(dst, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
    try {
      const buf = chunk();
      for (let got; (got = readSync(input, buf, 0, CHUNK, null)) > 0;) {
        for (let off = 0; off < got;) off += writeSync(output, buf, off, got - off);
      }
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
}

/** The identity of a file with other hard links (dev:ino), or undefined. */
const linkKey = (st: Stats): string | undefined => (st.isFile() && st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined);

/**
 * A digest of what the sources would copy: names, types, modes, link targets, contents (not
 * mtimes), and which files are hard links of one another.
 */
export async function hashSources(sources: readonly Source[], withOwners: boolean): Promise<string> {
  const h = createHash('sha256');
  const linked = new Map<string, string>();
  for (const [i, s] of sources.entries()) {
    h.update(`source ${JSON.stringify(s.name)}\n`);
    for (const e of s.entries) {
      await breathe();
      const st = e.st;
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
      const owner = withOwners ? ` ${st.uid}:${st.gid}` : '';
      const key = linkKey(st);
      const first = key !== undefined ? linked.get(key) : undefined;
      if (key !== undefined && first === undefined) linked.set(key, `${i} ${JSON.stringify(e.rel)}`);
      const extra =
        first !== undefined
          ? `hardlink ${first}`
          : kind === 'link'
            ? readlinkSync(e.abs)
            : kind === 'file'
              ? await fileDigest(e.abs, st.size)
              : '';
      h.update(`${JSON.stringify(e.rel)} ${kind} ${(st.mode & 0o7777).toString(8)}${owner} ${extra}\n`);
    }
  }
  return `sha256:${h.digest('hex')}`;
}

export interface ApplyOptions {
  /** The destination as written (expanded); relative to `workdir` unless absolute. */
  dest: string;
  workdir: string;
  /** Owner for everything copied; undefined = 0:0, or the source's owners with `keepOwners`. */
  owner?: { uid: number; gid: number };
  keepOwners?: boolean;
  chmod?: number;
  what: string;
}

interface Times {
  atime: Date;
  mtime: Date;
}

/** Write the sources into `rootfs` (the step's mounted root). */
export async function applySources(rootfs: string, sources: readonly Source[], o: ApplyOptions): Promise<void> {
  const destAbs = path.posix.resolve(o.workdir || '/', o.dest);
  const explicitDir = /(^|\/)\.?$/.test(o.dest);
  if (sources.length > 1 && !explicitDir) {
    throw new TsrunError(
      'ERR_DOCKERFILE',
      `${o.what}: with more than one source file, the destination must be a directory and end with a /`,
    );
  }
  const touched = new Map<string, Times>();
  /** Directories this copy made or took over: their times are set from the sources. */
  const ours = new Set<string>();
  const created: { host: string; mtime: Date }[] = [];
  const dirTimes: { host: string; times: Times }[] = [];
  const newest = new Date(Math.max(0, ...sources.flatMap((s) => s.entries.map((e) => e.st.mtimeMs))));

  const ownerOf = (st: Stats) => o.owner ?? (o.keepOwners ? { uid: st.uid, gid: st.gid } : { uid: 0, gid: 0 });
  const remember = (hostDir: string) => {
    if (touched.has(hostDir) || ours.has(hostDir)) return;
    const st = lstatSync(hostDir);
    touched.set(hostDir, { atime: st.atime, mtime: st.mtime });
  };
  /** Hard-linked sources (dev:ino) → the file written for the first of them. */
  const links = new Map<string, string>();

  /** The host directory for container path `ctrDir`, created (0755, owned as the copy) if missing. */
  const ensureDir = async (ctrDir: string): Promise<string> => {
    const made = await mkdirInRoot(rootfs, ctrDir, o.owner ?? { uid: 0, gid: 0 }, o.what, async (d) => remember(d));
    for (const m of made.created) {
      created.push({ host: m, mtime: newest });
      ours.add(m);
    }
    return made.host;
  };

  const writeEntry = async (hostParent: string, name: string, e: SourceEntry): Promise<string> => {
    await breathe();
    remember(hostParent);
    let target = path.join(hostParent, name);
    const existing = lstatSync(target, { throwIfNoEntry: false });
    const st = e.st;
    if (st.isDirectory()) {
      if (existing?.isSymbolicLink()) {
        // An image symlink where the copy has a directory: follow it, inside the root.
        target = await resolveInRoot(rootfs, path.posix.join('/', path.relative(rootfs, target)));
        const t = await fs.lstat(target).catch(() => undefined);
        if (t && !t.isDirectory()) await fs.rm(target, { force: true });
        if (!t?.isDirectory()) await fs.mkdir(target, { mode: 0o700 });
      } else if (existing && !existing.isDirectory()) {
        await fs.rm(target, { force: true });
        await fs.mkdir(target, { mode: 0o700 });
      } else if (!existing) {
        await fs.mkdir(target, { mode: 0o700 });
      }
    } else {
      if (existing?.isDirectory()) {
        throw new TsrunError(
          'ERR_BUILD_STEP',
          `${o.what}: cannot overwrite directory ${path.relative(rootfs, target)} with a file`,
        );
      }
      if (existing) await fs.rm(target, { force: true });
      const key = linkKey(st);
      const first = key !== undefined ? links.get(key) : undefined;
      if (first !== undefined) {
        linkSync(first, target); // owner, mode and times are the first link's
        return target;
      }
      if (st.isSymbolicLink()) symlinkSync(readlinkSync(e.abs), target);
      else if (st.isFile()) copyRegularFileSync(e.abs, target, 0o600);
      else return target; // devices, fifos, sockets: not copied (as Docker)
      if (key !== undefined) links.set(key, target);
    }
    const { uid, gid } = ownerOf(st);
    lchownSync(target, uid, gid);
    if (!st.isSymbolicLink()) chmodSync(target, o.chmod ?? st.mode & 0o7777);
    const times = { atime: st.mtime, mtime: st.mtime };
    if (st.isDirectory()) {
      dirTimes.push({ host: target, times });
      ours.add(target);
    } else if (!st.isSymbolicLink()) {
      utimesSync(target, times.atime, times.mtime);
    } else {
      lutimesSync(target, times.atime, times.mtime);
    }
    return target;
  };

  for (const s of sources) {
    const [top, ...below] = s.entries as [SourceEntry, ...SourceEntry[]];
    if (top.st.isDirectory()) {
      const base = await ensureDir(destAbs);
      const hostDirs = new Map<string, string>([['', base]]);
      for (const e of below) {
        const parentRel = e.rel.includes('/') ? e.rel.slice(0, e.rel.lastIndexOf('/')) : '';
        const parent = hostDirs.get(parentRel);
        if (parent === undefined) continue; // its directory was not copied (special file in the way)
        const written = await writeEntry(parent, path.basename(e.rel), e);
        if (e.st.isDirectory()) hostDirs.set(e.rel, written);
      }
      continue;
    }
    const destHost = await resolveInRoot(rootfs, destAbs);
    const destIsDir = explicitDir || (await fs.stat(destHost).catch(() => undefined))?.isDirectory();
    const name = path.basename(s.name || top.abs);
    if (destIsDir) await writeEntry(await ensureDir(destAbs), name, top);
    else await writeEntry(await ensureDir(path.posix.dirname(destAbs)), path.posix.basename(destAbs), top);
  }

  // Directory mtimes last (writing into a directory changes its mtime), deepest first.
  for (const d of dirTimes.reverse()) await fs.utimes(d.host, d.times.atime, d.times.mtime);
  for (const c of created.reverse()) await fs.utimes(c.host, c.mtime, c.mtime);
  for (const [host, t] of touched) if (!ours.has(host)) await fs.utimes(host, t.atime, t.mtime);
}

/**
 * `mkdir -p` of container path `ctrDir` inside `rootfs` (symlinks resolved inside it): the new
 * directories are 0755 and owned by `owner`; `beforeCreate` sees the existing ancestor first (its
 * mtime is about to change). Returns the host path and the directories made, top first.
 */
export async function mkdirInRoot(
  rootfs: string,
  ctrDir: string,
  owner: { uid: number; gid: number },
  what: string,
  beforeCreate?: (existingParent: string) => Promise<void>,
): Promise<{ host: string; created: string[] }> {
  const host = await resolveInRoot(rootfs, ctrDir);
  const st = await fs.lstat(host).catch(() => undefined);
  if (st?.isDirectory()) return { host, created: [] };
  if (st) throw new TsrunError('ERR_BUILD_STEP', `${what}: ${ctrDir} exists in the image and is not a directory`);
  const missing: string[] = [];
  let cur = host;
  while (!(await fs.lstat(cur).catch(() => undefined))) {
    missing.unshift(cur);
    cur = path.dirname(cur);
  }
  await beforeCreate?.(cur);
  for (const m of missing) {
    await fs.mkdir(m, { mode: 0o755 });
    await fs.chmod(m, 0o755);
    await fs.lchown(m, owner.uid, owner.gid);
  }
  return { host, created: missing };
}

/** The build context's .dockerignore as a predicate (Docker's rules, via @balena/dockerignore). */
export async function loadDockerignore(contextDir: string): Promise<Pick<SourceRoot, 'ignores' | 'hasExceptions'>> {
  const text = await fs.readFile(path.join(contextDir, '.dockerignore'), 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // A CommonJS module whose module.exports is the factory; TypeScript types it as a default export.
  const mod = (await import('@balena/dockerignore')).default as unknown as { default?: () => Ignore } & (() => Ignore);
  const ig = (mod.default ?? mod)().add(lines);
  return { ignores: (rel) => ig.ignores(rel), hasExceptions: lines.some((l) => l.startsWith('!')) };
}
