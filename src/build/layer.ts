/**
 * A build step's changes → a committed layer in the store: the step's upper directory is
 * archived (layers/diff.ts), and the one stream is gzipped into a blob and, at the same time,
 * unpacked into the layer's directory by the same unpacker pulls use. So a built layer on disk is
 * exactly what its tar says — what `push` sends and a later `pull` would unpack — and the
 * upper directory is thrown away.
 *
 * Contract: like a pull, nothing is visible under blobs/ or layers/ until complete (temp names,
 * rename, the layer lock); a failure removes what it wrote. Idempotent: committing the same
 * content twice yields the same record and keeps the first copy.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { sha256Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { diffTar, type DiffOptions } from '../layers/diff.js';
import { unpackTar } from '../layers/unpack.js';
import type { Store } from '../store/store.js';
import type { LayerRecord } from '../store/images.js';

export interface CommitOptions extends DiffOptions {
  /** How the layer is unpacked into the store: as pulls are for this user (see app/pull.ts). */
  unpack: { preserveOwnership: boolean; canMknod: boolean };
}

export async function commitLayer(store: Store, dir: string, parentChainId: string | undefined, opts: CommitOptions): Promise<LayerRecord> {
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
      for await (const chunk of diffTar(dir, opts)) {
        if (!gzip.write(chunk)) await once(gzip, 'drain');
        yield chunk;
      }
      gzip.end();
    })();
    // Files are linked from `dir` rather than written again (unpack.ts, linkFrom): `dir` is the
    // step's finished upper directory, removed once the layer is committed.
    const result = await unpackTar(tee, work.diff, {
      ...opts.unpack, overlayXattrPrefix: opts.overlayXattrPrefix, linkFrom: dir,
    });
    await closed;
    const digest = `sha256:${blobHash.digest('hex')}`;
    const chainId = parentChainId ? sha256Digest(`${parentChainId} ${result.diffId}`) : result.diffId;
    await store.withLayerLock(chainId, async () => {
      if (await store.hasBlob(digest)) await fs.rm(ingest, { force: true });
      else await store.commitBlobFile(ingest, digest);
      if (await store.hasLayer(chainId)) await fs.rm(work.dir, { recursive: true, force: true });
      else await store.commitLayer(work.dir, { chainId, diffId: result.diffId, tarSize: result.tarSize, unpackedSize: result.unpackedSize });
    });
    return { digest, mediaType: MediaType.OCILayerGzip, size, diffId: result.diffId, chainId };
  } catch (err) {
    await fs.rm(ingest, { force: true });
    await fs.rm(work.dir, { recursive: true, force: true });
    throw err;
  }
}
