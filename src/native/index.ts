/**
 * The one seam to native-helpers/ (a small N-API addon): the syscalls Node cannot make.
 * Everything kernel-level that Node lacks goes through the `Native` interface, so logic around it
 * can be tested with a fake. The addon is loaded lazily, on first use, to keep start-up fast.
 */
import { promises as fs } from 'node:fs';
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
  /** flock(2); returns false when `nonblock` and the lock is held elsewhere. */
  flock(fd: number, op: 'sh' | 'ex' | 'un', nonblock?: boolean): boolean;
  /** mount(2) without flags; relative paths in `data` resolve against the process's cwd. */
  mount(source: string, target: string, fstype: string, data: string): void;
  /** umount2(2) without flags. */
  umount(target: string): void;
}

interface Addon {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  flock(fd: number, op: number): boolean;
  mount(source: string, target: string, fstype: string, data: string): void;
  umount(target: string): void;
}

const LOCK = { sh: 1, ex: 2, un: 8 } as const;
const LOCK_NB = 4;

let loaded: Native | undefined;

/** The native helpers (native-helpers/build/Release/tsrun_native.node, built by `npm run build`). */
export function native(): Native {
  if (loaded) return loaded;
  const file = nativeBuild('tsrun_native.node');
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(file) as Addon;
  } catch (err) {
    throw new TsrunError('ERR_NATIVE', `loading native helpers ${file}: ${(err as Error).message}`, {
      cause: err, hint: 'run `npm run build` in the tsrun checkout (needs make, g++ and python3)',
    });
  }
  loaded = {
    mknod: (p, mode, major, minor) => addon.mknod(p, mode, major, minor),
    lsetxattr: (p, name, value) => addon.lsetxattr(p, name, value),
    lgetxattr: (p, name) => addon.lgetxattr(p, name),
    llistxattr: (p) => addon.llistxattr(p),
    flock: (fd, op, nonblock = false) => addon.flock(fd, LOCK[op] | (nonblock ? LOCK_NB : 0)),
    mount: (source, target, fstype, data) => addon.mount(source, target, fstype, data),
    umount: (target) => addon.umount(target),
  };
  return loaded;
}

/**
 * Run `fn` holding a flock on `lockFile` (created 0600 if needed). Polls with LOCK_NB so the event
 * loop never blocks. flock locks die with the process: a killed holder never leaves a stale lock.
 */
export async function withFileLock<T>(lockFile: string, mode: 'sh' | 'ex', fn: () => Promise<T>): Promise<T> {
  const n = native();
  const fh = await fs.open(lockFile, 'a', 0o600);
  try {
    let delay = 5;
    while (!n.flock(fh.fd, mode, true)) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 100);
    }
    try {
      return await fn();
    } finally {
      n.flock(fh.fd, 'un');
    }
  } finally {
    await fh.close();
  }
}
