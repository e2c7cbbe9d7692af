/**
 * Volume copy-up: an empty volume mounted where the image has content gets a copy of it (owners,
 * modes, times, xattrs, symlinks as links), as Docker's local volumes do (moby
 * daemon/volumes_unix.go copyExistingContents, containerd/continuity fs.CopyDir).
 *
 * Both sides are untrusted: the source is the image's content in a container's root (a layer
 * may hold a symlink to "/" where a directory should be), and the destination is a volume that
 * another, running container may be changing under us. So, as in rootfs-copy.ts: the source is
 * resolved inside its root by the kernel (SafeRoot), the volume's `_data` is opened once as a
 * trusted host path, and everything below both is done relative to directory fds, one name at
 * a time, never through a symlink (O_NOFOLLOW everywhere; a symlink is copied as a link).
 *
 * Owners: kept as they are in the root. Inside the rootless namespace that is the container
 * user's mapped ids; where the namespace maps a single id, a chown it cannot make is skipped
 * (the files stay the user's). Hard links are copied as separate files; special files
 * (devices, fifos, sockets) are skipped.
 *
 * Contract: copies only into an empty volume (checked by the caller, and again on the opened
 * directory). Not atomic: a failure leaves a partial copy, which the next container does not
 * complete (the volume is no longer empty), as Docker's.
 */
import { constants, fchmodSync, fchownSync } from 'node:fs';
import { native } from '../native/index.js';
import { copyBytes } from './rootfs-copy.js';
import {
  closeFd,
  errno,
  fdStat,
  O_DIRECTORY,
  O_PATH,
  openDir,
  openRegular,
  openTrusted,
  SafeRoot,
  withFd,
  type EntryStat,
} from './safe-root.js';

/** What overlayfs keeps for itself: never part of the content. */
const OVERLAY_XATTR = /^(trusted|user)\.(overlay|fuseoverlayfs)\./;

export interface CopyUpResult {
  copied: boolean;
  entries: number;
  bytes: number;
}

function chownTolerant(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // A single-id rootless namespace cannot give files to other ids: they stay the user's.
    if (errno(err) !== 'EINVAL' && errno(err) !== 'EPERM') throw err;
  }
}

/** xattrs of the O_PATH fd `src` onto the fd `dst` (a real fd or an O_PATH one). */
function copyXattrs(src: number, dst: number): void {
  const n = native();
  let names: string[];
  try {
    names = n.flistxattr(src);
  } catch {
    return; // a file system without xattrs
  }
  for (const name of names) {
    if (OVERLAY_XATTR.test(name)) continue;
    const value = n.fgetxattr(src, name);
    if (value === null) continue;
    try {
      n.fsetxattr(dst, name, value);
    } catch (err) {
      // trusted.* needs real root, security.* may be refused in a user namespace: best effort,
      // as continuity's copy (it ignores ENOTSUP and EPERM).
      if (!['ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES'].includes(errno(err) ?? '')) throw err;
    }
  }
}

function applyMeta(fd: number, st: EntryStat): void {
  chownTolerant(() => fchownSync(fd, st.uid, st.gid));
  fchmodSync(fd, st.perm); // after the chown, which clears setuid bits
  native().utimensat(fd, '', st.atimeNs, st.mtimeNs);
}

/** Copy the children of the directory `srcDir` (O_PATH) into the open directory `dstDir`. */
async function copyChildren(srcDir: number, dstDir: number, r: CopyUpResult): Promise<void> {
  const n = native();
  const inDir = openDir(srcDir);
  try {
    for (const name of n.readdir(inDir)) {
      let child: number;
      try {
        child = n.openat(inDir, name, O_PATH, 0);
      } catch (err) {
        if (errno(err) === 'ENOENT') continue;
        throw err;
      }
      await withFd(child, (fd) => copyOne(fd, fdStat(fd), dstDir, name, r));
    }
  } finally {
    closeFd(inDir);
  }
}

async function copyOne(src: number, st: EntryStat, dstDir: number, name: string, r: CopyUpResult): Promise<void> {
  const n = native();
  if (st.kind === 'dir') {
    n.mkdirat(dstDir, name, 0o700);
    const out = n.openat(dstDir, name, O_DIRECTORY, 0);
    try {
      await copyChildren(src, out, r);
      copyXattrs(src, out);
      applyMeta(out, st);
    } finally {
      closeFd(out);
    }
  } else if (st.kind === 'file') {
    const input = openRegular(src);
    try {
      const output = n.openat(dstDir, name, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        r.bytes += await copyBytes(input, output);
        copyXattrs(src, output);
        applyMeta(output, st);
      } finally {
        closeFd(output);
      }
    } finally {
      closeFd(input);
    }
  } else if (st.kind === 'symlink') {
    n.symlinkat(n.readlinkat(src, ''), dstDir, name);
    chownTolerant(() => n.fchownat(dstDir, name, st.uid, st.gid));
    n.utimensat(dstDir, name, st.atimeNs, st.mtimeNs);
  } else {
    return;
  }
  r.entries++;
}

/**
 * Copy what `rootDir` (a container's mounted root, no process in it yet) has at `ctrPath` into
 * the empty volume directory `volumeData`. Nothing to copy (the path is missing or not a
 * directory, or the volume is not empty): `copied` is false and nothing is written.
 */
export async function copyUp(rootDir: string, ctrPath: string, volumeData: string): Promise<CopyUpResult> {
  const r: CopyUpResult = { copied: false, entries: 0, bytes: 0 };
  const root = SafeRoot.open(rootDir);
  try {
    let src: number;
    try {
      src = root.walk(ctrPath, true);
    } catch (err) {
      if (['ENOENT', 'ENOTDIR'].includes(errno(err) ?? '')) return r;
      throw err;
    }
    await withFd(src, async (srcFd) => {
      const st = fdStat(srcFd);
      if (st.kind !== 'dir') return;
      const dst = openTrustedDir(volumeData);
      try {
        if (native().readdir(dst).length > 0) return;
        await copyChildren(srcFd, dst, r);
        copyXattrs(srcFd, dst);
        applyMeta(dst, st);
        r.copied = true;
      } finally {
        closeFd(dst);
      }
    });
    return r;
  } finally {
    root.close();
  }
}

/** A real directory fd for a trusted host directory. */
function openTrustedDir(dir: string): number {
  const pathFd = openTrusted(dir);
  try {
    return openDir(pathFd);
  } finally {
    closeFd(pathFd);
  }
}
