/**
 * zod schemas for the untrusted JSON we read from registries and image configs
 * (OCI image-spec v1.1: descriptor.md, manifest.md, image-index.md, config.md; Docker v2.2).
 *
 * Contract: anything parsed here has been shape-checked; digests match `sha256:<64 hex>` (the
 * only algorithm we accept, as containerd does by default), sizes are non-negative safe integers.
 * Unknown fields pass through untouched so a stored manifest/config keeps its exact bytes
 * elsewhere; these schemas are for reading, never for re-serialising what we verify by digest.
 */
import { z } from '../util/zod.js';

import { DIGEST_RE } from './digest.js';

export { DIGEST_RE };
export const digestSchema = z.string().regex(DIGEST_RE, 'must be sha256:<64 lowercase hex>');

export const platformSchema = z.looseObject({
  architecture: z.string().min(1),
  os: z.string().min(1),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
});
export type Platform = z.infer<typeof platformSchema>;

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema).max(1000),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema).max(10000),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Index = z.infer<typeof indexSchema>;

const stringList = z.array(z.string()).nullish();

export const containerConfigSchema = z.looseObject({
  User: z.string().optional(),
  ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
  Env: stringList,
  Entrypoint: stringList,
  Cmd: stringList,
  Volumes: z.record(z.string(), z.unknown()).nullish(),
  WorkingDir: z.string().optional(),
  Labels: z.record(z.string(), z.string()).nullish(),
  StopSignal: z.string().optional(),
  Healthcheck: z.unknown().optional(),
  Shell: stringList,
  OnBuild: stringList,
});
export type ContainerConfig = z.infer<typeof containerConfigSchema>;

export const imageConfigSchema = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  config: containerConfigSchema.nullish(),
  rootfs: z.object({
    type: z.literal('layers'),
    diff_ids: z.array(digestSchema).max(1000),
  }),
  history: z
    .array(
      z.looseObject({
        created: z.string().optional(),
        created_by: z.string().optional(),
        author: z.string().optional(),
        comment: z.string().optional(),
        empty_layer: z.boolean().optional(),
      }),
    )
    .nullish(),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;
