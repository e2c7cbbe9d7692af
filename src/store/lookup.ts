/**
 * Finding an image the way Docker does from what a user typed: a full or short image id
 * (`sha256:…`, `a416a98b71e2`), a name (`node`, `node:17`, `localhost:5000/app:1`), or a name
 * with a digest (`node@sha256:…`). Names are tried first, then id prefixes, as Docker does.
 */
import { TsrunError, isTsrunError } from '../errors.js';
import { formatReference, parseReference, repositoryName } from '../reference/reference.js';
import type { ImageRecord, ImagesFile } from './images.js';

export interface Found {
  record: ImageRecord;
  /** The full reference the user named, when they named a tag. */
  tag?: string;
  /** The `repository@digest` the user named, when they named a digest. */
  repoDigest?: string;
}

export function findImage(file: ImagesFile, query: string): Found {
  const byName = findByName(file, query);
  if (byName) return byName;
  const hex = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(query)?.[1];
  if (hex) {
    const matches = Object.values(file.images).filter((img) => img.id.slice(7).startsWith(hex));
    if (matches.length === 1) return { record: matches[0] as ImageRecord };
    if (matches.length > 1) {
      throw new TsrunError(
        'ERR_IMAGE_NOT_FOUND',
        `image id prefix "${query}" is ambiguous (${matches.length} images)`,
        { hint: 'give more characters of the id' },
      );
    }
  }
  throw new TsrunError('ERR_IMAGE_NOT_FOUND', `no such image: ${query}`, {
    hint: `pull it first: tsrun pull ${query}`,
  });
}

function findByName(file: ImagesFile, query: string): Found | undefined {
  let ref;
  try {
    ref = parseReference(query);
  } catch (err) {
    if (isTsrunError(err, 'ERR_REFERENCE')) return undefined;
    throw err;
  }
  if (ref.digest) {
    const repoDigest = `${repositoryName(ref)}@${ref.digest}`;
    const record = Object.values(file.images).find(
      (img) =>
        img.repoDigests.includes(repoDigest) ||
        (img.manifestDigest === ref.digest && img.repoDigests.some((d) => d.startsWith(`${repositoryName(ref)}@`))),
    );
    return record ? { record, repoDigest } : undefined;
  }
  const tag = formatReference(ref);
  const id = file.tags[tag];
  const record = id ? file.images[id] : undefined;
  return record ? { record, tag } : undefined;
}
