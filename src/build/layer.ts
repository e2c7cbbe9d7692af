/**
 * A build step's changes → a committed layer in the store: the step's upper directory is
 * archived (layers/diff.ts), and the one stream is gzipped into a blob and, at the same time,
 * unpacked into the layer's directory by the same unpacker pulls use. So a built layer on disk is
 * exactly what its tar says — what `push` sends and a later `pull` would unpack — and the
 * upper directory is thrown away. `commitLayerStream` does the same for any uncompressed layer
 * tar (`load`'s and `import`'s), and `commit` uses `commitLayer` on a container's upper dir;
 * `commitLayerBlob` keeps an already compressed blob as it is (`load` of an OCI layout).
 *
 * Contract: like a pull, nothing is visible under blobs/ or layers/ until complete (temp names,
 * rename, the layer lock); a failure removes what it wrote. Idempotent: committing the same
 * content twice yields the same record and keeps the first copy.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { TsrunError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import { decompress } from '../layers/compression.js';
import { diffTar, type DiffOptions } from '../layers/diff.js';
import { unpackTar } from '../layers/unpack.js';
import type { Store } from '../store/store.js';
import type { LayerRecord } from '../store/images.js';

export interface CommitOptions extends DiffOptions {
  /** How the layer is unpacked into the store: as pulls are for this user (see app/pull.ts). */
  unpack: { preserveOwnership: boolean; canMknod: boolean };
  /**
   * Link the layer's files from `dir` rather than writing them again (unpack.ts, linkFrom): only
   * for a build step's finished upper directory, which is removed once the layer is committed —
   * never for a container that lives on (its later writes would change the layer).
   */
  linkFiles?: boolean;
}

export function commitLayer(
  store: Store,
  dir: string,
  parentChainId: string | undefined,
  opts: CommitOptions,
): Promise<LayerRecord> {
  return commitLayerStream(store, diffTar(dir, opts), parentChainId, {
    ...opts,
    ...(opts.linkFiles ? { linkFrom: dir } : {}),
  });
}

export interface StreamCommitOptions {
  overlayXattrPrefix: DiffOptions['overlayXattrPrefix'];
  unpack: CommitOptions['unpack'];
  /** The diff id the tar must have (an image config's); nothing is committed when it differs. */
  expectDiffId?: string;
  onWarning?: (message: string) => void;
  /** See CommitOptions.linkFiles. */
  linkFrom?: string;
}

/** An uncompressed layer tar → a gzipped blob and an unpacked layer, committed together. */
export async function commitLayerStream(
  store: Store,
  tar: AsyncIterable<Buffer>,
  parentChainId: string | undefined,
  opts: StreamCommitOptions,
): Promise<LayerRecord> {
  const ingest = store.tempPath('blob');
  const work = await store.prepareLayer();
  try {
    const gzip = createGzip();
    const file = createWriteStream(ingest, { mode: 0o644 });
    const blobHash = createHash('sha256');
    let size = 0;
    gzip.on('data', (c: Buffer) => {
      blobHash.update(c);
      size += c.length;
    });
    gzip.pipe(file);
    const closed = once(file, 'close');
    // One pass over the tree: each chunk goes to the compressor and to the unpacker.
    const tee = (async function* () {
      for await (const chunk of tar) {
        if (!gzip.write(chunk)) await once(gzip, 'drain');
        yield chunk;
      }
      gzip.end();
    })();
    const result = await unpackTar(tee, work.diff, {
      ...opts.unpack,
      overlayXattrPrefix: opts.overlayXattrPrefix,
      onWarning: opts.onWarning,
      ...(opts.linkFrom !== undefined ? { linkFrom: opts.linkFrom } : {}),
    });
    await closed;
    if (opts.expectDiffId !== undefined && result.diffId !== opts.expectDiffId) {
      throw new TsrunError(
        'ERR_DIGEST_MISMATCH',
        `layer unpacks to diff id ${result.diffId}, but the image config says ${opts.expectDiffId}`,
      );
    }
    const digest = `sha256:${blobHash.digest('hex')}`;
    const chainId = parentChainId ? sha256Digest(`${parentChainId} ${result.diffId}`) : result.diffId;
    await store.withLayerLock(chainId, async () => {
      if (await store.hasBlob(digest)) await fs.rm(ingest, { force: true });
      else await store.commitBlobFile(ingest, digest);
      if (await store.hasLayer(chainId)) await fs.rm(work.dir, { recursive: true, force: true });
      else
        await store.commitLayer(work.dir, {
          chainId,
          diffId: result.diffId,
          tarSize: result.tarSize,
          unpackedSize: result.unpackedSize,
        });
    });
    return { digest, mediaType: MediaType.OCILayerGzip, size, diffId: result.diffId, chainId };
  } catch (err) {
    await fs.rm(ingest, { force: true });
    await fs.rm(work.dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A compressed layer blob on disk (an OCI layout's, under the store's tmp/) kept exactly as it
 * is: its digest and size are checked as it is read, it is unpacked through its decompressor,
 * and it becomes the store's blob by a hard link, so a manifest naming it keeps its digest.
 * `file` itself is left where it is.
 */
export async function commitLayerBlob(
  store: Store,
  file: string,
  desc: { digest: string; mediaType: string; size: number },
  parentChainId: string | undefined,
  opts: StreamCommitOptions,
): Promise<LayerRecord> {
  const compression = layerCompression(desc.mediaType);
  if (compression === undefined)
    throw new TsrunError(
      'ERR_LAYER',
      `layer ${desc.digest} has media type ${desc.mediaType}, which is not an image layer`,
    );
  const work = await store.prepareLayer();
  const ingest = store.tempPath('blob');
  try {
    const source = createReadStream(file);
    const hash = createHash('sha256');
    let size = 0;
    source.on('data', (c: Buffer | string) => {
      hash.update(c);
      size += c.length;
    });
    const result = await unpackTar(decompress(source, compression) as AsyncIterable<Buffer>, work.diff, {
      ...opts.unpack,
      overlayXattrPrefix: opts.overlayXattrPrefix,
      onWarning: opts.onWarning,
    });
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== desc.digest || size !== desc.size) {
      throw new TsrunError(
        'ERR_DIGEST_MISMATCH',
        `layer ${desc.digest}: the blob is ${size} bytes hashing to ${digest}, its descriptor says ${desc.size} bytes`,
      );
    }
    if (opts.expectDiffId !== undefined && result.diffId !== opts.expectDiffId) {
      throw new TsrunError(
        'ERR_DIGEST_MISMATCH',
        `layer ${desc.digest} unpacks to diff id ${result.diffId}, but the image config says ${opts.expectDiffId}`,
      );
    }
    const chainId = parentChainId ? sha256Digest(`${parentChainId} ${result.diffId}`) : result.diffId;
    await store.withLayerLock(chainId, async () => {
      if (!(await store.hasBlob(digest))) {
        await fs.link(file, ingest);
        await store.commitBlobFile(ingest, digest);
      }
      if (await store.hasLayer(chainId)) await fs.rm(work.dir, { recursive: true, force: true });
      else
        await store.commitLayer(work.dir, {
          chainId,
          diffId: result.diffId,
          tarSize: result.tarSize,
          unpackedSize: result.unpackedSize,
        });
    });
    return { digest, mediaType: desc.mediaType, size, diffId: result.diffId, chainId };
  } catch (err) {
    await fs.rm(ingest, { force: true });
    await fs.rm(work.dir, { recursive: true, force: true });
    throw err;
  }
}
