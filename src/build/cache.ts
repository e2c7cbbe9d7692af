/**
 * The build cache: step key → the state after the step (an image config and its layers), one
 * small JSON file per key under `<store>/build-cache/`.
 *
 * A key is sha256 over the parent state's id, the instruction as evaluated (expanded arguments,
 * flags, build arguments a RUN sees) and, for COPY/ADD, the digest of the sources' content — so
 * an unchanged rebuild finds every step, and changing one file misses from its COPY on.
 * Entries pin nothing: garbage collection may remove a layer an entry names; `get` then treats
 * the entry as a miss (the caller checks the layers are still in the store, under the store's
 * shared lock, which keeps GC away for the rest of the build).
 * Contract: entries are written atomically; a corrupt or foreign file is a miss, never an error.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256Digest, digestHex } from '../oci/digest.js';
import type { LayerRecord } from '../store/images.js';
import { writeFileAtomic } from '../util/fs.js';
import { withFileLock } from '../native/index.js';

export interface BuildState {
  /** The image config exactly as it would be stored (its sha256 is the state's id). */
  configBytes: string;
  layers: LayerRecord[];
}

export function stateId(s: BuildState): string {
  return sha256Digest(s.configBytes);
}

export function stepKey(parent: BuildState, parts: readonly unknown[]): string {
  return sha256Digest(JSON.stringify([stateId(parent), ...parts]));
}

export class BuildCache {
  constructor(readonly dir: string) {}

  private file(key: string): string {
    return path.join(this.dir, `${digestHex(key)}.json`);
  }

  async get(key: string): Promise<BuildState | undefined> {
    try {
      const v = JSON.parse(await fs.readFile(this.file(key), 'utf8')) as Partial<BuildState>;
      if (typeof v.configBytes !== 'string' || !Array.isArray(v.layers)) return undefined;
      return { configBytes: v.configBytes, layers: v.layers };
    } catch {
      return undefined;
    }
  }

  async put(key: string, state: BuildState): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(key), JSON.stringify(state), 0o600);
  }

  /**
   * Run `fn` (look the step up, else execute and store it) while holding step `key`'s lock
   * (`<store>/locks/step-<hex>.lock`): the same step started by two builds at once runs once,
   * and the second finds the first's result, so both end with the same layers and one image.
   */
  withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(path.join(this.dir, '..', 'locks', `step-${digestHex(key)}.lock`), 'ex', fn);
  }

  /** Remove every entry (`tsrun builder prune`); returns how many. */
  async clear(): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) await fs.rm(path.join(this.dir, n), { force: true });
    return names.length;
  }
}
