/**
 * The one seam to native-helpers/ (a small N-API addon): the syscalls Node cannot make.
 * Everything kernel-level that Node lacks goes through the `Native` interface, so logic around it
 * can be tested with a fake (`withNative`; test/native/fake.test.ts does). The addon is loaded lazily, on first use, to keep start-up fast.
 */
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TsrunError } from '../errors.js';
import { nativeBuild } from '../util/project.js';

export interface Native {
  /** mknod(2); `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** null when the attribute is absent. */
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  /** The xattrs of what an fd (O_PATH included, any file type) names: through /proc/self/fd/N. */
  fgetxattr(fd: number, name: string): Buffer | null;
  flistxattr(fd: number): string[];
  /** Set an xattr on what an fd (O_PATH included) names: through /proc/self/fd/N. */
  fsetxattr(fd: number, name: string, value: Buffer): void;
  /** flock(2); returns false when `nonblock` and the lock is held elsewhere. */
  flock(fd: number, op: 'sh' | 'ex' | 'un', nonblock?: boolean): boolean;
  /** mount(2) without flags; relative paths in `data` resolve against the process's cwd. */
  mount(source: string, target: string, fstype: string, data: string): void;
  /** umount2(2) without flags. */
  umount(target: string): void;
  /**
   * A new network namespace kept by a bind mount on the existing file `target` (as `unshare
   * --net=FILE` makes it, without starting a program); this process's own namespace is unchanged.
   * Needs CAP_SYS_ADMIN over the mount and network namespaces (root, or inside the rootless namespace).
   */
  newNetns(target: string): void;
  /**
   * Mark a directory FS_TOPDIR_FL (`chattr +T`): ext2/3/4 then spread its new subdirectories over
   * the disk as it does top-level ones. False where the filesystem has no such flag (never throws
   * for that; throws only when `path` cannot be opened as a directory).
   */
  setTopdir(path: string): boolean;
  /**
   * Whether the kernel runs x32 system calls (x86-64 only; CONFIG_X86_X32_ABI): probed with one
   * getpid carrying the x32 bit, and only when this process is under no seccomp filter. null
   * when that cannot be told (another arch, or a filter on this process).
   */
  x32Abi(): boolean | null;
  /**
   * Whether the kernel runs 32-bit system calls (x86-64 only; int 0x80: IA32 emulation built in
   * and not turned off at boot): one getpid through int 0x80 in a vfork'd child, which faults
   * (SIGSEGV, caught by the child's own handler) where the kernel has no such calls. null when
   * that cannot be told (another arch, any other end of the child).
   */
  ia32Abi(): boolean | null;
  /**
   * The store's layer fingerprint lines for the tree at `dir` (native-helpers/src/fingerprint.c;
   * store/verify.ts defines them), handed to `sink` in pieces, in order; the entry count. Null
   * when the JavaScript walk must make them (a name that is not UTF-8, a path too long, an entry
   * that vanished...): what `sink` got is then to be thrown away.
   */
  fingerprintLines(dir: string, sink: (chunk: Buffer) => void): number | null;
  /**
   * The *at() family (native-helpers/src/at.c, walk.c): an O_PATH fd for `path` resolved inside
   * `rootfd` as if it were "/" (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, or the same rules
   * one component at a time). Every `name` below is one path component ("" = the fd itself
   * where allowed); O_NOFOLLOW and O_CLOEXEC are always added to openat.
   */
  walkInRoot(rootfd: number, path: string, followFinal: boolean): number;
  openat(dirfd: number, name: string, flags: number, mode: number): number;
  /** A usable fd for what an O_PATH fd names (open of /proc/self/fd/N; never creates). */
  reopen(fd: number, flags: number): number;
  statx(dirfd: number, name: string, follow: boolean): Statx;
  mkdirat(dirfd: number, name: string, mode: number): void;
  symlinkat(target: string, dirfd: number, name: string): void;
  readlinkat(dirfd: number, name: string): string;
  unlinkat(dirfd: number, name: string, dir: boolean): void;
  renameat(fromDir: number, from: string, toDir: number, to: string): void;
  /** Never follows a symlink; "" changes the fd itself (even an O_PATH one). */
  fchownat(dirfd: number, name: string, uid: number, gid: number): void;
  /** Never follows a symlink; times in nanoseconds since the epoch. */
  utimensat(dirfd: number, name: string, atimeNs: bigint, mtimeNs: bigint): void;
  /** Entry names of a directory fd, without "." and "..". */
  readdir(dirfd: number): string[];
  /** Is the mount that `fd` is on read-only? */
  fsReadonly(fd: number): boolean;
  /**
   * posix_spawn `argv` (argv[0] included) from `file` without forking Node, in a new session,
   * with /dev/null as stdin and stdout, `stderrFd` as stderr and as fd 3 the write end of a
   * new pipe whose read end is `syncFd`, and as fds 4, 5, ... copies of `keep` (one fd or up to
   * four; a negative one leaves its slot closed) (native-helpers/src/spawn.c).
   * Reap `pid` with `reap`.
   */
  spawnDaemon(
    file: string,
    argv: string[],
    stderrFd: number,
    keep?: number | number[],
  ): { pid: number; syncFd: number };
  /**
   * posix_spawn `argv` (argv[0] included) from `file` (a path) without forking Node, with `env`
   * ("K=V" strings) as its environment, in this process's session and working directory; its
   * stdin, stdout and stderr are new pipes whose other ends are returned (close-on-exec; the
   * caller closes them). The program stays this process's child: reap it with `reap`.
   */
  spawnProgram(
    file: string,
    argv: string[],
    env: string[],
  ): { pid: number; stdin: number; stdout: number; stderr: number };
  /**
   * waitpid(2) for a child `spawnDaemon` or `spawnProgram` made: its wait status (blocks until it has exited); with
   * `nohang`, -1 at once while it still runs.
   */
  reap(pid: number, nohang?: boolean): number;
  /** pipe2(2), both ends close-on-exec: [readFd, writeFd]. The caller closes them (fs.closeSync). */
  pipe(): [number, number];
}

export interface Statx {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  dev: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** A device node's major and minor (0 otherwise; an overlayfs whiteout is a 0/0 char device). */
  rdevMajor: number;
  rdevMinor: number;
  /** The mount's id (statx STATX_MNT_ID), -1 where the kernel does not give it (< 5.8). */
  mntId: number;
}

type AtCalls = Pick<
  Native,
  | 'walkInRoot'
  | 'openat'
  | 'reopen'
  | 'statx'
  | 'mkdirat'
  | 'symlinkat'
  | 'readlinkat'
  | 'unlinkat'
  | 'renameat'
  | 'fchownat'
  | 'readdir'
  | 'fsReadonly'
>;

interface Addon extends AtCalls {
  utimensat(dirfd: number, name: string, atimeNs: bigint, mtimeNs: bigint): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, follow?: boolean): void;
  lgetxattr(path: string, name: string, follow?: boolean): Buffer | null;
  llistxattr(path: string, follow?: boolean): string[];
  flock(fd: number, op: number): boolean;
  mount(source: string, target: string, fstype: string, data: string): void;
  umount(target: string): void;
  newNetns(target: string): void;
  setTopdir(path: string): boolean;
  x32Abi(): boolean | null;
  ia32Abi(): boolean | null;
  spawnDaemon(file: string, argv: string[], stderrFd: number, keep: number | number[]): { pid: number; syncFd: number };
  spawnProgram(
    file: string,
    argv: string[],
    env: string[],
  ): { pid: number; stdin: number; stdout: number; stderr: number };
  reap(pid: number, nohang: boolean): number;
  pipe(): [number, number];
  fingerprintLines(dir: string, sink: (chunk: Buffer) => void): number | null;
}

const LOCK = { sh: 1, ex: 2, un: 8 } as const;
const LOCK_NB = 4;

let loaded: Native | undefined;

/**
 * Put `fake` in place of the addon for the length of `fn` (tests): every `native()` call inside
 * returns it, so the logic around a syscall can be tested without the kernel doing it.
 */
export async function withNative<T>(fake: Native, fn: () => Promise<T>): Promise<T> {
  const before = loaded;
  loaded = fake;
  try {
    return await fn();
  } finally {
    loaded = before;
  }
}

/** The native helpers (native-helpers/build/Release/tsrun_native.node, built by `npm run build`). */
export function native(): Native {
  if (loaded) return loaded;
  const file = nativeBuild('tsrun_native.node');
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(file) as Addon;
  } catch (err) {
    throw new TsrunError('ERR_NATIVE', `loading native helpers ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'run `npm run build` in the tsrun checkout (needs make, g++ and python3)',
    });
  }
  loaded = {
    mknod: (p, mode, major, minor) => addon.mknod(p, mode, major, minor),
    lsetxattr: (p, name, value) => addon.lsetxattr(p, name, value),
    lgetxattr: (p, name) => addon.lgetxattr(p, name),
    llistxattr: (p) => addon.llistxattr(p),
    // The magic link names the fd's own inode (a symlink too): following it is exactly that file.
    fgetxattr: (fd, name) => addon.lgetxattr(`/proc/self/fd/${fd}`, name, true),
    flistxattr: (fd) => addon.llistxattr(`/proc/self/fd/${fd}`, true),
    fsetxattr: (fd, name, value) => addon.lsetxattr(`/proc/self/fd/${fd}`, name, value, true),
    flock: (fd, op, nonblock = false) => addon.flock(fd, LOCK[op] | (nonblock ? LOCK_NB : 0)),
    mount: (source, target, fstype, data) => addon.mount(source, target, fstype, data),
    umount: (target) => addon.umount(target),
    newNetns: (target) => addon.newNetns(target),
    setTopdir: (p) => addon.setTopdir(p),
    x32Abi: () => addon.x32Abi(),
    ia32Abi: () => addon.ia32Abi(),
    fingerprintLines: (dir, sink) => addon.fingerprintLines(dir, sink),
    walkInRoot: (rootfd, p, followFinal) => addon.walkInRoot(rootfd, p, followFinal),
    openat: (dirfd, name, flags, mode) => addon.openat(dirfd, name, flags, mode),
    reopen: (fd, flags) => addon.reopen(fd, flags),
    statx: (dirfd, name, follow) => addon.statx(dirfd, name, follow),
    mkdirat: (dirfd, name, mode) => addon.mkdirat(dirfd, name, mode),
    symlinkat: (target, dirfd, name) => addon.symlinkat(target, dirfd, name),
    readlinkat: (dirfd, name) => addon.readlinkat(dirfd, name),
    unlinkat: (dirfd, name, dir) => addon.unlinkat(dirfd, name, dir),
    renameat: (fromDir, from, toDir, to) => addon.renameat(fromDir, from, toDir, to),
    fchownat: (dirfd, name, uid, gid) => addon.fchownat(dirfd, name, uid, gid),
    utimensat: (dirfd, name, a, m) => addon.utimensat(dirfd, name, a, m),
    readdir: (dirfd) => addon.readdir(dirfd),
    fsReadonly: (fd) => addon.fsReadonly(fd),
    spawnDaemon: (file, argv, stderrFd, keep = -1) => addon.spawnDaemon(file, argv, stderrFd, keep),
    spawnProgram: (file, argv, env) => addon.spawnProgram(file, argv, env),
    reap: (pid, nohang = false) => addon.reap(pid, nohang),
    pipe: () => addon.pipe(),
  };
  return loaded;
}

/**
 * Run `fn` holding a flock on `lockFile` (created 0600 if needed). Polls with LOCK_NB so the event
 * loop never blocks. flock locks die with the process: a killed holder never leaves a stale lock.
 * The lock file is opened and closed synchronously (util/fs-quick.ts says why).
 */
export async function withFileLock<T>(lockFile: string, mode: 'sh' | 'ex', fn: () => Promise<T>): Promise<T> {
  const n = native();
  const fd = openSync(lockFile, 'a', 0o600);
  try {
    let delay = 5;
    while (!n.flock(fd, mode, true)) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 100);
    }
    try {
      return await fn();
    } finally {
      n.flock(fd, 'un');
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * As `withFileLock`, but never waits: when the lock is held elsewhere, `fn` is not run and the
 * result is `{ held: false }` (for work that must skip what is in use rather than queue behind it).
 */
export async function withFileLockIfFree<T>(
  lockFile: string,
  mode: 'sh' | 'ex',
  fn: () => Promise<T>,
): Promise<{ held: true; value: T } | { held: false }> {
  const n = native();
  const fd = openSync(lockFile, 'a', 0o600);
  try {
    if (!n.flock(fd, mode, true)) return { held: false };
    try {
      return { held: true, value: await fn() };
    } finally {
      n.flock(fd, 'un');
    }
  } finally {
    closeSync(fd);
  }
}
