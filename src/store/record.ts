/**
 * Recording an image (pull, build, commit, load, import): its config and manifest (an OCI
 * manifest made here, or the one the image came with) become blobs, and its record and tags are
 * written to images.json in one update.
 *
 * Contract: the layers are already committed (blobs and unpacked layers, build/layer.ts or a
 * pull); the caller holds the store's shared lock so garbage collection cannot remove them
 * before the record names them. Idempotent: the same config gives the same id and record;
 * an existing record is kept (its repo digests too) and only the tags move.
 */
import { sha256Digest } from '../oci/digest.js';
import { MediaType, ociLayerType } from '../oci/media-types.js';
import type { ImageRecord, LayerRecord } from './images.js';
import type { Store } from './store.js';

export interface RecordedImage {
  id: string;
  manifestDigest: string;
  /** The record is new, or a name now points at it that did not before. */
  changed: boolean;
}

/** What a pulled image brings beyond its config and layers. */
export interface RecordExtras {
  /** The manifest as it came (kept byte for byte, so its digest stays). */
  manifest?: { bytes: Buffer; mediaType: string };
  /** The index the manifest was chosen from. */
  index?: { digest: string; bytes: Buffer };
  /** `repository@digest` the image was pulled as (Docker's RepoDigests). */
  repoDigest?: string;
}

/**
 * Store `configBytes` and an OCI manifest over `layers`, and point every full reference in
 * `names` (docker.io/library/app:1) at the image. `created` is the config's creation time.
 * `extras.manifest` keeps a manifest the image already has (a pulled one, or a loaded OCI
 * layout's, whose config and layer blobs were kept byte for byte: the caller checked they are
 * these), so its digest stays. Small blobs go in before the record: the image exists only once
 * everything it needs does.
 */
export async function recordImage(
  store: Store,
  configBytes: Buffer,
  layers: readonly LayerRecord[],
  names: readonly string[],
  created?: string,
  extras: RecordExtras = {},
): Promise<RecordedImage> {
  const { manifest, index, repoDigest } = extras;
  const id = sha256Digest(configBytes);
  const ociLayers = manifest ? [...layers] : layers.map((l) => ({ ...l, mediaType: ociLayerType(l.mediaType) }));
  const manifestBytes =
    manifest?.bytes ??
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCIManifest,
        config: { mediaType: MediaType.OCIConfig, digest: id, size: configBytes.length },
        layers: ociLayers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    );
  const manifestMediaType = manifest?.mediaType ?? MediaType.OCIManifest;
  const manifestDigest = sha256Digest(manifestBytes);
  if (index) await store.putBlob(index.digest, index.bytes);
  await store.putBlob(manifestDigest, manifestBytes);
  await store.putBlob(id, configBytes);
  const metas = await Promise.all(ociLayers.map((l) => store.readLayerMeta(l.chainId)));
  const now = new Date().toISOString();
  const changed = await store.updateImages((file) => {
    const existing = file.images[id];
    let retagged = false;
    const record: ImageRecord = existing ?? {
      id,
      manifestDigest,
      manifestMediaType,
      ...(index ? { indexDigest: index.digest } : {}),
      repoDigests: [],
      layers: ociLayers,
      size: metas.reduce((n, m) => n + m.unpackedSize, 0),
      created,
      storedAt: now,
    };
    if (repoDigest && !record.repoDigests.includes(repoDigest)) record.repoDigests.push(repoDigest);
    for (const name of names) {
      if (file.tags[name] !== id) {
        record.lastTagTime = now;
        retagged = true;
      }
      file.tags[name] = id;
    }
    file.images[id] = record;
    return existing === undefined || retagged;
  });
  return { id, manifestDigest, changed };
}
