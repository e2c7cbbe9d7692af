/**
 * A directory tree that may be changed under us while we use it — a running container's root —
 * reached only through file descriptors. The shared walk for `cp` today, and for export, commit,
 * diff and volume copy-up next (issue 13; ARCHITECTURE.md: "a running container is an adversary").
 *
 * Why fds: a path string is resolved again by every syscall that takes it, so a container that
 * swaps a directory for a symlink to "/" between our check and our use (Docker's CVE-2018-15664)
 * sends the second syscall to the host. Here a container path is resolved once, by the kernel's
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the root's fd (or the same rules one
 * O_PATH|O_NOFOLLOW component at a time where openat2 is missing: native-helpers/src/walk.c),
 * to an O_PATH fd, and everything after that is relative to fds: one-component *at() calls that
 * never follow a final symlink, and file contents only through `openRegular`, which checks the
 * type on the O_PATH fd before reopening it (a fifo or a device node the container swapped in is
 * never opened: opening a device can have effects, and a fifo would block forever).
 *
 * Which files a walk sees is decided by the root fd's mount namespace: a root opened as
 * /proc/<pid>/root is walked through that process's mounts (bind mounts, /etc/hosts), exactly as
 * the container sees them; a walk can cross into a mount below the root but ".." and absolute
 * links never climb above it.
 *
 * Contract: `SafeRoot.open` trusts the path it is given (the caller's own store or /proc);
 * container paths given to `walk`/`locate` are untrusted and never leave the root. Every fd
 * returned is the caller's to close (`closeFd`). A path that changes during a call can make it
 * fail (ENOENT, ELOOP, ENOTDIR) — never reach outside the root.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import posix from 'node:path/posix';
import { native, type Statx } from '../native/index.js';

/** open(2) flags Node's fs.constants lacks (the same on x86-64 and arm64). */
export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
const S_IFMT = 0o170000;

export type Kind = 'file' | 'dir' | 'symlink' | 'other';

export interface EntryStat {
  kind: Kind;
  /** Permission bits with setuid, setgid and sticky. */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Mount id (dev where the kernel lacks STATX_MNT_ID): differs across a mount point. */
  mount: string;
}

function kindOf(mode: number): Kind {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

function toEntry(s: Statx): EntryStat {
  return {
    kind: kindOf(s.mode),
    perm: s.mode & 0o7777,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    atimeNs: BigInt(s.atimeSec) * 1_000_000_000n + BigInt(s.atimeNsec),
    mtimeNs: BigInt(s.mtimeSec) * 1_000_000_000n + BigInt(s.mtimeNsec),
    mount: s.mntId >= 0 ? `m${s.mntId}` : `d${s.dev}`,
  };
}

/** What an fd (O_PATH included) names; never follows. */
export function fdStat(fd: number): EntryStat {
  return toEntry(native().statx(fd, '', false));
}

/** `name` in the directory `dirfd`, not followed; undefined when absent. */
export function statAt(dirfd: number, name: string): EntryStat | undefined {
  try {
    return toEntry(native().statx(dirfd, name, false));
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function closeFd(fd: number | undefined): void {
  if (fd !== undefined && fd >= 0) closeSync(fd);
}

/** Run `fn` with `fd`, closing it afterwards whatever happens. */
export async function withFd<T>(fd: number, fn: (fd: number) => Promise<T> | T): Promise<T> {
  try {
    return await fn(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * A readable fd for the regular file an O_PATH fd names. The type is checked on the O_PATH fd
 * (which cannot change what it names) before anything is opened.
 */
export function openRegular(pathFd: number, flags = 0): number {
  const st = fdStat(pathFd);
  if (st.kind !== 'file') throw Object.assign(new Error(`not a regular file (${st.kind})`), { code: 'EINVAL' });
  return native().reopen(pathFd, flags);
}

/** A real (readable, fchmod-able) fd for the directory an O_PATH fd names. */
export function openDir(pathFd: number): number {
  return native().reopen(pathFd, O_DIRECTORY);
}

/** Where a container path ends: the directory that holds it and its last name (undefined for "/"). */
export interface Located {
  /** O_PATH fd of the parent directory (the caller closes it). */
  dir: number;
  name: string | undefined;
  /** The entry itself, not followed; undefined if absent. */
  stat: EntryStat | undefined;
  /** The container path this ended at, after the final links followed. */
  path: string;
}

const MAX_LINKS = 40;

export class SafeRoot {
  private constructor(
    readonly fd: number,
    readonly label: string,
  ) {}

  /** `hostDir` is trusted (the store's mount point, /proc/<pid>/root); `label` names it in messages. */
  static open(hostDir: string, label = hostDir): SafeRoot {
    return new SafeRoot(openTrusted(hostDir), label);
  }

  /** An O_PATH fd for `ctrPath` resolved inside the root (`followFinal`: through a final link). */
  walk(ctrPath: string, followFinal = true): number {
    return native().walkInRoot(this.fd, ctrPath, followFinal);
  }

  /** The root's own mount id, to tell whether a directory is on it or on a mount below it. */
  rootStat(): EntryStat {
    return fdStat(this.fd);
  }

  /**
   * The parent directory and last name of `ctrPath`, with a final symlink followed (inside the
   * root, up to 40 times) when `followFinal`. The entry may be absent; its parent must exist.
   * "." and ".." as the last name, and "/", are directories and have no parent here: `name` is
   * undefined and `dir` is the directory itself.
   */
  locate(ctrPath: string, followFinal: boolean): Located {
    let p = ctrPath.startsWith('/') ? ctrPath : `/${ctrPath}`;
    for (let links = 0; ; links++) {
      const trimmed = p.replace(/\/+$/, '') || '/';
      const name = posix.basename(trimmed);
      if (trimmed === '/' || name === '.' || name === '..') {
        return { dir: this.walk(trimmed, true), name: undefined, stat: undefined, path: trimmed };
      }
      const parent = posix.dirname(trimmed);
      const dir = this.walk(parent, true);
      let stat: EntryStat | undefined;
      try {
        stat = statAt(dir, name);
        if (stat?.kind !== 'symlink' || !followFinal) return { dir, name, stat, path: trimmed };
        if (links >= MAX_LINKS)
          throw Object.assign(new Error(`resolving ${ctrPath}: too many levels of symbolic links`), { code: 'ELOOP' });
        const target = native().readlinkat(dir, name);
        p = target.startsWith('/') ? target : `${parent}/${target}`;
      } catch (err) {
        closeFd(dir);
        throw err;
      }
      closeFd(dir);
    }
  }

  /** A text file of the root (e.g. /etc/passwd); undefined if absent or not a regular file. */
  readText(ctrPath: string): string | undefined {
    let pathFd: number | undefined;
    let fd: number | undefined;
    try {
      pathFd = this.walk(ctrPath, true);
      fd = openRegular(pathFd);
      return readAllSync(fd);
    } catch {
      return undefined;
    } finally {
      closeFd(fd);
      closeFd(pathFd);
    }
  }

  close(): void {
    closeFd(this.fd);
  }
}

/** O_PATH|O_DIRECTORY of a trusted host directory (its links followed, as any host path is). */
export function openTrusted(hostDir: string): number {
  return openSync(hostDir, O_PATH | O_DIRECTORY);
}

function readAllSync(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(1 << 16);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}
