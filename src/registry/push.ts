/**
 * The distribution spec's "Push" operations on one repository, over RegistryClient's
 * authenticated `call` (so token auth, Basic, redirects and retries are the pull path's):
 *
 *   HEAD  /v2/<name>/blobs/<digest>                          does the registry have it?
 *   POST  /v2/<name>/blobs/uploads/?mount=<d>&from=<repo>    cross-repository mount (201), or
 *                                                            an upload session instead (202)
 *   POST  /v2/<name>/blobs/uploads/                          open an upload session (202 + Location)
 *   PUT   <location>?digest=<d>                              monolithic: the whole blob as the body
 *   PATCH <location> (Content-Range: a-b) …, PUT ?digest=    chunked: one chunk per PATCH, each
 *                                                            answer's Location for the next
 *   PUT   /v2/<name>/manifests/<tag>                         the manifest's exact bytes, media type kept
 *
 *   GET   <location>                                         upload status: `Range: 0-<last>`, to resume
 *
 * Contract: blobs are read from a file in pieces of at most `chunkSize` (memory stays bounded
 * for any layer size); a chunked upload whose PATCH fails is resumed from the offset the
 * registry reports for the session (up to `resumes` times); otherwise a blob upload that fails
 * retryably is started over from a new session, at most `attempts` times; the manifest's
 * digest as the registry reports it must be the one we computed.
 */
import { promises as fs } from 'node:fs';
import { TsrunError, isTsrunError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import { sleep } from '../util/concurrency.js';
import type { RegistryClient } from './client.js';

export interface BlobRef {
  digest: string;
  size: number;
  /** Where the bytes are on disk. */
  file: string;
}

export type BlobOutcome = 'exists' | 'mounted' | 'pushed';

export interface UploadOptions {
  /** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size. */
  chunkSize: number;
  /** Other repositories on this registry known to hold the blob: a mount is tried from the first. */
  mountFrom?: string[];
  attempts?: number;
  /** Chunked uploads: how many times a failed PATCH is resumed from the registry's offset (3). */
  resumes?: number;
  onProgress?: (done: number) => void;
  onResume?: (offset: number, attempt: number, reason: string) => void;
}

export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;

function location(res: { headers: { get(name: string): string | null } }, action: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new TsrunError('ERR_REGISTRY', `${action}: the registry gave no Location for the upload`);
  return loc;
}

function withDigest(loc: string, digest: string): string {
  return `${loc}${loc.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

export async function blobExists(client: RegistryClient, digest: string): Promise<boolean> {
  const res = await client.call('HEAD', `${client.repositoryUrl()}/blobs/${digest}`, {
    ok: [200, 404],
    action: `checking blob ${digest}`,
  });
  return res.status === 200;
}

/** Open an upload session, or mount the blob from `from` when the registry allows it. */
async function startUpload(
  client: RegistryClient,
  digest: string,
  from: string | undefined,
): Promise<{ mounted: true } | { mounted: false; location: string }> {
  const action = `starting the upload of ${digest}`;
  const query = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : '';
  const res = await client.call('POST', `${client.repositoryUrl()}/blobs/uploads/${query}`, { ok: [201, 202], action });
  await res.arrayBuffer().catch(() => undefined);
  if (res.status === 201 && from) return { mounted: true };
  return { mounted: false, location: location(res, action) };
}

async function readPiece(fh: fs.FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) throw new TsrunError('ERR_STORE', `reading a blob: it ended after ${offset + got} bytes`);
    got += bytesRead;
  }
  return buf;
}

/**
 * GET <location>: the distribution spec's upload status, `Range: 0-<last byte received>` (an
 * empty session answers `0-0` or no Range) and the Location to continue at.
 */
async function uploadStatus(
  client: RegistryClient,
  loc: string,
  action: string,
): Promise<{ offset: number; location: string }> {
  const res = await client.call('GET', loc, { ok: [204], action: `${action}: asking how much of it the registry has` });
  await res.arrayBuffer().catch(() => undefined);
  const range = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.get('range') ?? '');
  const last = range ? Number(range[1]) : -1;
  // "0-0" is ambiguous (nothing, or one byte); distribution sends it for an empty upload.
  return { offset: last > 0 ? last + 1 : 0, location: res.headers.get('location') ?? loc };
}

async function sendBlob(client: RegistryClient, blob: BlobRef, loc: string, o: UploadOptions): Promise<void> {
  const action = `uploading blob ${blob.digest}`;
  const fh = await fs.open(blob.file, 'r');
  try {
    if (blob.size <= o.chunkSize) {
      const body = await readPiece(fh, 0, blob.size);
      const res = await client.call('PUT', withDigest(loc, blob.digest), {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) },
        body,
        ok: [201],
        action,
        noRetry: true,
      });
      await res.arrayBuffer().catch(() => undefined);
      o.onProgress?.(blob.size);
      return;
    }
    let next = loc;
    let resumes = 0;
    for (let offset = 0; offset < blob.size;) {
      const body = await readPiece(fh, offset, Math.min(o.chunkSize, blob.size - offset));
      try {
        const res = await client.call('PATCH', next, {
          headers: {
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(body.length),
            'Content-Range': `${offset}-${offset + body.length - 1}`,
          },
          body,
          ok: [202],
          action,
          noRetry: true,
        });
        await res.arrayBuffer().catch(() => undefined);
        next = location(res, action);
        offset += body.length;
      } catch (err) {
        if (!isTsrunError(err) || !(err.retryable || err.code === 'ERR_NETWORK') || resumes >= (o.resumes ?? 3))
          throw err;
        // The session may have kept part of the chunk: ask where it stands and go on from there.
        // A registry that cannot say (distribution refuses a session that kept half a chunk)
        // gets the blob again in a new session: the caller's retry.
        resumes++;
        const status = await uploadStatus(client, next, action).catch(() => undefined);
        if (!status || status.offset > offset + body.length || status.offset < 0) throw err;
        next = status.location;
        offset = status.offset;
        o.onResume?.(offset, resumes, err.message);
      }
      o.onProgress?.(offset);
    }
    const res = await client.call('PUT', withDigest(next, blob.digest), {
      headers: { 'Content-Length': '0' },
      ok: [201],
      action,
      noRetry: true,
    });
    await res.arrayBuffer().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

/** Make sure the registry has `blob`: skip it, mount it, or upload it. */
export async function pushBlob(client: RegistryClient, blob: BlobRef, o: UploadOptions): Promise<BlobOutcome> {
  if (await blobExists(client, blob.digest)) return 'exists';
  const attempts = o.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      const started = await startUpload(client, blob.digest, o.mountFrom?.[0]);
      if (started.mounted) return 'mounted';
      await sendBlob(client, blob, started.location, o);
      return 'pushed';
    } catch (err) {
      const retryable = isTsrunError(err) && (err.retryable || err.code === 'ERR_NETWORK');
      if (!retryable || attempt >= attempts) throw err;
      await sleep(250 * 2 ** (attempt - 1));
    }
  }
}

/** PUT the manifest under `tag`; returns its digest (checked against the registry's). */
export async function putManifest(
  client: RegistryClient,
  tag: string,
  bytes: Buffer,
  mediaType: string,
): Promise<string> {
  const digest = sha256Digest(bytes);
  const res = await client.call('PUT', `${client.repositoryUrl()}/manifests/${tag}`, {
    headers: { 'Content-Type': mediaType },
    body: bytes,
    ok: [201],
    action: `pushing manifest ${tag}`,
  });
  await res.arrayBuffer().catch(() => undefined);
  const said = res.headers.get('docker-content-digest');
  if (said && said !== digest) {
    throw new TsrunError(
      'ERR_DIGEST_MISMATCH',
      `pushing manifest ${tag}: the registry stored it as ${said}, we sent ${digest}`,
    );
  }
  return digest;
}
