/**
 * Image records: which images the store holds and which names point at them.
 *
 * One JSON file, `images.json`, replaced atomically under an exclusive file lock, so readers
 * (`tsrun images`) need no lock and always see a complete version. An image is keyed by its id
 * (the config digest, as Docker does); names are full references (docker.io/library/node:latest).
 * A tag points at exactly one image; re-pointing it leaves the old image untagged (`<none>`).
 */
import { DIGEST_RE } from '../oci/digest.js';

export interface LayerRecord {
  /** Digest of the blob as the registry serves it (compressed). */
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  chainId: string;
}

export interface ImageRecord {
  /** The config digest, as Docker does. */
  id: string;
  manifestDigest: string;
  manifestMediaType: string;
  /** Digest of the index the manifest was chosen from, when it came from one. */
  indexDigest?: string;
  /** `repository@digest` for every repository it was pulled from (the digest you pull by). */
  repoDigests: string[];
  layers: LayerRecord[];
  /** Sum of the unpacked layers' file sizes. */
  size: number;
  created?: string;
  storedAt: string;
  lastTagTime?: string;
}

export interface ImagesFile {
  version: 1;
  images: Record<string, ImageRecord>;
  /** full reference (registry/repository:tag) → image id */
  tags: Record<string, string>;
}

/**
 * A structural check of images.json. It is our own file, written atomically, so this guards
 * against a hand-edited or foreign file, not against an attacker; it is deliberately cheap (no
 * zod here: every read-only verb loads this module, and start-up time matters).
 */
export function checkImagesFile(value: unknown): string | undefined {
  const v = value as Partial<ImagesFile> | null;
  if (!v || typeof v !== 'object' || v.version !== 1) return 'version is not 1';
  if (!v.images || typeof v.images !== 'object' || !v.tags || typeof v.tags !== 'object')
    return 'images or tags missing';
  for (const [id, img] of Object.entries(v.images)) {
    if (!DIGEST_RE.test(id) || !img || img.id !== id || !Array.isArray(img.layers) || !Array.isArray(img.repoDigests)) {
      return `image record ${id} is malformed`;
    }
    for (const l of img.layers) {
      if (!DIGEST_RE.test(l?.chainId ?? '') || !DIGEST_RE.test(l?.digest ?? ''))
        return `a layer of image ${id} is malformed`;
    }
  }
  for (const [name, id] of Object.entries(v.tags)) {
    if (typeof id !== 'string' || !v.images[id]) return `tag ${name} points at a missing image`;
  }
  return undefined;
}

export const emptyImagesFile = (): ImagesFile => ({ version: 1, images: {}, tags: {} });

/** Tags that point at `id`, sorted. */
export function tagsOf(file: ImagesFile, id: string): string[] {
  return Object.entries(file.tags)
    .filter(([, v]) => v === id)
    .map(([k]) => k)
    .sort();
}
