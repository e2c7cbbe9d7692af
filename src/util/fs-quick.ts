/**
 * Small file-system calls done at once: `fs.promises`' shape, synchronous work.
 *
 * Why: each `fs.promises` call is a round trip through libuv's thread pool, 50–130 µs beyond the
 * system call on a 2-vCPU VM, and `run --rm` made ~75 such calls (plus file-handle writes and
 * closes) before and after its container: ~25 ms of a ~260 ms run (docs/benchmarks.md, "run:
 * the file-system calls"). A command line gains nothing from the pool there: nothing else is
 * waiting on the event loop between those steps.
 *
 * Contract: each function takes what its `fs.promises` namesake takes for a path (never a
 * FileHandle) and returns a promise settled before it returns: the value, or the same error as a
 * rejection (so `await` and `.catch` read as before). Only for metadata and small files that
 * tsrun owns (records, names, locks, /etc files, JSON, empty directories), each one or a few
 * system calls. Never for what an image or a user sizes — blobs, layers, a container's tree, a
 * recursive removal of one — nor for an fsync: those stay on `fs.promises`, so a pull's progress
 * and the API service's other requests go on while they run.
 */
import * as f from 'node:fs';

function settled<A extends unknown[], R>(fn: (...a: A) => R): (...a: A) => Promise<R> {
  return (...a) => {
    try {
      return Promise.resolve(fn(...a));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
}

type P = typeof f.promises;

export const quickFs = {
  lstat: settled(f.lstatSync) as unknown as (p: string) => Promise<f.Stats>,
  stat: settled(f.statSync) as unknown as (p: string) => Promise<f.Stats>,
  mkdir: settled(f.mkdirSync) as P['mkdir'],
  readFile: settled(f.readFileSync) as unknown as P['readFile'],
  writeFile: settled(f.writeFileSync) as unknown as P['writeFile'],
  readdir: settled(f.readdirSync) as unknown as (p: string) => Promise<string[]>,
  readlink: settled(f.readlinkSync) as unknown as (p: string) => Promise<string>,
  symlink: settled(f.symlinkSync) as P['symlink'],
  /** One entry (a file, a link); a directory's tree goes through util/fs.ts's removeTree. */
  rm: settled(f.rmSync) as P['rm'],
};
