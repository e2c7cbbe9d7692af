/**
 * `tsrun pull`: reference → registry → store → layers.
 *
 * Flow: parse the reference; ask registries.conf where it may come from (mirrors first); fetch
 * the manifest (choosing the platform from an index); fetch and validate the config; then, for
 * every layer in parallel, stream the blob once into both the store's ingest file and the
 * unpacker (decompress → tar → overlayfs-form directory), verifying the blob digest, its size and
 * the layer's diff id on the way. Only when all of that succeeded is anything renamed into place,
 * and only after every layer is in place is the image recorded and tagged.
 *
 * Contract: idempotent (a second pull of the same image downloads nothing); concurrent pulls of
 * the same layers do the work once (layer locks); a failed or killed pull leaves no image record,
 * no blob and no layer that was not complete and verified.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { TsrunError, isTsrunError, wrapError } from '../errors.js';
import { chainIds, sha256Digest } from '../oci/digest.js';
import { layerCompression } from '../oci/media-types.js';
import { imageConfigSchema, type Descriptor, type ImageConfig, type Platform } from '../oci/schemas.js';
import {
  familiarName,
  formatReference,
  parseReference,
  repositoryName,
  type Reference,
} from '../reference/reference.js';
import { resumeSettings } from '../registry/blob-stream.js';
import { listTags } from '../registry/tags.js';
import { RegistryClient } from '../registry/client.js';
import { parseManifestOrIndex } from '../registry/manifest.js';
import { lookupCredentials } from '../registry/credentials.js';
import { endpointsFor, loadRegistriesConf } from '../registry/registries-conf.js';
import {
  configPlatform,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformMatches,
  platformWarning,
  selectManifest,
} from '../registry/resolve.js';
import { decompress } from '../layers/compression.js';
import { unpackTar, type UnpackResult } from '../layers/unpack.js';
import { unpackInWorker } from './layer-thread.js';
import { Store } from '../store/store.js';
import type { LayerRecord } from '../store/images.js';
import { recordImage } from '../store/record.js';
import { mapLimit, sleep } from '../util/concurrency.js';
import type { AppContext } from './context.js';

export interface PullOptions {
  reference: string;
  /** os/arch[/variant]; default: the host's. */
  platform?: string;
  /** Layers fetched at once (Docker's default is 3). */
  concurrency?: number;
}

export interface PullResult {
  id: string;
  /** Full reference that now names the image (absent when pulled by digest only). */
  name?: string;
  /** The digest a user pulls by: the index's when there was one, else the manifest's. */
  digest: string;
  /** False when everything was already in the store. */
  fresh: boolean;
  reference: Reference;
}

const CONFIG_MAX = 8 * 1024 * 1024;
const LAYER_ATTEMPTS = 3;
/** Compressed layers from this size on are unpacked in a worker thread (a thread start is ~20 ms). */
const THREAD_MIN = 4 << 20;

export async function pull(ctx: AppContext, opts: PullOptions): Promise<PullResult> {
  const ref = parseReference(opts.reference);
  try {
    const store = await Store.open(ctx.root);
    await store.cleanTemp();
    return await store.withSharedLock(() => pullInto(ctx, store, ref, opts));
  } catch (err) {
    throw wrapError(`pulling ${formatReference(ref)}`, err);
  }
}

async function pullInto(ctx: AppContext, store: Store, ref: Reference, opts: PullOptions): Promise<PullResult> {
  const { reporter } = ctx;
  const regCtx = { env: ctx.env, home: ctx.home, uid: ctx.uid };
  const conf = loadRegistriesConf(regCtx);
  const endpoints = endpointsFor(conf, ref.registry, ref.repository, { byDigest: ref.digest !== undefined });
  const want: Platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  const credentials = () => lookupCredentials(regCtx, ref.registry);

  // Resolve the reference against each endpoint in turn: mirrors first, the registry last.
  const target = ref.digest ?? ref.tag ?? 'latest';
  let client: RegistryClient | undefined;
  let top: { bytes: Buffer; mediaType: string; digest: string } | undefined;
  let lastError: unknown;
  for (const endpoint of endpoints) {
    const candidate = new RegistryClient({ endpoint, credentials, reporter, blob: resumeSettings(ctx.env) });
    reporter.emit({
      type: 'resolve',
      reference: formatReference(ref),
      registry: ref.registry,
      repository: endpoint.repository,
      endpoint: endpoint.host,
      mirror: endpoint.mirror,
    });
    try {
      top = await candidate.getManifest(target);
      client = candidate;
      break;
    } catch (err) {
      lastError = err;
      if (!endpoint.mirror) throw err;
      reporter.emit({
        type: 'warning',
        message: `mirror ${endpoint.host} failed for ${formatReference(ref)}: ${(err as Error).message}; trying the next location`,
      });
    }
  }
  if (!client || !top) throw lastError ?? new TsrunError('ERR_REGISTRY', 'no registry location to pull from');

  // An index leads to the manifest for our platform.
  let manifestBytes = top.bytes;
  let manifestDigest = top.digest;
  let manifestMediaType = top.mediaType;
  let indexDigest: string | undefined;
  let parsed = parseManifestOrIndex(top.bytes, top.mediaType);
  if (parsed.kind === 'index') {
    indexDigest = top.digest;
    const chosen = selectManifest(parsed.index, want);
    const m = await client.getManifest(chosen.digest);
    manifestBytes = m.bytes;
    manifestDigest = m.digest;
    manifestMediaType = m.mediaType;
    parsed = parseManifestOrIndex(m.bytes, m.mediaType);
    if (parsed.kind !== 'manifest') {
      throw new TsrunError(
        'ERR_MANIFEST',
        `index ${indexDigest} points at another index (${chosen.digest}); nested indexes are not supported`,
      );
    }
    reporter.emit({
      type: 'manifest',
      digest: m.digest,
      mediaType: m.mediaType,
      platform: formatPlatform(want),
      fromIndex: indexDigest,
    });
  } else {
    reporter.emit({ type: 'manifest', digest: top.digest, mediaType: top.mediaType });
  }
  const manifest = parsed.manifest;

  // The config: small, verified, validated.
  if (manifest.config.size > CONFIG_MAX) {
    throw new TsrunError(
      'ERR_SIZE',
      `image config ${manifest.config.digest} is ${manifest.config.size} bytes, more than the ${CONFIG_MAX} allowed`,
    );
  }
  const configBytes = await configOf(store, client, manifest.config);
  const config = parseConfig(configBytes, manifest.config.digest);
  reporter.emit({ type: 'config', digest: manifest.config.digest });
  const id = manifest.config.digest;

  // A single-platform image of another platform is pulled with a warning, as Docker does (an
  // index without the platform fails in selectManifest).
  if (!platformMatches(config, want)) {
    reporter.emit({
      type: 'warning',
      message: opts.platform
        ? `image with reference ${familiarName(ref)} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${configPlatform(config)}`
        : platformWarning(config),
    });
  }

  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new TsrunError(
      'ERR_MANIFEST',
      `manifest ${manifestDigest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff ids`,
    );
  }
  const chains = chainIds(diffIds);
  const layers: LayerRecord[] = manifest.layers.map((desc, i) => ({
    digest: desc.digest,
    mediaType: desc.mediaType,
    size: desc.size,
    diffId: diffIds[i] as string,
    chainId: chains[i] as string,
  }));
  for (const l of layers) {
    if (layerCompression(l.mediaType) === undefined) {
      throw new TsrunError(
        'ERR_LAYER',
        `layer ${l.digest} has media type ${l.mediaType}, which is not an image layer tsrun can unpack`,
      );
    }
  }

  // Layers, in parallel; each one done at most once across processes.
  // Threads only pay when two or more large layers unpack side by side (one layer alone already
  // has the thread pool's inflate beside the main thread's files); each costs ~40 MB of RSS.
  const threaded = layers.filter((l) => l.size >= THREAD_MIN).length >= 2;
  // Largest first: with only `concurrency` layers at once, a large layer that starts last is the
  // whole pull's tail (the bench image's largest layer was its last: docs/benchmarks.md).
  const order = layers
    .map((_, i) => i)
    .sort((a, b) => (layers[b] as LayerRecord).size - (layers[a] as LayerRecord).size || a - b);
  const outcomes = await mapLimit(order, opts.concurrency ?? 3, (i) =>
    ensureLayer(
      ctx,
      store,
      client as RegistryClient,
      manifest.layers[i] as Descriptor,
      layers[i] as LayerRecord,
      threaded,
    ),
  );
  const fresh = outcomes.some((o) => o === 'fetched');

  // The record last (store/record.ts): the image exists only once everything it needs does.
  const pulledDigest = indexDigest ?? manifestDigest;
  const name = ref.tag !== undefined ? formatReference({ ...ref, digest: undefined }) : undefined;
  // Docker's "Downloaded newer image" means layers came, or the tag now names another image
  // (a new tag, a moved one, or one re-created after rmi), not only new bytes.
  const { changed } = await recordImage(store, configBytes, layers, name ? [name] : [], config.created, {
    manifest: { bytes: manifestBytes, mediaType: manifestMediaType },
    ...(indexDigest ? { index: { digest: indexDigest, bytes: top.bytes } } : {}),
    repoDigest: `${repositoryName(ref)}@${pulledDigest}`,
  });
  reporter.emit({ type: 'image-stored', id, name, digest: pulledDigest, fresh: fresh || changed });
  return { id, name, digest: pulledDigest, fresh: fresh || changed, reference: ref };
}

function parseConfig(bytes: Buffer, digest: string): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new TsrunError('ERR_MANIFEST', `reading image config ${digest}: not JSON (${(err as Error).message})`);
  }
  const r = imageConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new TsrunError(
      'ERR_MANIFEST',
      `reading image config ${digest}: ${issue?.path.join('.') || 'value'}: ${issue?.message}`,
    );
  }
  return r.data;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type LayerOutcome = 'present' | 'fetched';

/** Make sure the layer is committed in the store: already there, done by another process, or fetched now. */
async function ensureLayer(
  ctx: AppContext,
  store: Store,
  client: RegistryClient,
  desc: Descriptor,
  layer: LayerRecord,
  threaded: boolean,
): Promise<LayerOutcome> {
  const { reporter } = ctx;
  // Present means committed, with its blob, and intact (a copied store may have lost owners,
  // files or xattrs: store/verify.ts); a damaged layer is set aside and fetched again.
  const intact = async () =>
    (await store.hasLayer(layer.chainId)) &&
    (await store.hasBlob(layer.digest)) &&
    (await store.checkLayer(layer.chainId)).ok;
  if (await intact()) {
    reporter.emit({ type: 'layer-exists', digest: layer.digest, chainId: layer.chainId });
    return 'present';
  }
  reporter.emit({ type: 'layer-wait', digest: layer.digest, chainId: layer.chainId });
  return store.withLayerLock(layer.chainId, async () => {
    // Another process may have finished it while we waited for the lock.
    if (await intact()) {
      reporter.emit({ type: 'layer-exists', digest: layer.digest, chainId: layer.chainId });
      return 'present';
    }
    if (await store.hasLayer(layer.chainId)) {
      const v = await store.checkLayer(layer.chainId);
      if (!v.ok) {
        reporter.emit({
          type: 'warning',
          message: `layer ${layer.chainId.slice(7, 19)} in the store is damaged (${v.reason}; a store copied without its owners and xattrs?): fetching it again`,
        });
        await store.setAsideLayer(layer.chainId);
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await fetchLayer(ctx, store, client, desc, layer, threaded);
        return 'fetched';
      } catch (err) {
        if (attempt >= LAYER_ATTEMPTS || !isRetryable(err)) {
          throw wrapError(`fetching layer ${layer.digest}`, err, 'ERR_LAYER');
        }
        reporter.emit({ type: 'layer-retry', digest: layer.digest, attempt, reason: (err as Error).message });
        await sleep(500 * 2 ** (attempt - 1));
      }
    }
  });
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNREFUSED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
function isRetryable(err: unknown): boolean {
  if (isTsrunError(err)) return err.retryable;
  const e = err as { code?: string; name?: string; type?: string };
  return NETWORK_CODES.has(e.code ?? '') || e.name === 'FetchError' || e.name === 'AbortError';
}

/**
 * One attempt: stream the blob into an ingest file and, at the same time, through the
 * decompressor into the unpacker. Verify, then commit both. On failure remove everything.
 */
async function fetchLayer(
  ctx: AppContext,
  store: Store,
  client: RegistryClient,
  desc: Descriptor,
  layer: LayerRecord,
  threaded: boolean,
): Promise<void> {
  const { reporter } = ctx;
  const compression = layerCompression(layer.mediaType) ?? 'none';
  const ingest = store.tempPath('blob');
  const work = await store.prepareLayer();
  // Root, or uid 0 of the rootless namespace, keeps owners (there as subordinate ids); only real
  // root has trusted.* xattrs and may make device nodes.
  const root = ctx.uid === 0;
  const owners = root || ctx.rootless;
  reporter.emit({ type: 'layer-start', digest: layer.digest, size: layer.size, chainId: layer.chainId });
  try {
    const blob = await client.fetchBlob(desc);
    let done = 0;
    let lastReport = 0;
    blob.on('data', (chunk: Buffer) => {
      done += chunk.length;
      const now = Date.now();
      if (now - lastReport > 100 || done === layer.size) {
        lastReport = now;
        reporter.emit({ type: 'layer-progress', digest: layer.digest, done, size: layer.size });
      }
    });
    const toFile = pipeline(blob, createWriteStream(ingest, { mode: 0o644 }));
    const unpackOpts = {
      preserveOwnership: owners,
      overlayXattrPrefix: root ? ('trusted.overlay.' as const) : ('user.overlay.' as const),
      canMknod: root,
      onWarning: (message: string) => reporter.emit({ type: 'warning', message: `layer ${layer.digest}: ${message}` }),
    };
    // A large layer of an image with several is unpacked in a thread of its own
    // (app/layer-thread.ts: the other core); a small one here, where it costs no thread start.
    let stop: (err: Error) => void;
    let unpacked: Promise<UnpackResult & { fingerprint?: { fingerprint: string; entries: number } }>;
    if (threaded && layer.size >= THREAD_MIN) {
      const t = unpackInWorker(blob, compression, work.diff, unpackOpts, layer.size);
      stop = t.abort;
      unpacked = t.result;
    } else {
      const tar = decompress(blob, compression);
      stop = (err) => tar.destroy(err);
      unpacked = unpackTar(tar, work.diff, unpackOpts);
    }
    // Whichever side fails first fails the layer; make sure the other side stops too.
    const [, result] = await Promise.all([
      toFile.catch(async (err: unknown) => {
        stop(err as Error);
        await unpacked.catch(() => undefined);
        throw err;
      }),
      unpacked.catch((err: unknown) => {
        blob.destroy(err as Error);
        throw err;
      }),
    ]);
    reporter.emit({ type: 'layer-verifying', digest: layer.digest });
    if (result.diffId !== layer.diffId) {
      throw new TsrunError(
        'ERR_DIGEST_MISMATCH',
        `layer ${layer.digest} unpacks to diff id ${result.diffId}, but the image config says ${layer.diffId}`,
      );
    }
    await store.commitBlobFile(ingest, layer.digest);
    await store.commitLayer(
      work.dir,
      {
        chainId: layer.chainId,
        diffId: result.diffId,
        tarSize: result.tarSize,
        unpackedSize: result.unpackedSize,
      },
      result.fingerprint,
    );
    reporter.emit({
      type: 'layer-done',
      digest: layer.digest,
      chainId: layer.chainId,
      diffId: result.diffId,
      unpackedBytes: result.unpackedSize,
    });
  } catch (err) {
    await fs.rm(ingest, { force: true });
    await fs.rm(work.dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The config's bytes: the store's copy where it has one that still hashes to the digest (a pull
 * of an image the store has then asks the registry for the manifest only, as Docker's does), else
 * the registry's.
 */
async function configOf(store: Store, client: RegistryClient, desc: Descriptor): Promise<Buffer> {
  if (desc.digest.startsWith('sha256:')) {
    const local = await store.readBlob(desc.digest).catch(() => undefined);
    if (local?.length === desc.size && sha256Digest(local) === desc.digest) return local;
  }
  return readAll(await client.fetchBlob(desc));
}

/**
 * `pull --all-tags`: the repository's tags as its first reachable location lists them
 * (registries.conf mirrors first). Pull each with `pull`.
 */
export async function remoteTags(ctx: AppContext, repository: string, pageSize?: number): Promise<string[]> {
  const ref = parseReference(repository);
  const regCtx = { env: ctx.env, home: ctx.home, uid: ctx.uid };
  const endpoints = endpointsFor(loadRegistriesConf(regCtx), ref.registry, ref.repository, { byDigest: false });
  let lastError: unknown;
  for (const endpoint of endpoints) {
    try {
      const client = new RegistryClient({
        endpoint,
        credentials: () => lookupCredentials(regCtx, ref.registry),
        reporter: ctx.reporter,
      });
      return await listTags(client, pageSize);
    } catch (err) {
      lastError = err;
      if (!endpoint.mirror) break;
    }
  }
  throw wrapError(
    `listing the tags of ${repositoryName(ref)}`,
    lastError ?? new TsrunError('ERR_REGISTRY', 'no registry location'),
  );
}
