/**
 * Test fixture uploader: puts blobs, manifests and indexes into a TestRegistry with the plain
 * distribution API (POST /v2/<name>/blobs/uploads/, then a monolithic PUT ?digest=; PUT
 * /v2/<name>/manifests/<ref>). This is test scaffolding, not tsrun's push: no retries, no mounts,
 * no chunking; every non-2xx answer throws with the registry's body.
 *
 * Auth: htpasswd mode uses Basic with the first user; token mode asks the harness's token service
 * for a pull+push token as the first user (these requests count in `reg.tokenRequests()`).
 */
import { createHash } from 'node:crypto';
import type { LayerBlob } from './tar-writer.js';
import type { TestRegistry } from './registry.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
};
const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  index: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
};
const DOCKER_LAYER: Record<string, string> = {
  'application/vnd.oci.image.layer.v1.tar+gzip': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar': 'application/vnd.docker.image.rootfs.diff.tar',
};

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

/** The Authorization header to push to `repo`, or undefined for an anonymous registry. */
export async function pushAuthorization(reg: TestRegistry, repo: string): Promise<string | undefined> {
  const [user, pass] = Object.entries(reg.users)[0] ?? [];
  if (reg.auth === 'anonymous') return undefined;
  if (user === undefined || pass === undefined) throw new Error('push: the test registry has no users to push as');
  if (reg.auth === 'htpasswd') return basic(user, pass);
  const t = reg.token;
  if (!t) throw new Error('push: token mode without token service info');
  const url = new URL(t.realm);
  url.searchParams.set('service', t.service);
  url.searchParams.set('scope', `repository:${repo}:pull,push`);
  const res = await fetch(url, { headers: { Authorization: basic(user, pass) } });
  if (!res.ok) throw new Error(`push: token service answered ${res.status}: ${await res.text()}`);
  const json = (await res.json()) as { token?: string; access_token?: string };
  return `Bearer ${json.token ?? json.access_token}`;
}

async function check(res: Response, what: string): Promise<void> {
  if (!res.ok) throw new Error(`${what}: registry answered ${res.status}: ${await res.text()}`);
}

/** Upload one blob (POST + monolithic PUT). Returns its digest. Idempotent. */
export async function uploadBlob(
  reg: TestRegistry,
  repo: string,
  bytes: Buffer,
  authorization?: string,
): Promise<string> {
  const auth = authorization ?? (await pushAuthorization(reg, repo));
  const headers: Record<string, string> = auth ? { Authorization: auth } : {};
  const digest = sha256(bytes);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  await check(start, `starting upload to ${repo}`);
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (!location) throw new Error(`starting upload to ${repo}: no Location header`);
  const put = new URL(location, reg.url);
  put.searchParams.set('digest', digest);
  const res = await fetch(put, {
    method: 'PUT',
    body: bytes,
    headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) },
  });
  await check(res, `uploading blob ${digest} to ${repo}`);
  await res.arrayBuffer();
  return digest;
}

/** PUT a manifest or index under a tag or digest. Returns the digest of the bytes. */
export async function putManifest(
  reg: TestRegistry,
  repo: string,
  ref: string,
  bytes: Buffer,
  mediaType: string,
  authorization?: string,
): Promise<string> {
  const auth = authorization ?? (await pushAuthorization(reg, repo));
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body: bytes,
    headers: { ...(auth ? { Authorization: auth } : {}), 'Content-Type': mediaType },
  });
  await check(res, `putting manifest ${repo}:${ref}`);
  await res.arrayBuffer();
  return sha256(bytes);
}

export interface PushImageOptions {
  layers: LayerBlob[];
  /** Merged over the generated config; `rootfs` is generated from the layers unless given here. */
  config?: Record<string, unknown>;
  /** Default linux/amd64. */
  platform?: PlatformSpec;
  /** Docker v2 schema 2 media types instead of OCI. */
  docker?: boolean;
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
  /** Skip blobs the registry already has (HEAD first), so seeding again uploads nothing. */
  skipExisting?: boolean;
}

export interface PushedImage {
  manifestDigest: string;
  configDigest: string;
  /** The exact manifest bytes as pushed. */
  manifest: Buffer;
  config: Buffer;
  mediaType: string;
}

/** Build config + manifest for `layers`, upload everything and tag it. */
export async function pushImage(
  reg: TestRegistry,
  repo: string,
  tag: string,
  opts: PushImageOptions,
): Promise<PushedImage> {
  const auth = await pushAuthorization(reg, repo);
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const types = opts.docker ? DOCKER : OCI;
  const configObj: Record<string, unknown> = {
    created: '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffId) },
    history: opts.layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `test layer ${i}` })),
    ...opts.config,
  };
  const config = Buffer.from(JSON.stringify(configObj));
  const has = async (digest: string) =>
    opts.skipExisting === true &&
    (
      await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`, {
        method: 'HEAD',
        headers: auth ? { Authorization: auth } : {},
      })
    ).status === 200;
  const configDigest = (await has(sha256(config))) ? sha256(config) : await uploadBlob(reg, repo, config, auth);
  for (const l of opts.layers) if (!(await has(l.digest))) await uploadBlob(reg, repo, l.blob, auth);
  const manifestObj: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: configDigest, size: config.length },
    layers: opts.layers.map((l) => ({
      mediaType: opts.docker ? (DOCKER_LAYER[l.mediaType] ?? l.mediaType) : l.mediaType,
      digest: l.digest,
      size: l.blob.length,
    })),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(manifestObj, null, 2));
  const manifestDigest = await putManifest(reg, repo, tag, manifest, types.manifest, auth);
  return { manifestDigest, configDigest, manifest, config, mediaType: types.manifest };
}

export interface IndexEntry {
  digest: string;
  size: number;
  /** Default: the manifest type matching `docker`. */
  mediaType?: string;
  platform?: PlatformSpec;
  annotations?: Record<string, string>;
}

/** Build an image index (or Docker manifest list) over already-pushed manifests and tag it. */
export async function pushIndex(
  reg: TestRegistry,
  repo: string,
  tag: string,
  entries: IndexEntry[],
  docker = false,
): Promise<{ digest: string; bytes: Buffer; mediaType: string }> {
  const types = docker ? DOCKER : OCI;
  const obj = {
    schemaVersion: 2,
    mediaType: types.index,
    manifests: entries.map((e) => ({
      mediaType: e.mediaType ?? types.manifest,
      digest: e.digest,
      size: e.size,
      ...(e.platform ? { platform: e.platform } : {}),
      ...(e.annotations ? { annotations: e.annotations } : {}),
    })),
  };
  const bytes = Buffer.from(JSON.stringify(obj, null, 2));
  const digest = await putManifest(reg, repo, tag, bytes, types.index);
  return { digest, bytes, mediaType: types.index };
}
