/**
 * `tsrun save`: images → one tar stream that both `docker load` / `podman load` (its
 * `manifest.json` and `repositories`, the docker-archive format of moby's image/tarexport) and
 * OCI tools (`index.json`, `oci-layout`, `blobs/`: image-spec image-layout.md) read. This is
 * the layout `docker save` writes since Docker 25.
 *
 *   blobs/sha256/<hex>   each image's config, an OCI manifest, and every layer as an
 *                        UNCOMPRESSED tar named by its diff id (as docker-archive wants it)
 *   index.json           one manifest descriptor per tag (io.containerd.image.name,
 *                        org.opencontainers.image.ref.name), or one untagged per image
 *   manifest.json        [{Config, RepoTags, Layers}] with paths into blobs/
 *   repositories         {"busybox": {"latest": "<top layer's diff id hex>"}} (legacy)
 *   oci-layout           {"imageLayoutVersion": "1.0.0"}
 *
 * The store keeps layers as the registry (or build) compressed them; here each is decompressed
 * on the fly. Its tar header needs the size first: the store recorded the uncompressed size
 * when it unpacked the layer (layer.json's tarSize), and the stream is checked against that size
 * and the diff id as it goes out, so a damaged blob fails the save instead of writing a layer
 * whose digest lies. Layers shared by several images are written once.
 * Contract: the stream is written in order with back-pressure; on failure it stops mid-way
 * (the caller removes a partial -o file). The store is held shared: rmi cannot race it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { digestHex, sha256Digest } from '../oci/digest.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import type { ImageConfig } from '../oci/schemas.js';
import {
  familiarName,
  familiarRepository,
  formatReference,
  parseNormalizedNamed,
  parseReference,
  repositoryName,
} from '../reference/reference.js';
import { decompress } from '../layers/compression.js';
import { blockPadding, encodeHeader, TAR_TRAILER } from '../layers/tar-writer.js';
import { findImage } from '../store/lookup.js';
import type { ImageRecord } from '../store/images.js';
import { Store } from '../store/store.js';
import { StreamOut, toFile } from '../util/stream-out.js';
import type { AppContext } from './context.js';

interface Chosen {
  record: ImageRecord;
  /** Full references to save the image under (those named, or all its tags when named by id). */
  tags: string[];
}

/** `busybox` → docker.io/library/busybox; undefined for a tag, a digest, an id or garbage. */
function untaggedRepository(q: string): string | undefined {
  try {
    const ref = parseNormalizedNamed(q);
    return ref.tag === undefined && ref.digest === undefined ? repositoryName(ref) : undefined;
  } catch {
    return undefined;
  }
}

/** Write what `docker save` does; `out` is stdout or a file. */
export async function saveImages(ctx: AppContext, queries: string[], out: Writable): Promise<void> {
  if (queries.length === 0)
    throw new TsrunError('ERR_USAGE', 'saving: "save" requires at least 1 argument', {
      hint: 'tsrun save [-o FILE] IMAGE...',
    });
  const store = await Store.open(ctx.root);
  await store.withSharedLock(async () => {
    const file = await store.readImages();
    const chosen = new Map<string, Chosen>();
    const add = (record: ImageRecord, tag?: string) => {
      const entry = chosen.get(record.id) ?? { record, tags: [] };
      chosen.set(record.id, entry);
      // Named by tag: that tag. Named by id or digest: Docker writes no tag for it.
      if (tag && !entry.tags.includes(tag)) entry.tags.push(tag);
    };
    for (const q of queries) {
      // A repository without a tag means every tag of it, as in `docker save busybox`.
      const repo = untaggedRepository(q);
      const tags = repo
        ? Object.keys(file.tags)
            .filter((t) => repositoryName(parseReference(t)) === repo)
            .sort()
        : [];
      if (tags.length > 0) {
        for (const t of tags) add(file.images[file.tags[t] as string] as ImageRecord, t);
        continue;
      }
      const found = findImage(file, q);
      add(found.record, found.tag);
    }
    const w = new TarOut(out);
    await w.dir('blobs/');
    await w.dir('blobs/sha256/');
    const written = new Set<string>();
    const manifestJson: unknown[] = [];
    const index: unknown[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    for (const { record, tags } of chosen.values()) {
      const configBytes = await store.readBlob(record.id);
      const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
      if (config.rootfs.diff_ids.length !== record.layers.length) {
        throw new TsrunError(
          'ERR_STORE',
          `saving ${record.id}: its config names ${config.rootfs.diff_ids.length} layers, the record ${record.layers.length}`,
        );
      }
      const layers: { digest: string; size: number }[] = [];
      for (const l of record.layers) {
        const meta = await store.readLayerMeta(l.chainId);
        if (!written.has(l.diffId)) {
          await w.layer(store, l, meta.tarSize);
          written.add(l.diffId);
        }
        layers.push({ digest: l.diffId, size: meta.tarSize });
      }
      if (!written.has(record.id)) await w.file(`blobs/sha256/${digestHex(record.id)}`, configBytes);
      written.add(record.id);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OCIManifest,
          config: { mediaType: MediaType.OCIConfig, digest: record.id, size: configBytes.length },
          layers: layers.map((l) => ({ mediaType: MediaType.OCILayer, digest: l.digest, size: l.size })),
        }),
      );
      const manifestDigest = sha256Digest(manifest);
      if (!written.has(manifestDigest)) await w.file(`blobs/sha256/${digestHex(manifestDigest)}`, manifest);
      written.add(manifestDigest);
      const descriptor = { mediaType: MediaType.OCIManifest, digest: manifestDigest, size: manifest.length };
      const familiar = tags.map((t) => familiarName(parseReference(t)));
      if (tags.length === 0) index.push(descriptor);
      for (const t of tags) {
        const ref = parseReference(t);
        index.push({
          ...descriptor,
          annotations: {
            'io.containerd.image.name': formatReference(ref),
            'org.opencontainers.image.ref.name': ref.tag ?? 'latest',
          },
        });
        const top = record.layers[record.layers.length - 1];
        if (top) (repositories[familiarRepository(ref)] ??= {})[ref.tag ?? 'latest'] = digestHex(top.diffId);
      }
      manifestJson.push({
        Config: `blobs/sha256/${digestHex(record.id)}`,
        RepoTags: familiar.length > 0 ? familiar : null,
        Layers: layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
      });
    }
    await w.file(
      'index.json',
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: index })),
    );
    await w.file('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    await w.file('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    if (Object.keys(repositories).length > 0) await w.file('repositories', Buffer.from(JSON.stringify(repositories)));
    await w.end();
  });
}

/** A tar written to a stream with back-pressure; every entry is a plain file or directory. */
class TarOut {
  private readonly s: StreamOut;
  constructor(out: Writable) {
    this.s = new StreamOut(out, 'saving');
  }

  write(chunk: Buffer): Promise<void> {
    return this.s.write(chunk);
  }

  dir(name: string): Promise<void> {
    return this.write(encodeHeader({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 }));
  }

  async file(name: string, body: Buffer): Promise<void> {
    await this.write(encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }));
    await this.write(body);
    await this.write(blockPadding(body.length));
  }

  /** One layer, decompressed from its blob and checked against its size and diff id. */
  async layer(store: Store, l: ImageRecord['layers'][number], size: number): Promise<void> {
    const compression = layerCompression(l.mediaType) ?? 'none';
    const tar = decompress(createReadStream(store.blobPath(l.digest)), compression);
    const hash = createHash('sha256');
    let got = 0;
    await this.write(
      encodeHeader({
        name: `blobs/sha256/${digestHex(l.diffId)}`,
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        mtime: 0,
      }),
    );
    try {
      for await (const chunk of tar as AsyncIterable<Buffer>) {
        got += chunk.length;
        if (got > size) break;
        hash.update(chunk);
        await this.write(chunk);
      }
    } finally {
      tar.destroy();
    }
    const diffId = `sha256:${hash.digest('hex')}`;
    if (got !== size || diffId !== l.diffId) {
      throw new TsrunError(
        'ERR_DIGEST_MISMATCH',
        `saving layer ${l.digest}: it decompresses to ${got > size ? 'more than' : got} bytes with diff id ${got > size ? '?' : diffId}, but the store recorded ${size} bytes and ${l.diffId}`,
        {
          hint: 'the store is damaged: remove the image (tsrun rmi) and pull it again',
        },
      );
    }
    await this.write(blockPadding(size));
  }

  async end(): Promise<void> {
    await this.write(TAR_TRAILER);
  }
}

/** `-o FILE`: written under a temporary name beside it and renamed, so a failure leaves no half archive. */
export function saveToFile(ctx: AppContext, queries: string[], file: string): Promise<void> {
  return toFile(file, 'saving', (out) => saveImages(ctx, queries, out));
}
