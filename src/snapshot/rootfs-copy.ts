/**
 * Copying between a container's root filesystem and host paths: the filesystem half of
 * `tsrun cp`, after Docker's documented rules (docs.docker.com/reference/cli/docker/container/cp/,
 * the "SRC_PATH / DEST_PATH" table; `-L` follows a final symlink of SRC_PATH, `-a` keeps owners).
 *
 * The container's side is a `SafeRoot` (safe-root.ts): its paths are resolved inside it by the
 * kernel, and every read, write, mkdir, chown and removal there is made relative to a directory
 * fd, one name at a time, never through a final symlink — a container racing the copy (swapping a
 * directory for a link to "/", issue 13) can make it fail, never reach the host. Inside a copied
 * tree no symlink is followed: links are copied as links. The host's side is the user's: its
 * paths are opened as given (links followed, as cp does), and from there on the same fd-relative
 * code writes, so a link copied out of the container is never written through either.
 *
 * Mounts: a root opened through the container's mount namespace shows its bind mounts and its
 * /etc/hosts, /etc/hostname and /etc/resolv.conf, so copies go into and out of them. A mount
 * point is never unlinked or renamed over (that would detach the container's mount): a regular
 * file copied onto a file mount point is written in place; anything else onto a mount point is
 * refused. `readonlyRoot` (`--read-only`) refuses writes that land on the root's own mount with
 * Docker's "container rootfs is marked read-only"; a read-only mount refuses with "mounted volume
 * is marked read-only"; writable mounts below a read-only root take copies, as Docker's volumes do.
 *
 * Contract: copies are not atomic. Special files (devices, fifos, sockets) are skipped. The older
 * path-string helpers at the end (`resolveInRoot`, `copyRegularFile`) are for trees no process
 * runs in (build steps, a root being created), never for a running container.
 */
import { constants, fchmodSync, fchownSync, openSync, promises as fs, read, write } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { quickFs } from '../util/fs-quick.js';
import { native } from '../native/index.js';
import {
  closeFd,
  errno,
  fdStat,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  openDir,
  openRegular,
  openTrusted,
  SafeRoot,
  statAt,
  withFd,
  type EntryStat,
} from './safe-root.js';

const MAX_LINKS = 255;

export interface CopyResult {
  entries: number;
  bytes: number;
}

export interface CopyOptions {
  /** `-a`: keep the uid/gid of what is copied. */
  preserveOwnership?: boolean;
  /** `-L`: follow a final symlink of the source. */
  followLink?: boolean;
  /** Copy-in only: the container was created with --read-only. */
  readonlyRoot?: boolean;
}

interface Ctx {
  preserveOwnership: boolean;
  result: CopyResult;
  src: string;
  dest: string;
}

export function cpError(src: string, dest: string, cause: string, hint?: string): TsrunError {
  return new TsrunError('ERR_USAGE', `copying ${src} to ${dest}: ${cause}`, { hint });
}

function because(err: unknown): string {
  switch (errno(err)) {
    case 'ENOENT':
      return 'no such file or directory (it changed during the copy)';
    case 'ELOOP':
    case 'ENOTDIR':
      return 'a path changed into a symbolic link or a file during the copy';
    case 'EROFS':
      return 'read-only file system';
    default:
      return (err as Error).message;
  }
}

// ---------------------------------------------------------------------------------------------
// The fd-relative copy engine: both directions go through it.

/** Remove `name` from `dirfd` (a directory recursively, never into another mount). */
export function removeAt(dirfd: number, name: string, st: EntryStat, parentMount: string): void {
  if (st.mount !== parentMount)
    throw Object.assign(new Error(`${name} is a mount point in the container`), { code: 'EBUSY' });
  if (st.kind === 'dir') {
    const fd = native().openat(dirfd, name, O_DIRECTORY, 0);
    try {
      for (const child of native().readdir(fd)) {
        const cst = statAt(fd, child);
        if (cst) removeAt(fd, child, cst, st.mount);
      }
    } finally {
      closeFd(fd);
    }
  }
  native().unlinkat(dirfd, name, st.kind === 'dir');
}

/** Copy `from`'s bytes to `to` (both open fds) from their current offsets; the number of bytes. */
export async function copyBytes(from: number, to: number): Promise<number> {
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  for (;;) {
    const { bytesRead } = await readFd(from, buf, 0, buf.length, null);
    if (bytesRead === 0) return bytes;
    let off = 0;
    while (off < bytesRead) off += (await writeFd(to, buf, off, bytesRead - off)).bytesWritten;
    bytes += bytesRead;
  }
}

// fs.read/fs.write on fds from the native seam (Node's fs takes any descriptor), off the main thread.
const readFd = promisify(read);
const writeFd = (fd: number, buf: Buffer, off: number, len: number) => promisify(write)(fd, buf, off, len, null);

/** Owner (with -a), mode and times of `st` onto the open fd `fd`. */
function applyMeta(fd: number, st: EntryStat, c: Ctx): void {
  if (c.preserveOwnership) fchownSync(fd, st.uid, st.gid);
  fchmodSync(fd, st.perm);
  native().utimensat(fd, '', st.atimeNs, st.mtimeNs);
}

/**
 * Copy the entry an O_PATH fd names (`src`, of type `st`) to `name` in the directory `dstDir`,
 * replacing whatever non-directory is in the way (merging into a directory that is there).
 */
export async function copyEntry(src: number, st: EntryStat, dstDir: number, name: string, c: Ctx): Promise<void> {
  const n = native();
  const dirMount = fdStat(dstDir).mount;
  const existing = statAt(dstDir, name);
  if (st.kind === 'dir') {
    if (existing && existing.kind !== 'dir') removeAt(dstDir, name, existing, dirMount);
    if (existing?.kind !== 'dir') n.mkdirat(dstDir, name, 0o700);
    const out = n.openat(dstDir, name, O_DIRECTORY, 0);
    try {
      const inDir = openDir(src);
      try {
        for (const child of n.readdir(inDir)) {
          let childFd: number;
          try {
            childFd = n.openat(inDir, child, O_PATH, 0);
          } catch (err) {
            if (errno(err) === 'ENOENT') continue; // removed since it was listed
            throw err;
          }
          await withFd(childFd, (fd) => copyEntry(fd, fdStat(fd), out, child, c));
        }
      } finally {
        closeFd(inDir);
      }
      applyMeta(out, st, c);
    } finally {
      closeFd(out);
    }
  } else if (st.kind === 'file') {
    const input = openRegular(src);
    try {
      let output: number;
      if (existing && existing.mount !== dirMount && existing.kind === 'file') {
        // A file mount point (/etc/hosts): written in place, its mount left where it is.
        output = await withFd(n.openat(dstDir, name, O_PATH, 0), (fd) =>
          openRegular(fd, constants.O_WRONLY | constants.O_TRUNC),
        );
      } else {
        if (existing) removeAt(dstDir, name, existing, dirMount);
        output = n.openat(dstDir, name, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      }
      try {
        c.result.bytes += await copyBytes(input, output);
        applyMeta(output, st, c);
      } finally {
        closeFd(output);
      }
    } finally {
      closeFd(input);
    }
  } else if (st.kind === 'symlink') {
    const target = n.readlinkat(src, '');
    if (existing) removeAt(dstDir, name, existing, dirMount);
    n.symlinkat(target, dstDir, name);
    if (c.preserveOwnership) n.fchownat(dstDir, name, st.uid, st.gid);
    n.utimensat(dstDir, name, st.atimeNs, st.mtimeNs);
  } else {
    return; // devices, fifos, sockets: skipped
  }
  c.result.entries++;
}

// ---------------------------------------------------------------------------------------------
// Docker's table, shared by both directions.

/** "dir/." (or "dir/./"): copy the contents of dir, not dir itself. */
export function contentsOnly(arg: string): boolean {
  return /(^|\/)\.\/?$/.test(arg);
}

/**
 * Where SRC goes. `destIsDir`: DEST exists and is a directory (undefined: DEST does not exist).
 * Returns `into`: SRC goes into DEST under SRC's name; `as`: SRC becomes DEST; `contents`:
 * SRC's contents go into DEST (made if missing).
 */
function plan(
  srcKind: EntryStat['kind'],
  srcArg: string,
  destArg: string,
  destIsDir: boolean | undefined,
): 'into' | 'as' | 'contents' {
  const contents = contentsOnly(srcArg);
  if (srcKind === 'dir') {
    if (destIsDir === undefined) return 'contents';
    if (!destIsDir) throw cpError(srcArg, destArg, 'cannot copy a directory to a file');
    return contents ? 'contents' : 'into';
  }
  if (contents) throw cpError(srcArg, destArg, 'source is not a directory');
  if (destIsDir === undefined) {
    if (destArg.endsWith('/')) throw cpError(srcArg, destArg, 'destination directory does not exist');
    return 'as';
  }
  return destIsDir ? 'into' : 'as';
}

/** The name SRC is copied under: its last component as the user wrote it ("/" → "root"). */
function baseName(arg: string): string {
  return path.posix.basename(arg.replace(/\/\.?\/?$/, '').replace(/\/+$/, '')) || 'root';
}

function newCtx(src: string, dest: string, o: CopyOptions): Ctx {
  return { preserveOwnership: Boolean(o.preserveOwnership), result: { entries: 0, bytes: 0 }, src, dest };
}

/** container → host. */
export async function copyOut(
  root: SafeRoot,
  ctrPath: string,
  hostDest: string,
  o: CopyOptions = {},
): Promise<CopyResult> {
  const c = newCtx(ctrPath, hostDest, o);
  const follow = Boolean(o.followLink) || /\/\.?\/?$/.test(ctrPath);
  let srcFd: number;
  try {
    srcFd = root.walk(ctrPath, follow);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR')
      throw cpError(ctrPath, hostDest, `no such file or directory in the container: ${ctrPath}`);
    throw cpError(ctrPath, hostDest, because(err));
  }
  return withFd(srcFd, async () => {
    const st = fdStat(srcFd);
    if (contentsOnly(ctrPath) && st.kind !== 'dir') throw cpError(ctrPath, hostDest, 'source is not a directory');
    const destSt = await fs.stat(hostDest).catch(() => undefined);
    const how = plan(st.kind, ctrPath, hostDest, destSt ? destSt.isDirectory() : undefined);
    await writeHost(srcFd, st, hostDest, how, baseName(ctrPath), c);
    return c.result;
  });
}

async function writeHost(
  srcFd: number,
  st: EntryStat,
  hostDest: string,
  how: 'into' | 'as' | 'contents',
  base: string,
  c: Ctx,
): Promise<void> {
  const target = how === 'into' ? path.join(hostDest, base) : path.resolve(hostDest);
  let parent: number;
  try {
    parent = openTrusted(path.dirname(target));
  } catch {
    throw cpError(c.src, c.dest, `no such directory: ${path.dirname(target)}`);
  }
  await withFd(parent, async () => {
    try {
      await copyEntry(srcFd, st, parent, path.basename(target), c);
    } catch (err) {
      if (err instanceof TsrunError) throw err;
      throw cpError(c.src, c.dest, because(err));
    }
  });
}

/** host → container. */
export async function copyIn(
  root: SafeRoot,
  hostSrc: string,
  ctrDest: string,
  o: CopyOptions = {},
): Promise<CopyResult> {
  const c = newCtx(hostSrc, ctrDest, o);
  const trimmed = hostSrc.replace(/\/\.?\/?$/, '') || (hostSrc.startsWith('/') ? '/' : '.');
  let srcFd: number;
  try {
    srcFd = openSync(trimmed, O_PATH | (o.followLink || hostSrc.endsWith('/') ? 0 : O_NOFOLLOW));
  } catch {
    throw cpError(hostSrc, ctrDest, `no such file or directory: ${hostSrc}`);
  }
  return withFd(srcFd, async () => {
    const st = fdStat(srcFd);
    if (contentsOnly(hostSrc) && st.kind !== 'dir') throw cpError(hostSrc, ctrDest, 'source is not a directory');
    const dest = locateDest(root, ctrDest, hostSrc);
    try {
      const destIsDir = dest.name === undefined ? true : dest.stat ? dest.stat.kind === 'dir' : undefined;
      const how = plan(st.kind, hostSrc, ctrDest, destIsDir);
      // The directory new names are made in, and the name.
      let dir: number;
      let name: string;
      if (how === 'into' || (how === 'contents' && dest.name === undefined)) {
        dir = dest.name === undefined ? dest.dir : native().openat(dest.dir, dest.name, O_PATH | O_DIRECTORY, 0);
        name = how === 'into' ? baseName(hostSrc) : '';
      } else {
        dir = dest.dir;
        name = dest.name as string;
      }
      try {
        checkWritable(root, dir, name, o, c);
        if (name === '') {
          // contents of SRC into the existing directory DEST
          const inDir = openDir(srcFd);
          try {
            for (const child of native().readdir(inDir)) {
              await withFd(native().openat(inDir, child, O_PATH, 0), (fd) => copyEntry(fd, fdStat(fd), dir, child, c));
            }
          } finally {
            closeFd(inDir);
          }
        } else {
          await copyEntry(srcFd, st, dir, name, c);
        }
      } finally {
        if (dir !== dest.dir) closeFd(dir);
      }
    } catch (err) {
      if (err instanceof TsrunError) throw err;
      throw cpError(hostSrc, ctrDest, because(err));
    } finally {
      closeFd(dest.dir);
    }
    return c.result;
  });
}

function locateDest(root: SafeRoot, ctrDest: string, hostSrc: string): ReturnType<SafeRoot['locate']> {
  try {
    return root.locate(ctrDest, true);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR')
      throw cpError(hostSrc, ctrDest, `no such directory in the container: ${path.posix.dirname(ctrDest)}`);
    throw cpError(hostSrc, ctrDest, because(err));
  }
}

/**
 * Docker's rules for writing into a container (daemon/archive.go): a read-only mount refuses;
 * outside any mount, a --read-only root refuses. What is checked is where the writes land: the
 * directory names are made in, or an existing directory or file mount point being written.
 */
export function checkWritable(root: SafeRoot, dir: number, name: string, o: CopyOptions, c: Ctx): void {
  const existing = name === '' ? undefined : statAt(dir, name);
  const dirSt = fdStat(dir);
  let landsOn = dir;
  let opened: number | undefined;
  if (existing && (existing.kind === 'dir' || existing.mount !== dirSt.mount)) {
    opened = native().openat(dir, name, O_PATH, 0);
    landsOn = opened;
  }
  try {
    const mount = fdStat(landsOn).mount;
    if (native().fsReadonly(landsOn)) {
      if (mount === root.rootStat().mount) throw cpError(c.src, c.dest, 'container rootfs is marked read-only');
      throw cpError(c.src, c.dest, 'mounted volume is marked read-only');
    }
    if (o.readonlyRoot && mount === root.rootStat().mount)
      throw cpError(c.src, c.dest, 'container rootfs is marked read-only');
  } finally {
    closeFd(opened);
  }
}

// ---------------------------------------------------------------------------------------------
// Path-string helpers, for roots no process runs in (see the module comment).

export async function resolveInRoot(
  root: string,
  unsafePath: string,
  opts: { followFinal?: boolean } = {},
): Promise<string> {
  const followFinal = opts.followFinal ?? true;
  const pending = unsafePath.split('/').filter((p) => p !== '');
  let current: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      current.pop();
      continue;
    }
    const next = [...current, part];
    const st = await quickFs.lstat(path.join(root, ...next)).catch(() => undefined);
    if (st?.isSymbolicLink() && (pending.length > 0 || followFinal)) {
      if (++links > MAX_LINKS) {
        throw new TsrunError(
          'ERR_USAGE',
          `resolving ${unsafePath} in the container: too many levels of symbolic links`,
        );
      }
      const target = await quickFs.readlink(path.join(root, ...next));
      if (target.startsWith('/')) current = [];
      pending.unshift(...target.split('/').filter((p) => p !== ''));
      continue;
    }
    current = next;
  }
  return path.join(root, ...current);
}

/**
 * A text file of a root filesystem (e.g. its /etc/passwd), resolved inside it through
 * safe-root.ts, so it is safe on a running container's root too; undefined if absent.
 */
export function readFileInRoot(root: string, file: string): Promise<string | undefined> {
  try {
    const r = SafeRoot.open(root);
    try {
      return Promise.resolve(r.readText(file));
    } finally {
      r.close();
    }
  } catch {
    return Promise.resolve(undefined);
  }
}

/**
 * Copy a regular file's bytes to a new file `dst` (created with `mode`, never through a link:
 * O_NOFOLLOW on both ends and O_EXCL); returns the bytes copied.
 */
export async function copyRegularFile(src: string, dst: string, mode: number): Promise<number> {
  const input = await fs.open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  let bytes = 0;
  try {
    const output = await fs.open(
      dst,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      mode,
    );
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        await output.write(buf, 0, bytesRead);
        bytes += bytesRead;
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return bytes;
}
