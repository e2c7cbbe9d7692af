/**
 * The content-addressed store under one root directory (`--root`, `TSRUN_ROOT`).
 *
 *   blobs/sha256/<hex>      manifests, indexes, configs and compressed layers, verified before rename
 *   layers/<chainhex>/diff  one unpacked layer per chain id, shared by every image that has it
 *   layers/<chainhex>/layer.json
 *   images.json             image records and tags (see images.ts)
 *   tmp/<pid>-…             work in progress: ingest files and half-unpacked layers
 *   locks/                  flock files
 *
 * Contracts (after containerd's content store):
 * - Nothing is ever visible under blobs/ or layers/ unless complete and verified: everything is
 *   written under tmp/ and renamed into place. A pull killed at any moment leaves only tmp/
 *   entries, which later commands remove once their pid is gone.
 * - Locks: every user of layers (pull, later run) holds `store.lock` shared; garbage collection
 *   holds it exclusive, so it never deletes a layer a running pull just committed. Work on one
 *   layer is serialised by `layer-<chainhex>.lock`, so concurrent pulls never unpack it twice.
 *   flock locks die with their process: a killed pull never leaves a stale lock.
 * - The layout has nothing root-specific: a non-root user gets the same store in their home
 *   (ownership inside layers is then a matter for the unpacker running in a user namespace).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { digestHex, sha256Digest } from '../oci/digest.js';
import { native, withFileLock, withFileLockIfFree } from '../native/index.js';
import { checkImagesFile, emptyImagesFile, type ImageRecord, type ImagesFile } from './images.js';
import { quickFs } from '../util/fs-quick.js';
import { exists, removeStaleDotTemps, removeStaleTemps, tempName, writeFileAtomic } from '../util/fs.js';
import { parseChecked, setAside } from '../util/corrupt.js';
import { integrityOf, stampOf, verifyDiff, type LayerIntegrity, type Verdict } from './verify.js';

export interface LayerMeta {
  chainId: string;
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Sum of the sizes of the regular files in the layer. */
  unpackedSize: number;
  /** How to tell the committed tree from a damaged copy (verify.ts); absent in old stores. */
  integrity?: LayerIntegrity;
}

export class Store {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Open (creating if needed) the store at `root`. The root is 0700: layers hold setuid files. */
  static async open(root: string): Promise<Store> {
    const store = new Store(path.resolve(root));
    try {
      await quickFs.mkdir(store.root, { recursive: true, mode: 0o700 });
      for (const d of ['blobs/sha256', 'layers', 'tmp', 'locks']) {
        await quickFs.mkdir(path.join(store.root, d), { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TsrunError('ERR_STORE', `opening store ${store.root}: ${e.message}`, {
        cause: err,
        hint: e.code === 'EACCES' ? 'choose a directory you can write with --root or TSRUN_ROOT' : undefined,
      });
    }
    // What a killed command left (only entries whose process is gone): cheap when there is none.
    await store.cleanTemp().catch(() => 0);
    await removeStaleDotTemps(store.root).catch(() => 0);
    return store;
  }

  // ---- paths ----
  blobPath(digest: string): string {
    return path.join(this.root, 'blobs', 'sha256', digestHex(digest));
  }
  layerDir(chainId: string): string {
    return path.join(this.root, 'layers', digestHex(chainId));
  }
  /** The unpacked tree of a committed layer (an overlayfs lowerdir). */
  layerDiff(chainId: string): string {
    return path.join(this.layerDir(chainId), 'diff');
  }
  private lockPath(name: string): string {
    return path.join(this.root, 'locks', name);
  }

  // ---- locks ----
  /** Hold the store shared for the duration of fn: pulls and runs. */
  withSharedLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath('store.lock'), 'sh', fn);
  }
  /** Hold the store exclusively (garbage collection). */
  withExclusiveLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath('store.lock'), 'ex', fn);
  }
  /** Run fn holding the store exclusively if nothing holds it now; never waits. */
  ifUnused<T>(fn: () => Promise<T>): Promise<{ held: true; value: T } | { held: false }> {
    return withFileLockIfFree(this.lockPath('store.lock'), 'ex', fn);
  }
  withLayerLock<T>(chainId: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockPath(`layer-${digestHex(chainId)}.lock`), 'ex', fn);
  }

  // ---- temp space ----
  /** A fresh path under tmp/ (not created). Removed by `cleanTemp` once our pid is gone. */
  tempPath(kind: string): string {
    return path.join(this.root, 'tmp', tempName(kind));
  }
  private spread = false;
  /**
   * Mark tmp/ FS_TOPDIR_FL (`chattr +T`) once per process, so that ext4 places each layer
   * unpacked there in a block group of its own choosing (Orlov's top-level spreading) instead of
   * next to tmp/ itself. Why (measured, docs/benchmarks.md "pull/rmi cycles"): on an ext4
   * without a journal the inode allocator checks every free inode of a group for a recent delete
   * (fs/ext4/ialloc.c recently_deleted()) and passes over those freed in the last 60–360 s; every
   * layer unpacked next to tmp/ landed in the groups the previous `rmi` had just emptied, and
   * each file creation there scanned thousands of such inodes (openat 256 µs on average, pulls
   * 1.4 → 11.6 s over four pull/rmi cycles). A no-op where the flag does not exist.
   */
  private spreadTemp(): void {
    if (this.spread) return;
    this.spread = true;
    try {
      native().setTopdir(path.join(this.root, 'tmp'));
    } catch {
      /* only placement: never a reason to fail a pull */
    }
  }
  cleanTemp(): Promise<number> {
    return removeStaleTemps(path.join(this.root, 'tmp'));
  }

  // ---- blobs ----
  hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }
  /** A manifest's or a config's bytes (small: read at once, util/fs-quick.ts). */
  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await quickFs.readFile(this.blobPath(digest));
    } catch (err) {
      throw new TsrunError('ERR_STORE', `reading blob ${digest}: ${(err as Error).message}`, { cause: err });
    }
  }
  /** Store small content (manifests, configs) after checking it hashes to `digest`. Idempotent. */
  async putBlob(digest: string, bytes: Buffer): Promise<void> {
    const actual = sha256Digest(bytes);
    if (actual !== digest) {
      throw new TsrunError('ERR_DIGEST_MISMATCH', `storing blob ${digest}: content hashes to ${actual}`);
    }
    if (await this.hasBlob(digest)) return;
    await writeFileAtomic(this.blobPath(digest), bytes, 0o644);
  }
  /**
   * Move a verified ingest file (under tmp/) into place as `digest`. The caller has verified the
   * digest while streaming (the registry client does). Idempotent: a concurrent identical commit wins.
   */
  async commitBlobFile(tmpFile: string, digest: string): Promise<void> {
    await fs.rename(tmpFile, this.blobPath(digest));
  }

  // ---- layers ----
  hasLayer(chainId: string): Promise<boolean> {
    return exists(path.join(this.layerDir(chainId), 'layer.json'));
  }
  async readLayerMeta(chainId: string): Promise<LayerMeta> {
    return JSON.parse(await quickFs.readFile(path.join(this.layerDir(chainId), 'layer.json'), 'utf8')) as LayerMeta;
  }
  /**
   * A new private work dir for unpacking one layer: returns `{ dir, diff }` where `diff` is the
   * empty directory to unpack into. Commit it with `commitLayer`, or remove `dir` on failure.
   */
  async prepareLayer(): Promise<{ dir: string; diff: string }> {
    this.spreadTemp();
    const dir = this.tempPath('layer');
    await fs.mkdir(dir, { mode: 0o700 });
    const diff = path.join(dir, 'diff');
    await fs.mkdir(diff, { mode: 0o755 });
    return { dir, diff };
  }
  /** Rename a prepared layer into place under its chain id. Call with the layer lock held. */
  async commitLayer(
    dir: string,
    meta: LayerMeta,
    /** The fingerprint of diff/ as it is now, when the caller has just made it (fingerprintOf). */
    made?: { fingerprint: string; entries: number },
  ): Promise<void> {
    // The stamp (diff/'s inode and ctime) survives the rename below: only diff/'s parent moves.
    const diff = path.join(dir, 'diff');
    meta = { ...meta, integrity: made ? { stamp: await stampOf(diff), ...made } : await integrityOf(diff) };
    await writeFileAtomic(path.join(dir, 'layer.json'), JSON.stringify(meta) + '\n');
    try {
      await fs.rename(dir, this.layerDir(meta.chainId));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await this.hasLayer(meta.chainId))) {
        await fs.rm(dir, { recursive: true, force: true });
        return;
      }
      throw err;
    }
  }

  /**
   * Is committed layer `chainId` intact (verify.ts)? A renewed stamp (a faithful copy of the
   * store) or a first fingerprint (an old store) is recorded. A missing layer is not ok.
   */
  async checkLayer(chainId: string): Promise<Verdict> {
    let meta: LayerMeta;
    try {
      meta = await this.readLayerMeta(chainId);
    } catch {
      return { ok: false, reason: 'it is not in the store' };
    }
    const verdict = await verifyDiff(this.layerDiff(chainId), meta.integrity);
    if (verdict.ok && verdict.renewed) {
      await writeFileAtomic(
        path.join(this.layerDir(chainId), 'layer.json'),
        JSON.stringify({ ...meta, integrity: verdict.integrity }) + '\n',
      ).catch(() => {});
    }
    return verdict;
  }

  /**
   * Move a damaged layer out of the way (into tmp/, removed once this process is gone) so it can
   * be fetched again; never deleted in place, in case something still has it mounted.
   */
  async setAsideLayer(chainId: string): Promise<void> {
    await fs
      .rename(this.layerDir(chainId), this.tempPath(`damaged-${digestHex(chainId).slice(0, 12)}`))
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
  }

  // ---- image records ----
  private get imagesFile(): string {
    return path.join(this.root, 'images.json');
  }
  /**
   * The image list. A damaged images.json (not JSON, or not the shape checkImagesFile wants) is
   * set aside under the images lock (util/corrupt.ts) and the store goes on with an empty list:
   * its images are forgotten (their blobs and layers stay until a prune), every other command works.
   */
  async readImages(o: { locked?: boolean } = {}): Promise<ImagesFile> {
    const read = async (): Promise<ImagesFile | { problem: string }> => {
      let text: string;
      try {
        text = await quickFs.readFile(this.imagesFile, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyImagesFile();
        throw new TsrunError('ERR_STORE', `reading ${this.imagesFile}: ${(err as Error).message}`, { cause: err });
      }
      const r = parseChecked<ImagesFile>(text, checkImagesFile);
      return r.ok ? r.value : { problem: r.problem };
    };
    const first = await read();
    if (!('problem' in first)) return first;
    // Readers take no lock: look again under it, so a file a writer has just replaced is not moved.
    const setAsideIfStill = async (): Promise<ImagesFile> => {
      const again = await read();
      if (!('problem' in again)) return again;
      await setAside(this.imagesFile, again.problem, 'every image it listed (tags and records)');
      return emptyImagesFile();
    };
    return o.locked ? setAsideIfStill() : withFileLock(this.lockPath('images.lock'), 'ex', setAsideIfStill);
  }
  /** Read-modify-write images.json under its lock; `fn` mutates the copy it is given. */
  async updateImages<T>(fn: (file: ImagesFile) => T | Promise<T>): Promise<T> {
    return withFileLock(this.lockPath('images.lock'), 'ex', async () => {
      const file = await this.readImages({ locked: true });
      const result = await fn(file);
      await writeFileAtomic(this.imagesFile, JSON.stringify(file, null, 1) + '\n', 0o600);
      return result;
    });
  }

  /**
   * Remove layers and blobs no image refers to, and temp entries whose process is gone. Holds
   * the store exclusively, so it never runs beside a pull, a build or a container's creation
   * (they hold it shared). With `wait: false` it gives up at once when the store is in use
   * (`system prune` must not queue behind another job's build) and returns undefined.
   * `moreLayers` names chain ids to keep besides the images' (the containers'); it is called
   * under the lock, so a container created meanwhile cannot be missed. Returns what was removed
   * and how many bytes that freed.
   */
  gc(moreLayers?: () => Promise<string[]>): Promise<GcReport>;
  gc(moreLayers: () => Promise<string[]>, o: { wait: false }): Promise<GcReport | undefined>;
  async gc(
    moreLayers: () => Promise<string[]> = async () => [],
    o: { wait?: boolean } = {},
  ): Promise<GcReport | undefined> {
    const work = () => this.collect(moreLayers);
    if (o.wait === false) {
      const r = await this.ifUnused(work);
      return r.held ? r.value : undefined;
    }
    return this.withExclusiveLock(work);
  }

  private async collect(moreLayers: () => Promise<string[]>): Promise<GcReport> {
    const file = await this.readImages();
    const keepLayers = new Set<string>((await moreLayers()).map(digestHex));
    const keepBlobs = new Set<string>();
    for (const img of Object.values(file.images) as ImageRecord[]) {
      keepBlobs.add(digestHex(img.id));
      keepBlobs.add(digestHex(img.manifestDigest));
      if (img.indexDigest) keepBlobs.add(digestHex(img.indexDigest));
      for (const l of img.layers) {
        keepLayers.add(digestHex(l.chainId));
        keepBlobs.add(digestHex(l.digest));
      }
    }
    const removed: GcReport = { layers: [], blobs: [], bytes: 0 };
    for (const hex of await fs.readdir(path.join(this.root, 'layers'))) {
      if (keepLayers.has(hex)) continue;
      const meta = await this.readLayerMeta(`sha256:${hex}`).catch(() => undefined);
      // Out of layers/ in one rename, then deleted: a kill in the middle of the deletion leaves a
      // tmp/ entry (removed once our pid is gone), never a layer.json over a half-emptied diff/
      // that a pull would take as present (diff/'s stamp does not change while files deeper
      // down go, so the integrity check would not see it).
      const gone = this.tempPath(`gc-layer-${hex.slice(0, 12)}`);
      try {
        await fs.rename(path.join(this.root, 'layers', hex), gone);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      await fs.rm(gone, { recursive: true, force: true });
      removed.layers.push(`sha256:${hex}`);
      removed.bytes += meta?.unpackedSize ?? 0;
    }
    for (const hex of await fs.readdir(path.join(this.root, 'blobs', 'sha256'))) {
      if (keepBlobs.has(hex)) continue;
      const file = path.join(this.root, 'blobs', 'sha256', hex);
      removed.bytes += (await fs.lstat(file).catch(() => undefined))?.size ?? 0;
      await fs.rm(file, { force: true });
      removed.blobs.push(`sha256:${hex}`);
    }
    // Only entries whose writer is gone: a verb that writes temp files without the shared lock
    // (or a future one) must not lose its work to a prune.
    await this.cleanTemp();
    return removed;
  }
}

export interface GcReport {
  layers: string[];
  blobs: string[];
  /** Unpacked layer bytes and blob bytes freed. */
  bytes: number;
}
