/**
 * Reading manifest and index bytes (OCI image-spec manifest.md, image-index.md; Docker v2.2):
 * which kind they are, by media type or shape, checked with the OCI schemas; schema 1 refused.
 * Pure: the bytes come from the registry client (client.ts) or an archive (load).
 */
import { TsrunError } from '../errors.js';
import { MediaType, isIndexType, isManifestType, isSchema1Type } from '../oci/media-types.js';
import { indexSchema, manifestSchema, type Index, type Manifest } from '../oci/schemas.js';

export type ParsedManifest =
  { kind: 'manifest'; mediaType: string; manifest: Manifest } | { kind: 'index'; mediaType: string; index: Index };

/**
 * Validate manifest/index bytes with the OCI schemas. `mediaType` (from getManifest) decides
 * the kind; when it is neither, the JSON's shape does (`manifests` → index, `config` → manifest).
 */
export function parseManifestOrIndex(bytes: Buffer, mediaType: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new TsrunError('ERR_MANIFEST', `reading manifest: not JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TsrunError('ERR_MANIFEST', 'reading manifest: not a JSON object');
  }
  const obj = json as Record<string, unknown>;
  if (obj['schemaVersion'] === 1 || isSchema1Type(mediaType)) {
    throw new TsrunError('ERR_REGISTRY_UNSUPPORTED', 'manifest schema 1 is deprecated and not supported', {
      hint: 'push the image again with a current Docker, podman or buildah',
    });
  }
  const declared = typeof obj['mediaType'] === 'string' ? obj['mediaType'] : undefined;
  if (declared && mediaType && declared !== mediaType && (isIndexType(mediaType) || isManifestType(mediaType))) {
    throw new TsrunError(
      'ERR_MANIFEST',
      `reading manifest: the content says media type ${declared} but was served as ${mediaType}`,
    );
  }
  const type = mediaType || declared || '';
  const kind = isIndexType(type)
    ? 'index'
    : isManifestType(type)
      ? 'manifest'
      : Array.isArray(obj['manifests'])
        ? 'index'
        : obj['config'] !== undefined
          ? 'manifest'
          : undefined;
  if (!kind) {
    throw new TsrunError('ERR_MANIFEST', `reading manifest: unsupported media type "${type || '(none)'}"`, {
      hint: 'tsrun pulls OCI and Docker v2 images',
    });
  }
  const schema = kind === 'index' ? indexSchema : manifestSchema;
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new TsrunError(
      'ERR_MANIFEST',
      `reading ${kind === 'index' ? 'image index' : 'manifest'}: ${issue?.path.join('.') || 'value'}: ${issue?.message}`,
    );
  }
  const mt = type || (kind === 'index' ? MediaType.OCIIndex : MediaType.OCIManifest);
  return kind === 'index'
    ? { kind, mediaType: mt, index: r.data as Index }
    : { kind, mediaType: mt, manifest: r.data as Manifest };
}
