/**
 * Is an unpacked layer still what was committed? A store copied with `cp -a` or `tar` by an
 * unprivileged user (what CI caches do) silently loses owners, unreadable files, device nodes
 * (overlay whiteouts) and xattrs (opaque directories, file capabilities); mounting such a layer
 * gives a container a wrong filesystem with no error.
 *
 * Two checks, the cheap one first:
 * - the stamp: the inode number and ctime of the layer's `diff` directory, taken at commit. A
 *   committed layer is never written again, and no copy can keep an inode number or a ctime, so
 *   a matching stamp means this is the very directory that was committed (one stat);
 * - the fingerprint: a sha256 over every entry's path, type, permission bits, owner, size (files),
 *   device numbers, link target and overlay/capability xattrs, with the entry count. Computed at
 *   commit; recomputed only when the stamp differs. Equal: the copy is faithful, and the stamp is
 *   renewed. Different: the layer is corrupt and must never be used.
 * Layers committed before fingerprints existed have none: they are trusted, and fingerprinted
 * the first time they are checked.
 */
import fs from 'node:fs';
import { native } from '../native/index.js';
import { crypto } from '../util/lazy-builtins.js';

export interface LayerIntegrity {
  /** `<ino>:<ctime ns>` of diff/ when it was last known good. */
  stamp: string;
  /** sha256 over the tree (see above). */
  fingerprint: string;
  entries: number;
}

const KEPT_XATTR = /^(trusted\.overlay\.|user\.overlay\.|security\.capability$)/;

export async function stampOf(diff: string): Promise<string> {
  // One stat (at once: no thread-pool round trip, as the walk below).
  const st = fs.statSync(diff, { bigint: true });
  return `${st.ino}:${st.ctimeNs}`;
}

/**
 * Walk `diff` (never following symlinks) and hash what a faithful copy must keep.
 *
 * Synchronous on purpose (one syscall per call, no thread-pool round trip): at commit it runs
 * while other layers of the same pull are being decompressed on the pool, and a pool request
 * per entry then waited behind their inflate chunks: 24k entries took seconds, the sync walk
 * ~0.1 s. The lines and their order are the same as they always were (fingerprints recorded by
 * earlier versions still match). The native addon makes the same lines (fingerprintLines,
 * native-helpers/src/fingerprint.c: a third of the CPU); where it cannot vouch for them (names
 * that are not UTF-8, errors) the walk below makes them, and throws what it throws.
 */
export async function fingerprintOf(diff: string): Promise<{ fingerprint: string; entries: number }> {
  await Promise.resolve();
  return fingerprintNative(diff) ?? fingerprintSync(diff);
}

function fingerprintNative(diff: string): { fingerprint: string; entries: number } | undefined {
  const hash = crypto().createHash('sha256');
  let entries: number | null;
  try {
    entries = native().fingerprintLines(diff, (chunk) => hash.update(chunk));
  } catch {
    return undefined; // (an argument the addon refuses, such as a path too long: the walk decides)
  }
  return entries === null ? undefined : { fingerprint: `sha256:${hash.digest('hex')}`, entries };
}

/** The walk in JavaScript: the definition of the lines, and what decides where the addon cannot. */
export function fingerprintSync(diff: string): { fingerprint: string; entries: number } {
  const hash = crypto().createHash('sha256');
  const n = native();
  let entries = 0;
  let batch = '';
  // Entry names come from readdir (no "/", ".", ".."): joining by hand is path.join's answer.
  const prefix = diff.endsWith('/') ? diff : `${diff}/`;
  const visit = (rel: string): void => {
    const abs = rel ? prefix + rel : diff;
    const st = fs.lstatSync(abs);
    entries++;
    const type = st.isDirectory()
      ? 'd'
      : st.isFile()
        ? 'f'
        : st.isSymbolicLink()
          ? 'l'
          : st.isCharacterDevice()
            ? 'c'
            : st.isBlockDevice()
              ? 'b'
              : st.isFIFO()
                ? 'p'
                : 's';
    let line = `${rel}\0${type}\0${(st.mode & 0o7777).toString(8)}\0${st.uid}:${st.gid}`;
    if (type === 'f') line += `\0${st.size}`;
    if (type === 'c' || type === 'b') line += `\0${st.rdev}`;
    if (type === 'l') line += `\0${fs.readlinkSync(abs)}`;
    let names: string[] = [];
    try {
      names = n.llistxattr(abs);
    } catch {
      /* a filesystem without xattrs: none kept */
    }
    if (names.length > 0) {
      for (const x of names.filter((x) => KEPT_XATTR.test(x)).sort())
        line += `\0${x}=${n.lgetxattr(abs, x)?.toString('hex') ?? ''}`;
    }
    batch += `${line}\n`;
    if (batch.length > 64 * 1024) {
      hash.update(batch);
      batch = '';
    }
    if (type === 'd') {
      for (const name of fs.readdirSync(abs).sort()) visit(rel ? `${rel}/${name}` : name);
    }
  };
  visit('');
  hash.update(batch);
  return { fingerprint: `sha256:${hash.digest('hex')}`, entries };
}

export async function integrityOf(diff: string): Promise<LayerIntegrity> {
  const { fingerprint, entries } = await fingerprintOf(diff);
  return { stamp: await stampOf(diff), fingerprint, entries };
}

export type Verdict = { ok: true; integrity: LayerIntegrity; renewed: boolean } | { ok: false; reason: string };

/**
 * Check `diff` against what was recorded. `renewed` says the stamp changed but the content is
 * intact (the caller records the new integrity). Never throws for a damaged tree: that is a verdict.
 */
export async function verifyDiff(diff: string, recorded: LayerIntegrity | undefined): Promise<Verdict> {
  let stamp: string;
  try {
    stamp = await stampOf(diff);
  } catch (err) {
    return {
      ok: false,
      reason: `its files are missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  if (recorded && recorded.stamp === stamp) return { ok: true, integrity: recorded, renewed: false };
  let now;
  try {
    now = await fingerprintOf(diff);
  } catch (err) {
    return {
      ok: false,
      reason: `reading it failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  if (recorded && (now.fingerprint !== recorded.fingerprint || now.entries !== recorded.entries)) {
    return {
      ok: false,
      reason:
        now.entries !== recorded.entries
          ? `it has ${now.entries} entries where ${recorded.entries} were committed`
          : 'owners, modes, xattrs or contents changed since it was committed',
    };
  }
  return { ok: true, integrity: { stamp, ...now }, renewed: true };
}
