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
 * Contract: `dir` does not change while it is read (the step's container has exited); what is
 * yielded is the whole archive including the end marker. Nothing is followed: symlinks are
 * read as links, and only regular files are opened (O_NOFOLLOW).
 */
import fs, { constants as C } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
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

function xattrsOf(p: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const n = native();
  for (const name of n.llistxattr(p).sort(byteOrder)) {
    if (OVERLAY_PREFIXES.some((pre) => name.startsWith(pre))) continue;
    const v = n.lgetxattr(p, name);
    if (v) out.set(name, v);
  }
  return out;
}

/** Yield the layer tar of `dir`, chunk by chunk. */
export async function* diffTar(dir: string, opts: DiffOptions): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  const opaque = `${opts.overlayXattrPrefix}opaque`;
  const n = native();

  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const abs = rel === '' ? dir : path.join(dir, rel);
    const names = fs.readdirSync(abs).sort(byteOrder);
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (opts.exclude?.has(childRel)) continue;
      const p = path.join(abs, name);
      const st = fs.lstatSync(p, { bigint: true });
      const base: Omit<TarWriteHeader, 'name' | 'type'> = {
        mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: 0,
        mtime: Number(st.mtimeMs / 1000n),
      };
      if (st.isCharacterDevice() && st.rdev === 0n) {
        // An overlayfs whiteout: the name is deleted in this layer.
        yield encodeHeader({ ...base, name: rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, type: 'file', mode: 0o600, uid: 0, gid: 0 });
        continue;
      }
      const xattrs = xattrsOf(p);
      if (st.isDirectory()) {
        yield encodeHeader({ ...base, name: `${childRel}/`, type: 'dir', xattrs });
        if (n.lgetxattr(p, opaque)?.toString() === 'y' || n.lgetxattr(p, FUSE_OPAQUE)?.toString() === 'y') {
          yield encodeHeader({ ...base, name: `${childRel}/.wh..wh..opq`, type: 'file', mode: 0o600, uid: 0, gid: 0 });
        }
        yield* walk(childRel);
        continue;
      }
      if (st.nlink > 1n && !st.isDirectory()) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield encodeHeader({ ...base, name: childRel, type: 'hardlink', linkname: first, xattrs });
          continue;
        }
        links.set(key, childRel);
      }
      if (st.isSymbolicLink()) {
        yield encodeHeader({ ...base, name: childRel, type: 'symlink', linkname: fs.readlinkSync(p) });
      } else if (st.isFile()) {
        yield* fileEntry(p, { ...base, name: childRel, type: 'file', size: Number(st.size), xattrs });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const rdev = Number(st.rdev);
        yield encodeHeader({
          ...base, name: childRel, type: st.isCharacterDevice() ? 'char' : 'block', xattrs,
          devmajor: (rdev >> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
        });
      } else if (st.isFIFO()) {
        yield encodeHeader({ ...base, name: childRel, type: 'fifo', xattrs });
      }
      // Sockets are not representable in a tar (as GNU tar, skip them).
    }
  }

  yield* walk('');
  yield TAR_TRAILER;
}

async function* fileEntry(p: string, h: TarWriteHeader): AsyncGenerator<Buffer> {
  const fd = fs.openSync(p, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    yield encodeHeader(h);
    let left = h.size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const got = fs.readSync(fd, buf, 0, buf.length, null);
      if (got === 0) throw new Error(`${p} shrank while it was archived`);
      left -= got;
      yield got === buf.length ? buf : buf.subarray(0, got);
    }
    yield blockPadding(h.size);
  } finally {
    fs.closeSync(fd);
  }
}
