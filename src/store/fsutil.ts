/**
 * Small filesystem helpers for the store: atomic writes (temp name + fsync + rename), fresh
 * temp names tagged with our pid, and removal of temp entries whose process is gone.
 *
 * Contract: `writeFileAtomic` either leaves the old file (or nothing) or the complete new one,
 * never a torn file; temp entries are named `<pid>-<random>` so a later process can tell whether
 * their writer is still alive.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
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

export function tempName(prefix: string): string {
  return `${process.pid}-${prefix}-${randomBytes(6).toString('hex')}`;
}

function pidAlive(pid: number): boolean {
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
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    await fs.rm(path.join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
