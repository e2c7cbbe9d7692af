/**
 * Recording a locally made image (build, commit, load, import): its config and an OCI manifest
 * become blobs, and its record and tags are written to images.json in one update.
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
}

/**
 * Store `configBytes` and an OCI manifest over `layers`, and point every full reference in
 * `names` (docker.io/library/app:1) at the image. `created` is the config's creation time.
 * `manifest` keeps a manifest the image already has (a loaded OCI layout's, whose config and
 * layer blobs were kept byte for byte: the caller checked they are these), so its digest stays.
 */
export async function recordImage(
  store: Store,
  configBytes: Buffer,
  layers: readonly LayerRecord[],
  names: readonly string[],
  created?: string,
  manifest?: { bytes: Buffer; mediaType: string },
): Promise<RecordedImage> {
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
  await store.putBlob(id, configBytes);
  await store.putBlob(manifestDigest, manifestBytes);
  const metas = await Promise.all(ociLayers.map((l) => store.readLayerMeta(l.chainId)));
  const now = new Date().toISOString();
  await store.updateImages((file) => {
    const record: ImageRecord = file.images[id] ?? {
      id,
      manifestDigest,
      manifestMediaType,
      repoDigests: [],
      layers: ociLayers,
      size: metas.reduce((n, m) => n + m.unpackedSize, 0),
      created,
      storedAt: now,
    };
    for (const name of names) {
      if (file.tags[name] !== id) record.lastTagTime = now;
      file.tags[name] = id;
    }
    file.images[id] = record;
  });
  return { id, manifestDigest };
}
