/**
 * `tsrun load`: a tar of images → the store. Reads what `docker save` (classic and Docker 25's
 * OCI-layout form), `podman save`, `skopeo copy … docker-archive:` and `tsrun save` write, and
 * plain OCI image layouts (oci-archive: `index.json`, `oci-layout`, `blobs/`): moby's
 * image/tarexport and image-spec image-layout.md. The tar may itself be gzip-, zstd-, bzip2- or
 * xz-compressed, as `docker load` accepts.
 *
 * The archive is untrusted. Its entries come in any order (manifest.json is often last), so the
 * regular files are spooled to numbered files in a private temp directory under the store's
 * tmp/ — no archive name is ever used as a path — and symlinks and hardlinks between entries
 * (which skopeo's docker-archive writer uses) are resolved by name inside the archive only.
 * JSON is shape-checked with zod; a config's digest is computed, never taken from a file name;
 * every layer must unpack to the diff id its config names.
 *
 * Layers: a docker-archive holds uncompressed (sometimes gzipped) tars, while the store keeps
 * compressed blobs that push sends as they are. Each layer is streamed once into the unpacker
 * and, at the same time, gzipped into a new blob (build/layer.ts's commitLayerStream), so the
 * loaded image has an OCI manifest over gzip blobs: it pushes like a built image, and keeps
 * Docker's image id (the config's digest) and diff ids. A layer the store already has (same
 * chain id, from a pull or an earlier load) is not unpacked again: its blob is reused.
 * Contract: like pull, the store is held shared, nothing is visible until complete, and the
 * spool is removed whatever happens. Images are recorded one by one, in the archive's order.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from '../util/zod.js';
import { TsrunError } from '../errors.js';
import { chainIds, sha256Digest } from '../oci/digest.js';
import { isIndexType, layerCompression } from '../oci/media-types.js';
import { imageConfigSchema, indexSchema, manifestSchema, type Descriptor } from '../oci/schemas.js';
import { familiarName, formatReference, parseNormalizedNamed, parseReference } from '../reference/reference.js';
import { hostPlatform, selectManifest } from '../registry/resolve.js';
import { decompress } from '../layers/compression.js';
import { decompressSniffed, sniffCompression } from '../layers/sniff.js';
import { readTar } from '../layers/tar-reader.js';
import { cleanPath } from '../layers/unpack.js';
import { commitLayerBlob, commitLayerStream } from '../build/layer.js';
import type { LayerRecord } from '../store/images.js';
import { recordImage } from '../store/record.js';
import { Store } from '../store/store.js';
import type { AppContext } from './context.js';
import { unpackAs } from './unpack-as.js';

export interface LoadedImage {
  id: string;
  /** Familiar names (busybox:latest) it was tagged with; empty when the archive named none. */
  tags: string[];
}

const MAX_JSON = 16 * 1024 * 1024;

const dockerManifestSchema = z
  .array(
    z.looseObject({
      Config: z.string().min(1),
      RepoTags: z.array(z.string()).nullish(),
      Layers: z.array(z.string().min(1)).max(1000),
    }),
  )
  .max(10000);

const bad = (msg: string, hint?: string) =>
  new TsrunError('ERR_MANIFEST', `loading images: ${msg}`, {
    hint: hint ?? 'the archive is not one `docker save` or `tsrun save` wrote',
  });

const sniff = sniffCompression;

/** The archive's files: spooled regular files by cleaned name, and links between names. */
class Spool {
  private files = new Map<string, string>();
  private links = new Map<string, string>();
  constructor(readonly dir: string) {}

  static async fill(dir: string, input: Readable): Promise<Spool> {
    const spool = new Spool(dir);
    const { stream, empty } = await decompressSniffed(input);
    if (empty) throw bad('the input is empty', 'give the archive with -i FILE, or on stdin');
    const tar = stream as AsyncIterable<Buffer>;
    const source = tar[Symbol.asyncIterator]();
    let n = 0;
    for await (const entry of readTar({ [Symbol.asyncIterator]: () => source })) {
      const name = cleanPath(entry.header.path);
      if (entry.header.type === 'file') {
        const file = path.join(dir, String(n++));
        const out = createWriteStream(file, { mode: 0o600 });
        for await (const chunk of entry.body()) if (!out.write(chunk)) await once(out, 'drain');
        out.end();
        await once(out, 'close');
        spool.files.set(name, file);
      } else if (entry.header.type === 'symlink') {
        const target = entry.header.linkpath;
        spool.links.set(name, cleanPath(target.startsWith('/') ? target : `${path.posix.dirname(name)}/${target}`));
      } else if (entry.header.type === 'hardlink') {
        const target = spool.files.get(cleanPath(entry.header.linkpath));
        if (target) spool.files.set(name, target);
      }
    }
    // Whatever follows the end-of-archive marker is not ours to read, but the decompressor must finish.
    for (let r = await source.next(); !r.done; r = await source.next()) {
      /* drain */
    }
    return spool;
  }

  /** The spooled file an archive name refers to (through its links), or undefined. */
  find(name: string): string | undefined {
    let n = cleanPath(name);
    for (let hops = 0; hops < 16; hops++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  async json(name: string): Promise<{ bytes: Buffer; value: unknown }> {
    const f = this.find(name);
    if (!f) throw bad(`"${name}" is missing from the archive`);
    const st = await fs.stat(f);
    if (st.size > MAX_JSON) throw bad(`"${name}" is larger than ${MAX_JSON} bytes`);
    const bytes = await fs.readFile(f);
    try {
      return { bytes, value: JSON.parse(bytes.toString('utf8')) };
    } catch (err) {
      throw bad(`"${name}" is not JSON (${(err as Error).message})`);
    }
  }
}

/** One image found in the archive: its config and a spooled file per layer, bottom first. */
interface Found {
  configBytes: Buffer;
  layerFiles: string[];
  /** Full references. */
  names: string[];
  /** An OCI layout's manifest and layer descriptors: kept when every blob is kept as it is. */
  manifest?: { bytes: Buffer; mediaType: string };
  layerDescs?: Descriptor[];
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success)
    throw bad(
      `${what} is malformed: ${r.error.issues[0]?.message ?? 'invalid'} at ${r.error.issues[0]?.path.join('.') ?? ''}`,
    );
  return r.data;
}

async function fromDockerArchive(spool: Spool): Promise<Found[]> {
  const entries = parseWith(dockerManifestSchema, (await spool.json('manifest.json')).value, 'manifest.json');
  const out: Found[] = [];
  for (const e of entries) {
    const { bytes } = await spool.json(e.Config);
    const layerFiles = e.Layers.map(
      (l) =>
        spool.find(l) ??
        (() => {
          throw bad(`layer "${l}" is missing from the archive`);
        })(),
    );
    const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
    out.push({ configBytes: bytes, layerFiles, names });
  }
  return out;
}

function blobName(d: Descriptor): string {
  const [alg, hex] = d.digest.split(':');
  return `blobs/${alg}/${hex}`;
}

/** A blob of the layout, checked against its descriptor's digest. */
async function layoutJson(spool: Spool, d: Descriptor): Promise<{ bytes: Buffer; value: unknown }> {
  const r = await spool.json(blobName(d));
  if (sha256Digest(r.bytes) !== d.digest) throw bad(`blob ${d.digest} does not hash to its digest`);
  return r;
}

/** A name for an index entry: containerd's full name, else a ref.name that is a whole reference. */
function layoutName(d: Descriptor, fallback?: string): string[] {
  const full = d.annotations?.['io.containerd.image.name'];
  const ref = d.annotations?.['org.opencontainers.image.ref.name'] ?? fallback;
  for (const n of [full, ref]) {
    if (n === undefined || !/[:/]/.test(n)) continue;
    try {
      return [formatReference(parseReference(n))];
    } catch {
      // not a reference (a bare tag, or garbage): the image stays untagged
    }
  }
  return [];
}

async function fromLayout(spool: Spool): Promise<Found[]> {
  const index = parseWith(indexSchema, (await spool.json('index.json')).value, 'index.json');
  const out: Found[] = [];
  const byManifest = new Map<string, Found>();
  const visit = async (d: Descriptor, name: string[], depth: number): Promise<void> => {
    if (depth > 4) throw bad('indexes nest too deeply');
    if (isIndexType(d.mediaType)) {
      const inner = parseWith(indexSchema, (await layoutJson(spool, d)).value, `index ${d.digest}`);
      const chosen =
        inner.manifests.length === 1 && !inner.manifests[0]?.platform
          ? (inner.manifests[0] as Descriptor)
          : selectManifest(inner, hostPlatform());
      await visit(chosen, name, depth + 1);
      return;
    }
    const known = byManifest.get(d.digest);
    if (known) {
      for (const n of name) if (!known.names.includes(n)) known.names.push(n);
      return;
    }
    const raw = await layoutJson(spool, d);
    const m = parseWith(manifestSchema, raw.value, `manifest ${d.digest}`);
    const { bytes } = await layoutJson(spool, m.config);
    const layerFiles = m.layers.map((l) => {
      if (layerCompression(l.mediaType) === undefined)
        throw bad(`layer ${l.digest} has media type ${l.mediaType}, which is not an image layer`);
      return (
        spool.find(blobName(l)) ??
        (() => {
          throw bad(`layer ${l.digest} is missing from the archive`);
        })()
      );
    });
    const found: Found = {
      configBytes: bytes,
      layerFiles,
      names: [...name],
      manifest: { bytes: raw.bytes, mediaType: m.mediaType ?? d.mediaType },
      layerDescs: m.layers,
    };
    byManifest.set(d.digest, found);
    out.push(found);
  };
  for (const d of index.manifests) await visit(d, layoutName(d), 0);
  return out;
}

/** What the store holds already for a chain id, if its blob is there too. */
async function knownLayer(store: Store, chainId: string): Promise<LayerRecord | undefined> {
  if (!(await store.hasLayer(chainId))) return undefined;
  const file = await store.readImages();
  for (const img of Object.values(file.images)) {
    const l = img.layers.find((x) => x.chainId === chainId);
    if (l && (await store.hasBlob(l.digest))) return l;
  }
  return undefined;
}

async function firstBytes(file: string): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const b = Buffer.alloc(6);
    const { bytesRead } = await fh.read(b, 0, 6, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Load every image of the archive on `input`. `onLoaded` is called as each is recorded (the CLI
 * prints Docker's "Loaded image: NAME" lines then).
 */
export async function loadImages(
  ctx: AppContext,
  input: Readable,
  onLoaded: (img: LoadedImage) => void = () => undefined,
): Promise<LoadedImage[]> {
  const store = await Store.open(ctx.root);
  const { overlayXattrPrefix, unpack } = unpackAs(ctx);
  return store.withSharedLock(async () => {
    await store.cleanTemp();
    const dir = store.tempPath('load');
    await fs.mkdir(dir, { mode: 0o700 });
    try {
      const spool = await Spool.fill(dir, input);
      let images: Found[];
      if (spool.has('manifest.json')) images = await fromDockerArchive(spool);
      else if (spool.has('index.json')) images = await fromLayout(spool);
      else throw bad('the archive has neither manifest.json (docker-archive) nor index.json (OCI layout)');
      if (images.length === 0) throw bad('the archive holds no image');
      const loaded: LoadedImage[] = [];
      for (const img of images) {
        const config = parseWith(imageConfigSchema, JSON.parse(img.configBytes.toString('utf8')), 'an image config');
        const diffIds = config.rootfs.diff_ids;
        if (diffIds.length !== img.layerFiles.length) {
          throw bad(`an image config names ${diffIds.length} layers, but the archive lists ${img.layerFiles.length}`);
        }
        const chains = chainIds(diffIds);
        const layers: LayerRecord[] = [];
        for (const [i, file] of img.layerFiles.entries()) {
          const chainId = chains[i] as string;
          const known = await knownLayer(store, chainId);
          if (known) {
            layers.push(known);
            continue;
          }
          const parent = i > 0 ? chains[i - 1] : undefined;
          const opts = {
            overlayXattrPrefix,
            unpack,
            expectDiffId: diffIds[i],
            onWarning: (message: string) =>
              ctx.reporter.emit({ type: 'warning', message: `layer ${diffIds[i]}: ${message}` }),
          };
          const desc = img.layerDescs?.[i];
          if (desc && layerCompression(desc.mediaType) !== 'none') {
            // Already compressed (an OCI layout's gzip or zstd blob): kept as it is.
            layers.push(await commitLayerBlob(store, file, desc, parent, opts));
            continue;
          }
          const tar = decompress(createReadStream(file), sniff(await firstBytes(file))) as AsyncIterable<Buffer>;
          layers.push(await commitLayerStream(store, tar, parent, opts));
        }
        // The layout's own manifest stays when every blob it names is the store's.
        const kept =
          img.manifest && img.layerDescs?.every((d, i) => layers[i]?.digest === d.digest) ? img.manifest : undefined;
        const { id } = await recordImage(
          store,
          img.configBytes,
          layers,
          img.names,
          config.created,
          kept ? { manifest: kept } : {},
        );
        const done = { id, tags: img.names.map((n) => familiarName(parseNormalizedNamed(n))) };
        loaded.push(done);
        onLoaded(done);
      }
      return loaded;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}

/** `-i FILE` (opened now, so a missing file is a clear error) or stdin. */
export async function loadInput(file: string | undefined): Promise<Readable> {
  if (file === undefined || file === '-') return process.stdin;
  const fh = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new TsrunError(
      'ERR_USAGE',
      `loading images: opening ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
    );
  });
  return fh.createReadStream();
}
