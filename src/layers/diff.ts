/**
 * A directory in overlayfs form → an OCI layer tar (image-spec layer.md, "Whiteouts"): the
 * inverse of unpack.ts. Used on a build step's upper directory, whose changes against the lower
 * layers are exactly the layer: overlayfs records a deletion as a 0/0 character device and a
 * replaced directory as `<prefix>opaque=y`; those become `.wh.NAME` and `DIR/.wh..wh..opq`.
 *
 * Reproducible: entries in byte order of their names, parents before children, integer mtimes,
 * no user or group names, hardlinks by (dev, ino) to the first name seen; overlayfs's own
 * bookkeeping xattrs (origin, impure, redirect…, and fuse-overlayfs's) are dropped, other xattrs
 * kept sorted. An upper dir written by fuse-overlayfs works too: its opaque xattr is read, and
 * whiteouts it wrote as `.wh.NAME` files are already in OCI form.
 * How `dir` is read (issue 13): from a directory fd, every entry opened O_PATH|O_NOFOLLOW
 * relative to its directory's fd, and everything written — type, mode, owners, times, size,
 * xattrs, link target, contents — taken from that fd, never from a path string. So a tree that
 * changes while it is read (a running container's upper dir or merged root, which `commit`,
 * `export` and `diff` read, frozen where the cgroup freezer allows it and live where it does not)
 * can make the archive a mix of before and after, or make it fail, but never brings in anything
 * outside `dir`: a directory swapped for a symlink is not entered, a file swapped for a fifo or a
 * device is not opened. An entry that vanishes between the listing and the open is left out.
 * Contract: `dir` itself is trusted (the store's path); what is yielded is the whole archive
 * including the end marker; for a tree that does not change (a finished build step), the output
 * is a pure function of the tree.
 */
import fs, { constants as C } from 'node:fs';
import { native, type Statx } from '../native/index.js';
import { closeFd, errno, O_PATH, openTrusted } from '../snapshot/safe-root.js';
import { blockPadding, encodeHeader, TAR_TRAILER, type TarWriteHeader } from './tar-writer.js';

export interface DiffOptions {
  /** Where the overlay keeps its xattrs in `dir`: trusted.overlay. (root) or user.overlay. (userxattr). */
  overlayXattrPrefix: 'trusted.overlay.' | 'user.overlay.';
  /** Paths ("a/b", relative to dir) to leave out, e.g. mount points the runtime created. */
  exclude?: ReadonlySet<string>;
}

const READ_CHUNK = 1 << 20;
const OVERLAY_PREFIXES = ['trusted.overlay.', 'user.overlay.', 'user.fuseoverlayfs.'];
/** fuse-overlayfs marks opaque directories with its own xattr (and whiteouts as 0/0 devices or .wh. files). */
const FUSE_OPAQUE = 'user.fuseoverlayfs.opaque';

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

const S_IFMT = 0o170000;
const S = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
} as const;

/** The xattrs of what an O_PATH fd names, overlayfs's own left out, sorted. */
function xattrsOf(fd: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const n = native();
  for (const name of n.flistxattr(fd).sort(byteOrder)) {
    if (OVERLAY_PREFIXES.some((pre) => name.startsWith(pre))) continue;
    const v = n.fgetxattr(fd, name);
    if (v) out.set(name, v);
  }
  return out;
}

/** An O_PATH fd for `name` in `dirFd`, never following it; undefined if it is gone. */
function openEntry(dirFd: number, name: string): number | undefined {
  try {
    return native().openat(dirFd, name, O_PATH, 0);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Yield the layer tar of `dir`, chunk by chunk. */
export async function* diffTar(dir: string, opts: DiffOptions): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  const opaque = `${opts.overlayXattrPrefix}opaque`;
  const n = native();

  async function* walk(dirFd: number, rel: string): AsyncGenerator<Buffer> {
    const names = n.readdir(dirFd).sort(byteOrder);
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (opts.exclude?.has(childRel)) continue;
      const fd = openEntry(dirFd, name);
      if (fd === undefined) continue;
      try {
        yield* entry(fd, rel, name, childRel);
      } finally {
        closeFd(fd);
      }
    }
  }

  async function* entry(fd: number, rel: string, name: string, childRel: string): AsyncGenerator<Buffer> {
    const st = n.statx(fd, '', false);
    const type = st.mode & S_IFMT;
    const base: Omit<TarWriteHeader, 'name' | 'type'> = {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      mtime: st.mtimeSec,
    };
    if (type === S.char && st.rdevMajor === 0 && st.rdevMinor === 0) {
      // An overlayfs whiteout: the name is deleted in this layer.
      yield encodeHeader({
        ...base,
        name: rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`,
        type: 'file',
        mode: 0o600,
        uid: 0,
        gid: 0,
      });
      return;
    }
    const xattrs = xattrsOf(fd);
    if (type === S.dir) {
      yield encodeHeader({ ...base, name: `${childRel}/`, type: 'dir', xattrs });
      if (n.fgetxattr(fd, opaque)?.toString() === 'y' || n.fgetxattr(fd, FUSE_OPAQUE)?.toString() === 'y') {
        yield encodeHeader({ ...base, name: `${childRel}/.wh..wh..opq`, type: 'file', mode: 0o600, uid: 0, gid: 0 });
      }
      yield* walk(fd, childRel);
      return;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...base, name: childRel, type: 'hardlink', linkname: first, xattrs });
        return;
      }
      links.set(key, childRel);
    }
    if (type === S.symlink) {
      yield encodeHeader({ ...base, name: childRel, type: 'symlink', linkname: n.readlinkat(fd, '') });
    } else if (type === S.file) {
      yield* fileEntry(fd, st, { ...base, name: childRel, type: 'file', size: st.size, xattrs });
    } else if (type === S.char || type === S.block) {
      yield encodeHeader({
        ...base,
        name: childRel,
        type: type === S.char ? 'char' : 'block',
        xattrs,
        devmajor: st.rdevMajor,
        devminor: st.rdevMinor,
      });
    } else if (type === S.fifo) {
      yield encodeHeader({ ...base, name: childRel, type: 'fifo', xattrs });
    }
    // Sockets are not representable in a tar (as GNU tar, skip them).
  }

  const root = openTrusted(dir);
  try {
    yield* walk(root, '');
  } finally {
    closeFd(root);
  }
  yield TAR_TRAILER;
}

/** A regular file's entry; `pathFd` is its O_PATH fd, `st` what it names (checked: a regular file). */
async function* fileEntry(pathFd: number, st: Statx, h: TarWriteHeader): AsyncGenerator<Buffer> {
  const fd = native().reopen(pathFd, C.O_RDONLY | C.O_NONBLOCK);
  try {
    yield encodeHeader(h);
    let left = h.size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const got = fs.readSync(fd, buf, 0, buf.length, null);
      if (got === 0) throw new Error(`${h.name} shrank while it was archived (${st.size} bytes)`);
      left -= got;
      yield got === buf.length ? buf : buf.subarray(0, got);
    }
    yield blockPadding(h.size);
  } finally {
    fs.closeSync(fd);
  }
}
