/**
 * Image records: which images the store holds and which names point at them.
 *
 * One JSON file, `images.json`, replaced atomically under an exclusive file lock, so readers
 * (`tsrun images`) need no lock and always see a complete version. An image is keyed by its id
 * (the config digest, as Docker does); names are full references (docker.io/library/node:latest).
 * A tag points at exactly one image; re-pointing it leaves the old image untagged (`<none>`).
 */
import { z } from 'zod';
import { digestSchema } from '../oci/schemas.js';

export const layerRecordSchema = z.object({
  /** Digest of the blob as the registry serves it (compressed). */
  digest: digestSchema,
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  diffId: digestSchema,
  chainId: digestSchema,
});
export type LayerRecord = z.infer<typeof layerRecordSchema>;

export const imageRecordSchema = z.object({
  id: digestSchema,
  manifestDigest: digestSchema,
  manifestMediaType: z.string(),
  /** Digest of the index the manifest was chosen from, when it came from one. */
  indexDigest: digestSchema.optional(),
  /** `repository@digest` for every repository it was pulled from (the digest you pull by). */
  repoDigests: z.array(z.string()),
  layers: z.array(layerRecordSchema),
  /** Sum of the unpacked layers' file sizes. */
  size: z.number().int().nonnegative(),
  created: z.string().optional(),
  storedAt: z.string(),
  lastTagTime: z.string().optional(),
});
export type ImageRecord = z.infer<typeof imageRecordSchema>;

export const imagesFileSchema = z.object({
  version: z.literal(1),
  images: z.record(z.string(), imageRecordSchema),
  /** full reference (registry/repository:tag) → image id */
  tags: z.record(z.string(), digestSchema),
});
export type ImagesFile = z.infer<typeof imagesFileSchema>;

export const emptyImagesFile = (): ImagesFile => ({ version: 1, images: {}, tags: {} });

/** Tags that point at `id`, sorted. */
export function tagsOf(file: ImagesFile, id: string): string[] {
  return Object.entries(file.tags).filter(([, v]) => v === id).map(([k]) => k).sort();
}
