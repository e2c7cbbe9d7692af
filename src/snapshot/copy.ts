/**
 * The copying snapshotter: rootless mode's last resort, for hosts that can mount neither the
 * kernel's overlayfs nor fuse-overlayfs in a user namespace (containers/storage's "vfs" driver
 * does the same). A root filesystem is a full copy of the image's layers; a build step's changes
 * are found afterwards by comparing the copy with a second copy of the parent (`diffTrees`).
 * Slow and disk-hungry by nature; correct is the point.
 *
 * `populate` applies layer directories in overlayfs form (as the unpacker writes them), bottom
 * first: a 0/0 character device deletes the name, an `<x>.overlay.opaque=y` directory hides what
 * lower layers had there. Owners, modes, mtimes, symlinks, hardlinks (within a layer) and
 * xattrs are kept; device nodes are skipped (a user namespace cannot make them).
 * `diffTrees` writes, into an empty directory, the changes from `lower` to `upper` in the same
 * overlayfs form, ready for layers/diff.ts.
 *
 * Contract: both trees are private to the caller and not changing; nothing is ever opened
 * through a symlink (lstat everywhere, files copied with O_NOFOLLOW).
 */
import fs, { type Stats } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { copyRegularFile } from './rootfs-copy.js';

const S_IFCHR = 0o020000;
const OVERLAY_XATTR = /^(trusted|user)\.(overlay|fuseoverlayfs)\./;

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function isOpaque(p: string): boolean {
  const n = native();
  return ['user.overlay.opaque', 'trusted.overlay.opaque'].some((x) => n.lgetxattr(p, x)?.toString() === 'y');
}

function lstatOr(p: string): Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Owner, mode, xattrs (overlay ones left out) and times of `src` onto `dst`. */
function copyMeta(src: string, dst: string, st: Stats): void {
  fs.lchownSync(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777);
  const n = native();
  for (const name of n.llistxattr(src)) {
    if (OVERLAY_XATTR.test(name)) continue;
    const v = n.lgetxattr(src, name);
    if (v) {
      try {
        n.lsetxattr(dst, name, v);
      } catch {
        /* e.g. security.* a user namespace may not set */
      }
    }
  }
  fs.lutimesSync(dst, st.atime, st.mtime);
}

/** Copy one non-directory entry (file, symlink, fifo); devices and sockets are skipped. */
async function copyLeaf(src: string, dst: string, st: Stats, links?: Map<string, string>): Promise<void> {
  if (st.isFile() && st.nlink > 1 && links) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first) {
      fs.linkSync(first, dst);
      return;
    }
    links.set(key, dst);
  }
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
  else if (st.isFile()) await copyRegularFile(src, dst, 0o600);
  else if (st.isFIFO()) native().mknod(dst, 0o010000 | 0o600, 0, 0);
  else return;
  copyMeta(src, dst, st);
}

/** Copy the tree at `src` to the new path `dst` (which must not exist). */
async function copyTree(src: string, dst: string, st: Stats, links?: Map<string, string>): Promise<void> {
  if (!st.isDirectory()) return copyLeaf(src, dst, st, links);
  fs.mkdirSync(dst, { mode: 0o700 });
  for (const name of fs.readdirSync(src).sort()) {
    const s = path.join(src, name);
    await copyTree(s, path.join(dst, name), fs.lstatSync(s), links);
  }
  copyMeta(src, dst, st);
}

/** Apply the layer directories (bottom first) into `target`, an empty directory. */
export async function populate(layerDirs: readonly string[], target: string): Promise<void> {
  for (const layer of layerDirs) {
    const links = new Map<string, string>();
    const dirs: [string, string, Stats][] = [];
    const apply = async (rel: string) => {
      for (const name of fs.readdirSync(path.join(layer, rel)).sort()) {
        const src = path.join(layer, rel, name);
        const dst = path.join(target, rel, name);
        const st = fs.lstatSync(src);
        const have = lstatOr(dst);
        if (isWhiteout(st)) {
          if (have) fs.rmSync(dst, { recursive: true, force: true });
          continue;
        }
        if (st.isDirectory()) {
          if (have && (!have.isDirectory() || isOpaque(src))) fs.rmSync(dst, { recursive: true, force: true });
          if (!lstatOr(dst)) fs.mkdirSync(dst, { mode: 0o700 });
          dirs.push([src, dst, st]);
          await apply(path.join(rel, name));
          continue;
        }
        if (have) fs.rmSync(dst, { recursive: true, force: true });
        await copyLeaf(src, dst, st, links);
      }
    };
    await apply('');
    // Directory metadata last (writing into a directory changes its mtime), deepest first.
    for (const [src, dst, st] of dirs.reverse()) copyMeta(src, dst, st);
    const rootSt = fs.lstatSync(layer);
    fs.chmodSync(target, rootSt.mode & 0o7777);
  }
}

/**
 * Unchanged? Type, mode, owner; a directory's mtime; a link's target; a file's size and mtime
 * (the naive diff of containers/storage's vfs: a copied file keeps both, a written one does not).
 */
function sameEntry(a: Stats, b: Stats, pa: string, pb: string): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.isDirectory()) return a.mtimeMs === b.mtimeMs;
  if (a.isSymbolicLink()) return fs.readlinkSync(pa) === fs.readlinkSync(pb);
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * The changes from `lower` to `upper`, written into `out` (an empty directory) in overlayfs
 * form: new and changed entries copied, deleted ones as 0/0 character devices, and every
 * directory on the way with its metadata in `upper`.
 */
export async function diffTrees(lower: string, upper: string, out: string): Promise<void> {
  const dirs: [string, string, Stats][] = [];
  const made = new Set<string>(['']);
  const ensureDir = (rel: string) => {
    if (made.has(rel)) return;
    ensureDir(path.dirname(rel) === '.' ? '' : path.dirname(rel));
    const st = fs.lstatSync(path.join(upper, rel));
    fs.mkdirSync(path.join(out, rel), { mode: 0o700 });
    dirs.push([path.join(upper, rel), path.join(out, rel), st]);
    made.add(rel);
  };
  const walk = async (rel: string) => {
    const names = new Set<string>([
      ...(lstatOr(path.join(lower, rel))?.isDirectory() ? fs.readdirSync(path.join(lower, rel)) : []),
      ...fs.readdirSync(path.join(upper, rel)),
    ]);
    for (const name of [...names].sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const pl = path.join(lower, r);
      const pu = path.join(upper, r);
      const l = lstatOr(pl);
      const u = lstatOr(pu);
      if (!u) {
        ensureDir(rel);
        native().mknod(path.join(out, r), S_IFCHR, 0, 0);
        continue;
      }
      if (!l || (l.mode & 0o170000) !== (u.mode & 0o170000)) {
        ensureDir(rel);
        await copyTree(pu, path.join(out, r), u);
        continue;
      }
      if (u.isDirectory()) {
        if (!sameEntry(l, u, pl, pu)) ensureDir(r);
        await walk(r);
        continue;
      }
      if (!sameEntry(l, u, pl, pu)) {
        ensureDir(rel);
        await copyLeaf(pu, path.join(out, r), u);
      }
    }
  };
  await walk('');
  for (const [src, dst, st] of dirs.reverse()) copyMeta(src, dst, st);
}
