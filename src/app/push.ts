/**
 * `tsrun push NAME[:TAG]` (and `-a` for every tag of the repository): store → registry.
 *
 * Flow: find the local image by its tag; the registry is the reference's own location from
 * registries.conf (never a mirror); for each layer (three at once), then the config, ask the
 * registry whether it has the blob, else mount it from another repository of the same registry
 * this image came from, else upload it (push.ts: monolithic, or chunked when large); then PUT the
 * manifest's exact bytes with its media type, so the digest is the one the image was pulled by.
 * The image record learns the new `repository@digest`.
 *
 * Contract: nothing is written to the registry's tag until every blob it names is there (the
 * manifest goes last); the store's shared lock is held so GC cannot drop a blob mid-push.
 */
import { promises as fs } from 'node:fs';
import { TsrunError, wrapError } from '../errors.js';
import {
  familiarName,
  formatReference,
  parseNormalizedNamed,
  repositoryName,
  type Reference,
} from '../reference/reference.js';
import { repositoryScope } from '../registry/auth.js';
import { RegistryClient } from '../registry/client.js';
import { lookupCredentials } from '../registry/credentials.js';
import { DEFAULT_CHUNK_SIZE, pushBlob, putManifest, type BlobRef } from '../registry/push.js';
import { endpointsFor, loadRegistriesConf } from '../registry/registries-conf.js';
import type { ImageRecord } from '../store/images.js';
import { Store } from '../store/store.js';
import { mapLimit } from '../util/concurrency.js';
import type { AppContext } from './context.js';

export interface PushOptions {
  reference: string;
  /** `-a`: every local tag of the repository. */
  allTags?: boolean;
  /** Blobs larger than this go up in chunks of this size (default 32 MiB; TSRUN_PUSH_CHUNK_SIZE). */
  chunkSize?: number;
}

export interface Pushed {
  tag: string;
  digest: string;
  size: number;
}

export async function push(ctx: AppContext, o: PushOptions): Promise<Pushed[]> {
  const named = parseNormalizedNamed(o.reference);
  try {
    if (named.digest) {
      throw new TsrunError('ERR_USAGE', `cannot push a digest reference: ${o.reference}`, {
        hint: 'tag the image first (tsrun tag IMAGE NAME:TAG), then push the tag',
      });
    }
    if (o.allTags && named.tag)
      throw new TsrunError('ERR_USAGE', "tag can't be used with --all-tags/-a", {
        hint: `push ${familiarName({ ...named, tag: undefined })} -a`,
      });
    const store = await Store.open(ctx.root);
    return await store.withSharedLock(() => pushFrom(ctx, store, named, o));
  } catch (err) {
    throw wrapError(`pushing ${familiarName(named)}`, err);
  }
}

async function pushFrom(ctx: AppContext, store: Store, named: Reference, o: PushOptions): Promise<Pushed[]> {
  const file = await store.readImages();
  const repo = repositoryName(named);
  const tags = o.allTags
    ? Object.keys(file.tags)
        .filter((t) => t.startsWith(`${repo}:`))
        .map((t) => t.slice(repo.length + 1))
        .sort()
    : [named.tag ?? 'latest'];
  if (tags.length === 0)
    throw new TsrunError('ERR_IMAGE_NOT_FOUND', `no local tags of ${familiarName(named)}`, {
      hint: `tag an image first: tsrun tag IMAGE ${familiarName(named)}:TAG`,
    });
  const regCtx = { env: ctx.env, home: ctx.home, uid: ctx.uid };
  const endpoints = endpointsFor(loadRegistriesConf(regCtx), named.registry, named.repository, { byDigest: false });
  const endpoint = endpoints[endpoints.length - 1];
  if (!endpoint) throw new TsrunError('ERR_REGISTRY', `no registry location for ${repo}`);
  const chunkSize = o.chunkSize ?? (Number(ctx.env.TSRUN_PUSH_CHUNK_SIZE) || DEFAULT_CHUNK_SIZE);
  const out: Pushed[] = [];
  for (const tag of tags) {
    const ref: Reference = { ...named, tag };
    const id = file.tags[formatReference(ref)];
    const record = id ? file.images[id] : undefined;
    if (!record) {
      throw new TsrunError(
        'ERR_IMAGE_NOT_FOUND',
        `An image does not exist locally with the tag: ${familiarName(ref)}`,
        {
          hint: `tag an image first: tsrun tag IMAGE ${familiarName(ref)}`,
        },
      );
    }
    ctx.reporter.emit({ type: 'push-start', repository: familiarName({ ...ref, tag: undefined }), tag });
    // Repositories of this registry that the image came from: a blob can be mounted from them.
    const mountFrom = record.repoDigests
      .map((d) => d.split('@')[0] as string)
      .filter((r) => r.startsWith(`${named.registry}/`) && r !== repo)
      .map((r) => r.slice(named.registry.length + 1));
    const client = new RegistryClient({
      endpoint,
      reporter: ctx.reporter,
      credentials: () => lookupCredentials(regCtx, named.registry),
      actions: ['pull', 'push'],
      extraScopes: mountFrom[0] ? [repositoryScope(mountFrom[0], ['pull'])] : [],
    });
    const blobs = await blobsOf(store, record);
    const send = async (b: BlobRef, config = false): Promise<void> => {
      const outcome = await pushBlob(client, b, {
        chunkSize,
        mountFrom,
        onResume: (offset, attempt, reason) =>
          ctx.reporter.emit({
            type: 'debug',
            scope: 'push',
            message: `resuming the upload of ${b.digest} at byte ${offset} (attempt ${attempt}): ${reason}`,
          }),
      });
      ctx.reporter.emit({
        type: 'push-blob',
        digest: b.digest,
        outcome,
        ...(outcome === 'mounted' ? { from: mountFrom[0] } : {}),
        ...(config ? { config } : {}),
      });
    };
    await mapLimit(blobs.layers, 3, (b) => send(b));
    await send(blobs.config, true);
    const manifest = await store.readBlob(record.manifestDigest);
    const digest = await putManifest(client, tag, manifest, record.manifestMediaType);
    ctx.reporter.emit({ type: 'push-manifest', tag, digest, size: manifest.length });
    await store.updateImages((f) => {
      const r = f.images[record.id];
      const repoDigest = `${repo}@${digest}`;
      if (r && !r.repoDigests.includes(repoDigest)) r.repoDigests.push(repoDigest);
    });
    out.push({ tag, digest, size: manifest.length });
  }
  return out;
}

async function blobsOf(store: Store, record: ImageRecord): Promise<{ layers: BlobRef[]; config: BlobRef }> {
  const ref = async (digest: string): Promise<BlobRef> => {
    const file = store.blobPath(digest);
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) {
      throw new TsrunError('ERR_STORE', `blob ${digest} of image ${record.id.slice(7, 19)} is not in the store`, {
        hint: 'pull the image again to fetch it',
      });
    }
    return { digest, size: st.size, file };
  };
  return { layers: await Promise.all(record.layers.map((l) => ref(l.digest))), config: await ref(record.id) };
}
