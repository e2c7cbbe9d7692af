/**
 * Small filesystem helpers shared by the store, the container records, the network and build's
 * cache: atomic writes (temp name + fsync + rename), fresh temp names tagged with our pid, and
 * removal of temp entries whose process is gone.
 *
 * Contract: `writeFileAtomic` either leaves the old file (or nothing) or the complete new one,
 * never a torn file (with `volatile`, only while the host runs: see there); temp entries are named `<pid>-<random>` so a later process can tell whether
 * their writer is still alive.
 */
import {
  closeSync,
  lstatSync,
  promises as fs,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { quickFs } from './fs-quick.js';
import path from 'node:path';
import { native } from '../native/index.js';
import { randomHex } from './random.js';

/**
 * Write `file` by a temp name and rename(2): a reader sees the old or the whole new content.
 * The data is synced first, so a host crash cannot leave a torn file either, unless `volatile`:
 * for a container's runtime state (runtime/paths.ts), which means nothing after a reboot (its
 * monitor is gone) and which a crash may leave damaged (read as such: records.ts); its syncs
 * cost `run` a journal commit each where /run is no tmpfs. A volatile write is done at once,
 * synchronously (no fsync to wait for: util/fs-quick.ts says why); a synced one goes through
 * the thread pool, so its fsync never holds the event loop.
 */
export async function writeFileAtomic(
  file: string,
  data: Buffer | string,
  mode = 0o644,
  o: { volatile?: boolean } = {},
): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomHex(4)}.tmp`);
  if (o.volatile) return writeNow(tmp, file, data, mode);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    if (!o.volatile) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

function writeNow(tmp: string, file: string, data: Buffer | string, mode: number): void {
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function tempName(prefix: string): string {
  return `${process.pid}-${prefix}-${randomHex(6)}`;
}

/** Whether process `pid` exists (ours or another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove entries of `dir` named `<pid>-…` whose pid no longer runs. Returns how many were removed. */
export async function removeStaleTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await quickFs.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    if (await removeTempEntry(path.join(dir, name))) removed++;
  }
  return removed;
}

/**
 * Remove a temp entry. A killed build can leave its step's root mounted there: unmount first,
 * and leave the entry alone (false) while something still holds the mount.
 */
export async function removeTempEntry(p: string): Promise<boolean> {
  if (!unmountUnder(p)) return false;
  await fs.rm(p, { recursive: true, force: true });
  return true;
}

/** Unmount every mount at or below `top`, deepest first; false if one is still busy. */
function unmountUnder(top: string): boolean {
  const targets = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((t): t is string => t !== undefined && (t === top || t.startsWith(`${top}/`)))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) {
    try {
      native().umount(t);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Remove `p` (a file, or a directory and everything in it; nothing if absent), never following a
 * symbolic link. A tree of at most `atOnce` entries (a container that changed little, tsrun's own
 * few files) goes at once, synchronously: each fs.promises call of a recursive `fs.rm` is a
 * thread-pool round trip, ~10 ms for a container's four nearly empty directories on a 2-vCPU VM.
 * A larger tree goes to `fs.rm` on the thread pool, so it never holds the event loop
 * (util/fs-quick.ts). For trees no process changes meanwhile (a stopped container's).
 */
export async function removeTree(p: string, atOnce = 64): Promise<void> {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) return unlinkSync(p);
  const plan: { path: string; dir: boolean }[] = [{ path: p, dir: true }];
  if (!listDir(p, plan, atOnce)) return fs.rm(p, { recursive: true, force: true });
  // Children come after their directory in the plan: remove from the end.
  for (let i = plan.length - 1; i >= 0; i--) {
    const e = plan[i] as { path: string; dir: boolean };
    try {
      if (e.dir) rmdirSync(e.path);
      else unlinkSync(e.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Append what is under directory `dir` to `plan`, parents first; false once it holds more than
 * `max`. Only entries that are directories themselves are entered (a link is an entry to unlink).
 */
function listDir(dir: string, plan: { path: string; dir: boolean }[], max: number): boolean {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (plan.length >= max) return false;
    const child = path.join(dir, d.name);
    plan.push({ path: child, dir: d.isDirectory() });
    if (d.isDirectory() && !listDir(child, plan, max)) return false;
  }
  return true;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await quickFs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** `writeFileAtomic`'s temp names: `.<file>.<pid>-<hex>.tmp`. */
const DOT_TEMP_RE = /^\..+\.(\d+)-[0-9a-f]{8}\.tmp$/;

/** Remove `writeFileAtomic` temp files in `dir` whose writer is gone (a kill between write and rename). */
export async function removeStaleDotTemps(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await quickFs.readdir(dir).catch(() => [] as string[])) {
    const pid = Number(DOT_TEMP_RE.exec(name)?.[1] ?? 0);
    if (pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    await quickFs.rm(path.join(dir, name), { force: true });
    removed++;
  }
  return removed;
}
