/**
 * Volumes in the store, in Docker's local driver layout (moby volume/local):
 *
 *   volumes/<name>/_data         the volume's files: what containers mount
 *   volumes/<name>/volume.json   its record (name, creation time, labels, options)
 *
 * Contracts:
 * - A volume is visible only complete: it is made under tmp/ (its _data and its record) and
 *   renamed into volumes/ in one step, so a killed `volume create` leaves only a tmp/ entry.
 *   Creating a name that exists is a no-op (Docker's `volume create` is idempotent).
 * - Removal renames the volume out of volumes/ first, then deletes it: a half-deleted volume is
 *   never listed. Deletion never follows a symlink a container left in its volume (fs.rm does not).
 * - Who may remove what (in use, anonymous or named) is decided by the caller (app/volumes.ts),
 *   holding `withVolumesLock` exclusively; container creation holds it shared while it makes its
 *   volumes and writes its record, so a volume is never removed between the two.
 * - Names follow Docker's rule for local volumes; anonymous volumes get 64 hex digits and
 *   Docker's label `com.docker.volume.anonymous` (what `volume prune` without -a removes).
 */
import { randomHex } from '../util/random.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { withFileLock } from '../native/index.js';
import { tempName, writeFileAtomic } from '../util/fs.js';

export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export interface VolumeRecord {
  Name: string;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
}

/**
 * A volume.json as read, checked by hand rather than with zod: this module is on the path of
 * every container command (`ps` too), and loading zod there was ~50 ms of a ~60 ms `ps -a`.
 * Only the four fields are kept (as zod's object schema did).
 */
function parseVolumeFile(v: unknown): VolumeRecord | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const stringMap = (m: unknown): m is Record<string, string> | null =>
    m === null ||
    (typeof m === 'object' && !Array.isArray(m) && Object.values(m as object).every((x) => typeof x === 'string'));
  const { Name, CreatedAt, Labels, Options } = o;
  if (typeof Name !== 'string' || typeof CreatedAt !== 'string' || !stringMap(Labels) || !stringMap(Options))
    return undefined;
  return { Name, CreatedAt, Labels, Options };
}

/** Docker's check (moby volume/local validateName), with its message. */
export function checkVolumeName(name: string): void {
  if (!NAME_RE.test(name))
    throw new TsrunError(
      'ERR_USAGE',
      `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
}

export function anonymousName(): string {
  return randomHex(32);
}

/** RFC 3339 to the second, as Docker's CreatedAt. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export class VolumeStore {
  constructor(readonly storeRoot: string) {}

  get dir(): string {
    return path.join(this.storeRoot, 'volumes');
  }
  volumeDir(name: string): string {
    return path.join(this.dir, name);
  }
  /** The directory containers mount (Docker's Mountpoint). */
  dataPath(name: string): string {
    return path.join(this.volumeDir(name), '_data');
  }

  withLock<T>(mode: 'sh' | 'ex', fn: () => Promise<T>): Promise<T> {
    return withFileLock(path.join(this.storeRoot, 'locks', 'volumes.lock'), mode, fn);
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    if (!NAME_RE.test(name)) return undefined;
    let text: string;
    try {
      text = await fs.readFile(path.join(this.volumeDir(name), 'volume.json'), 'utf8');
    } catch {
      return undefined;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined; // not JSON: as damaged as a wrong shape
    }
    const parsed = parseVolumeFile(data);
    if (!parsed || parsed.Name !== name)
      throw new TsrunError('ERR_STORE', `reading volume ${name}: its record is damaged`, {
        hint: `remove it with \`tsrun volume rm ${name}\``,
      });
    return parsed;
  }

  async list(): Promise<VolumeRecord[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const out: VolumeRecord[] = [];
    for (const n of names.sort()) {
      const v = await this.get(n).catch(() => undefined);
      if (v) out.push(v);
    }
    return out;
  }

  /**
   * The volume `name`, made if missing (empty `_data`, 0755, owned by the caller: inside the
   * rootless namespace, the user). `created` says whether this call made it.
   */
  async ensure(
    name: string,
    o: { labels?: Record<string, string> | null; options?: Record<string, string> | null } = {},
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    checkVolumeName(name);
    const existing = await this.get(name);
    if (existing) return { volume: existing, created: false };
    const volume: VolumeRecord = {
      Name: name,
      CreatedAt: now(),
      Labels: o.labels === undefined ? null : o.labels,
      Options: o.options === undefined ? null : o.options,
    };
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.storeRoot, 'tmp', tempName('volume'));
    await fs.mkdir(tmp, { mode: 0o700 });
    try {
      await fs.mkdir(path.join(tmp, '_data'), { mode: 0o755 });
      await fs.chmod(path.join(tmp, '_data'), 0o755); // whatever the umask
      await writeFileAtomic(path.join(tmp, 'volume.json'), `${JSON.stringify(volume)}\n`, 0o600);
      await fs.rename(tmp, this.volumeDir(name));
      return { volume, created: true };
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') {
        const raced = await this.get(name);
        if (raced) return { volume: raced, created: false };
      }
      throw new TsrunError('ERR_STORE', `creating volume ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Delete the volume and its data (the caller checked it is unused). Missing: false. */
  async remove(name: string): Promise<boolean> {
    if (!NAME_RE.test(name)) return false;
    const gone = path.join(this.storeRoot, 'tmp', tempName('volume-rm'));
    try {
      await fs.rename(this.volumeDir(name), gone);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new TsrunError('ERR_STORE', `removing volume ${name}: ${(err as Error).message}`, { cause: err });
    }
    await fs.rm(gone, { recursive: true, force: true });
    return true;
  }

  /** Is `_data` empty (or missing)? */
  async isEmpty(name: string): Promise<boolean> {
    try {
      return (await fs.readdir(this.dataPath(name))).length === 0;
    } catch {
      return true;
    }
  }

  /** Bytes of the regular files under `_data` (links not followed). */
  async size(name: string): Promise<number> {
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
      }
    };
    await walk(this.dataPath(name));
    return total;
  }
}
