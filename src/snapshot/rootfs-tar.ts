/**
 * `tsrun cp CONTAINER:PATH -` and `tsrun cp - CONTAINER:PATH`: a container's files as a tar
 * stream on stdout, and a tar stream from stdin extracted into a container directory, as
 * `docker cp -` does (docs.docker.com/reference/cli/docker/container/cp/: "Use '-' as the source
 * to read a tar archive from stdin and extract it to a directory destination in a container. Use
 * '-' as the destination to stream a tar archive of a container source to stdout").
 *
 * Both go through safe-root.ts like every other copy (see rootfs-copy.ts): the tree written out is
 * read from fds, never through a link; entries read in are placed by walking their parent inside
 * the container's root (so a link in the container is followed as the container would, and
 * never out of it), then created with one-name *at() calls. Archive entries are untrusted too:
 * absolute names are taken relative to the destination, and a name that climbs out of it with
 * ".." is refused (Docker: "... is outside of ..."). Hard links in an archive become copies of
 * their target; devices, fifos and sockets are skipped (as the other copies do).
 *
 * Contract: the archive written is POSIX pax (layers/tar-writer.ts), entries named under SRC's
 * base name ("." for "dir/."), each file exactly the size its header says (a file that shrinks
 * while read is padded with zeros, one that grows is cut). Extraction is not atomic.
 */
import { constants, fchmodSync as fchmod, read, write, type ReadStream } from 'node:fs';
import posix from 'node:path/posix';
import { promisify } from 'node:util';
import type { Writable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { native } from '../native/index.js';
import { readTar, type TarEntry } from '../layers/tar-reader.js';
import { blockPadding, encodeHeader, TAR_TRAILER, type TarWriteType } from '../layers/tar-writer.js';
import { checkWritable, contentsOnly, cpError, removeAt, type CopyOptions, type CopyResult } from './rootfs-copy.js';
import {
  closeFd,
  errno,
  fdStat,
  O_DIRECTORY,
  O_PATH,
  openDir,
  openRegular,
  SafeRoot,
  statAt,
  withFd,
  type EntryStat,
} from './safe-root.js';

const readFd = promisify(read);
const writeFd = (fd: number, buf: Buffer, off: number, len: number) => promisify(write)(fd, buf, off, len, null);

async function put(out: Writable, chunk: Buffer): Promise<void> {
  if (chunk.length === 0) return;
  if (!out.write(chunk))
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        out.off('drain', done);
        out.off('error', done);
        if (err) reject(err);
        else resolve();
      };
      out.on('drain', done);
      out.on('error', done);
    });
}

const TAR_TYPE: Partial<Record<EntryStat['kind'], TarWriteType>> = { file: 'file', dir: 'dir', symlink: 'symlink' };

/** container → tar on `out`. */
export async function tarOut(root: SafeRoot, ctrPath: string, out: Writable, o: CopyOptions = {}): Promise<CopyResult> {
  const result: CopyResult = { entries: 0, bytes: 0 };
  const follow = Boolean(o.followLink) || /\/\.?\/?$/.test(ctrPath);
  let fd: number;
  try {
    fd = root.walk(ctrPath, follow);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR')
      throw cpError(ctrPath, '-', `no such file or directory in the container: ${ctrPath}`);
    throw err;
  }
  const base = contentsOnly(ctrPath) ? '.' : posix.basename(ctrPath.replace(/\/+$/, '')) || '.';
  await withFd(fd, (f) => writeEntry(f, fdStat(f), base, out, result));
  await put(out, TAR_TRAILER);
  return result;
}

async function writeEntry(fd: number, st: EntryStat, name: string, out: Writable, result: CopyResult): Promise<void> {
  const type = TAR_TYPE[st.kind];
  if (!type) return;
  const header = {
    name: st.kind === 'dir' ? `${name}/` : name,
    type,
    mode: st.perm,
    uid: st.uid,
    gid: st.gid,
    mtime: Number(st.mtimeNs / 1_000_000_000n),
  };
  result.entries++;
  if (st.kind === 'symlink') {
    await put(out, encodeHeader({ ...header, size: 0, linkname: native().readlinkat(fd, '') }));
  } else if (st.kind === 'file') {
    const input = openRegular(fd);
    try {
      await put(out, encodeHeader({ ...header, size: st.size }));
      let left = st.size;
      const buf = Buffer.allocUnsafe(1 << 20);
      while (left > 0) {
        const { bytesRead } = await readFd(input, buf, 0, Math.min(buf.length, left), null);
        if (bytesRead === 0) break;
        await put(out, Buffer.from(buf.subarray(0, bytesRead)));
        left -= bytesRead;
      }
      if (left > 0) await put(out, Buffer.alloc(left));
      await put(out, blockPadding(st.size));
      result.bytes += st.size;
    } finally {
      closeFd(input);
    }
  } else {
    await put(out, encodeHeader({ ...header, size: 0 }));
    const dir = openDir(fd);
    try {
      for (const child of native().readdir(dir).sort()) {
        let cfd: number;
        try {
          cfd = native().openat(dir, child, O_PATH, 0);
        } catch (err) {
          if (errno(err) === 'ENOENT') continue;
          throw err;
        }
        await withFd(cfd, (f) => writeEntry(f, fdStat(f), name === '.' ? child : `${name}/${child}`, out, result));
      }
    } finally {
      closeFd(dir);
    }
  }
}

/** tar on `input` → the existing directory `ctrDest` of the container `label`. */
export async function tarIn(
  root: SafeRoot,
  input: ReadStream | NodeJS.ReadableStream,
  ctrDest: string,
  label: string,
  o: CopyOptions = {},
): Promise<CopyResult> {
  const result: CopyResult = { entries: 0, bytes: 0 };
  const ctx = { preserveOwnership: Boolean(o.preserveOwnership), result, src: '-', dest: `${label}:${ctrDest}` };
  let destFd: number;
  try {
    destFd = root.walk(ctrDest, true);
  } catch {
    throw new TsrunError('ERR_USAGE', `Could not find the file ${ctrDest} in container ${label}`);
  }
  const destPath = await withFd(destFd, (fd) => {
    if (fdStat(fd).kind !== 'dir')
      throw new TsrunError('ERR_USAGE', `destination "${label}:${ctrDest}" must be a directory`);
    checkWritable(root, fd, '', o, ctx);
    return posix.join('/', ctrDest);
  });
  const dirs: { path: string; header: TarEntry['header'] }[] = [];
  // One iterator, drained after the end-of-archive marker: a writer (tar c | tsrun cp -) must not
  // get EPIPE for the zero blocks it pads its last record with.
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for await (const entry of readTar({ [Symbol.asyncIterator]: () => it })) {
    const h = entry.header;
    const rel = posix.normalize(h.path.replace(/^\/+/, '')).replace(/\/+$/, '');
    if (rel === '..' || rel.startsWith('../')) throw cpError('-', ctx.dest, `"${h.path}" is outside of "${ctrDest}"`);
    if (rel === '.' || rel === '') continue;
    const where = posix.join(destPath, rel);
    try {
      await placeEntry(root, entry, where, destPath, ctx, dirs);
    } catch (err) {
      if (err instanceof TsrunError) throw err;
      throw cpError('-', ctx.dest, `extracting ${h.path}: ${(err as Error).message}`);
    }
  }
  while (!(await it.next()).done) {
    /* the rest of the stream */
  }
  // Directory times last, so the entries made inside them do not change them again.
  for (const d of dirs.reverse()) {
    try {
      await withFd(root.walk(d.path, false), (fd) =>
        withFd(openDir(fd), (dfd) => meta(dfd, d.header, ctx.preserveOwnership)),
      );
    } catch {
      /* replaced by a later entry */
    }
  }
  return result;
}

/** Owner (with -a), mode and time of a tar header onto an open fd. */
function meta(fd: number, h: TarEntry['header'], owners: boolean): void {
  if (owners) native().fchownat(fd, '', h.uid, h.gid);
  fchmod(fd, h.mode);
  const t = BigInt(Math.floor(h.mtime * 1e9));
  native().utimensat(fd, '', t, t);
}

/** Make directory `ctrDir` (and missing parents, 0755) inside the root; an O_PATH fd of it. */
function ensureDir(root: SafeRoot, ctrDir: string): number {
  try {
    return root.walk(ctrDir, true);
  } catch (err) {
    if (errno(err) !== 'ENOENT' || ctrDir === '/') throw err;
  }
  const parent = ensureDir(root, posix.dirname(ctrDir));
  try {
    try {
      native().mkdirat(parent, posix.basename(ctrDir), 0o755);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    return native().openat(parent, posix.basename(ctrDir), O_PATH | O_DIRECTORY, 0);
  } finally {
    closeFd(parent);
  }
}

async function placeEntry(
  root: SafeRoot,
  entry: TarEntry,
  where: string,
  destPath: string,
  ctx: { preserveOwnership: boolean; result: CopyResult },
  dirs: { path: string; header: TarEntry['header'] }[],
): Promise<void> {
  const h = entry.header;
  const n = native();
  const name = posix.basename(where);
  const parent = ensureDir(root, posix.dirname(where));
  try {
    const dirMount = fdStat(parent).mount;
    const existing = statAt(parent, name);
    if (h.type === 'dir') {
      if (existing && existing.kind !== 'dir') removeAt(parent, name, existing, dirMount);
      if (existing?.kind !== 'dir') n.mkdirat(parent, name, 0o700);
      dirs.push({ path: where, header: h });
    } else if (h.type === 'file' || h.type === 'hardlink') {
      let output: number;
      if (existing && existing.mount !== dirMount && existing.kind === 'file') {
        output = await withFd(n.openat(parent, name, O_PATH, 0), (fd) =>
          openRegular(fd, constants.O_WRONLY | constants.O_TRUNC),
        );
      } else {
        if (existing) removeAt(parent, name, existing, dirMount);
        output = n.openat(parent, name, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      }
      try {
        if (h.type === 'file') {
          for await (const chunk of entry.body()) {
            let off = 0;
            while (off < chunk.length) off += (await writeFd(output, chunk, off, chunk.length - off)).bytesWritten;
            ctx.result.bytes += chunk.length;
          }
        } else {
          // A hard link: a copy of its target, which an earlier entry of this archive made.
          const target = posix.normalize(h.linkpath.replace(/^\/+/, ''));
          if (target === '..' || target.startsWith('../'))
            throw new Error(`link target "${h.linkpath}" is outside of the destination`);
          await withFd(root.walk(posix.join(destPath, target), false), async (tfd) => {
            const input = openRegular(tfd);
            try {
              const buf = Buffer.allocUnsafe(1 << 20);
              for (;;) {
                const { bytesRead } = await readFd(input, buf, 0, buf.length, null);
                if (bytesRead === 0) break;
                let off = 0;
                while (off < bytesRead) off += (await writeFd(output, buf, off, bytesRead - off)).bytesWritten;
              }
            } finally {
              closeFd(input);
            }
          });
        }
        meta(output, h, ctx.preserveOwnership);
      } finally {
        closeFd(output);
      }
    } else if (h.type === 'symlink') {
      if (existing) removeAt(parent, name, existing, dirMount);
      n.symlinkat(h.linkpath, parent, name);
      if (ctx.preserveOwnership) n.fchownat(parent, name, h.uid, h.gid);
      const t = BigInt(Math.floor(h.mtime * 1e9));
      n.utimensat(parent, name, t, t);
    } else {
      return; // devices, fifos: skipped
    }
    ctx.result.entries++;
  } finally {
    closeFd(parent);
  }
}
