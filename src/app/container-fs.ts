/**
 * A container's files as export, commit and diff read them: the merged root (mounted for the
 * duration when the container is stopped, as cp does), the upper directory that holds its
 * changes, the image's layers below it, and the mount points the runtime made in the upper
 * directory (which Docker keeps out of diff and commit: its "init layer").
 *
 * Security (ARCHITECTURE.md, issue 13): a running container is an adversary that can swap a
 * directory for a symlink between two of our syscalls. Callers freeze it first where the freezer
 * exists (pause.ts's withFrozen; rootless containers are read live), and what is archived or
 * listed is read from directory fds, every entry opened O_PATH|O_NOFOLLOW relative to its
 * directory's fd (layers/diff.ts's diffTar for export and commit, diff.ts's changesOf), never by
 * path string. The lowers here are the store's own layers, which no container writes, read by
 * path. `runtimeMountpoints` reads a few upper paths by lstat: a race there can only change
 * which of those names are left out, never bring a host file in.
 * Contract: `withRootfs` unmounts what it mounted, whatever `fn` does.
 */
import { promises as fs, lstatSync, readFileSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { digestHex } from '../oci/digest.js';
import { native } from '../native/index.js';
import { unmountAll } from '../snapshot/overlay.js';
import { cleanPath } from '../layers/unpack.js';
import type { Container } from '../runtime/records.js';
import { ensureMounted, isMounted, rootfsMount, storageDriver, type Env } from './containers.js';

/** Run `fn` with the container's merged root at c.paths.rootfs. */
export async function withRootfs<T>(env: Env, c: Container, fn: (rootfs: string) => Promise<T>): Promise<T> {
  if (c.observed.status === 'running' && isMounted(c.paths.rootfs)) return fn(c.paths.rootfs);
  return env.containers.lock(c.record.id, async () => {
    const mounted = isMounted(c.paths.rootfs);
    if (!mounted) await env.store.withSharedLock(() => ensureMounted(env, c));
    try {
      return await fn(c.paths.rootfs);
    } finally {
      if (!mounted) await unmountAll([rootfsMount(env, c)]);
    }
  });
}

export interface UpperView {
  upper: string;
  /** Where overlayfs keeps its opaque marker in `upper`. */
  xattrPrefix: 'trusted.overlay.' | 'user.overlay.';
  /** Unpacked layers, top first. */
  lowers: string[];
  /** Upper entries ("etc/hosts") the runtime created as mount points: not the container's changes. */
  excluded: Set<string>;
}

/** The container's changes as an overlay upper dir; the copy driver keeps none (refused). */
export function upperView(env: Env, c: Container, what: string): UpperView {
  const driver = storageDriver(env, c.record);
  if (driver === 'copy') {
    throw new TsrunError(
      'ERR_STORE',
      `${what}: container ${c.record.name} uses the copy storage driver, which keeps no record of its changes`,
      {
        hint: 'use tsrun export for its whole filesystem',
      },
    );
  }
  const lowers = [...c.record.layers].reverse().map((id) => path.join(env.store.root, 'layers', digestHex(id), 'diff'));
  const view: UpperView = {
    upper: c.paths.upper,
    xattrPrefix: driver === 'overlay' ? 'trusted.overlay.' : 'user.overlay.',
    lowers,
    excluded: new Set(),
  };
  view.excluded = runtimeMountpoints(c, view);
  return view;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function opaque(dir: string, prefix: string): boolean {
  const n = native();
  return (
    n.lgetxattr(dir, `${prefix}opaque`)?.toString() === 'y' ||
    n.lgetxattr(dir, 'user.fuseoverlayfs.opaque')?.toString() === 'y'
  );
}

/** Whether `rel` exists in the image (the merged view of the layers). */
export function inLower(v: UpperView, rel: string): boolean {
  const parts = rel.split('/');
  for (const layer of v.lowers) {
    // A whiteout or an opaque directory on the way down hides everything below in older layers.
    for (let i = 1; i <= parts.length; i++) {
      const p = path.join(layer, ...parts.slice(0, i));
      const st = lstatOrUndefined(p);
      const wh = lstatOrUndefined(path.join(layer, ...parts.slice(0, i - 1), `.wh.${parts[i - 1]}`));
      if (wh) return false;
      if (!st) break;
      if (isWhiteout(st)) return false;
      if (i === parts.length) return true;
      if (!st.isDirectory()) return false;
      if (opaque(p, 'trusted.overlay.') || opaque(p, 'user.overlay.')) {
        // Present here, hidden below: the answer is in this layer alone.
        return (
          lstatOrUndefined(path.join(layer, ...parts)) !== undefined &&
          !isWhiteout(lstatSync(path.join(layer, ...parts)))
        );
      }
    }
  }
  return false;
}

/** The image's names in directory `rel` (merged over the layers). */
export function lowerNames(v: UpperView, rel: string): Set<string> {
  const names = new Set<string>();
  const hidden = new Set<string>();
  for (const layer of v.lowers) {
    const dir = rel === '' ? layer : path.join(layer, rel);
    const st = lstatOrUndefined(dir);
    if (!st) continue;
    if (!st.isDirectory()) break;
    for (const n of readdirSync(dir)) {
      const s = lstatSync(path.join(dir, n));
      if (isWhiteout(s)) hidden.add(n);
      else if (n.startsWith('.wh.')) hidden.add(n.slice(4));
      else if (!hidden.has(n)) names.add(n);
    }
    if (opaque(dir, 'trusted.overlay.') || opaque(dir, 'user.overlay.')) break;
  }
  return names;
}

/**
 * Mount points the runtime made in the upper dir: the destinations in config.json (and their
 * parents) that the image does not have and that are still empty files or directories.
 */
function runtimeMountpoints(c: Container, v: UpperView): Set<string> {
  const out = new Set<string>();
  let mounts: { destination?: string }[];
  try {
    mounts = (JSON.parse(readFileSync(c.paths.config, 'utf8')) as { mounts?: { destination?: string }[] }).mounts ?? [];
  } catch {
    return out;
  }
  const candidates = new Set<string>();
  for (const m of mounts) {
    const parts = cleanPath(m.destination ?? '')
      .split('/')
      .filter(Boolean);
    for (let i = parts.length; i > 0; i--) candidates.add(parts.slice(0, i).join('/'));
  }
  // Deepest first, so a parent is judged after its children.
  for (const rel of [...candidates].sort((a, b) => b.split('/').length - a.split('/').length)) {
    const p = path.join(v.upper, rel);
    const st = lstatOrUndefined(p);
    if (!st) continue;
    if (st.isFile()) {
      if (st.size === 0 && !inLower(v, rel)) out.add(rel);
      continue;
    }
    if (!st.isDirectory() || opaque(p, v.xattrPrefix) || !readdirSync(p).every((n) => out.has(`${rel}/${n}`))) continue;
    // A directory the runtime made, or one overlayfs copied up for a mount point in it, unchanged.
    const below = inLower(v, rel) ? lowerStat(v, rel) : undefined;
    if (!below || (below.isDirectory() && below.mode === st.mode && below.uid === st.uid && below.gid === st.gid))
      out.add(rel);
  }
  return out;
}

/** The image's own entry at `rel` (the topmost layer that has it). */
function lowerStat(v: UpperView, rel: string): Stats | undefined {
  for (const layer of v.lowers) {
    const st = lstatOrUndefined(path.join(layer, rel));
    if (st) return st;
  }
  return undefined;
}

export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
