/**
 * `tsrun image layers IMAGE [--files]` and `tsrun image which IMAGE PATH`: an image's layers as
 * the store holds them — per layer its blob digest and compressed size, the unpacked size, diff
 * id, chain id, the directory it is unpacked in, and the history entry that made it — and, with
 * `files`, what each layer adds, changes or deletes, as dive shows it.
 *
 * History is matched to layers as Docker does (moby daemon/images/image_history.go): entries
 * marked `empty_layer` made no layer; every other entry takes the next layer in order. A layer
 * left without an entry (a config whose history is short) has an empty "created by".
 *
 * Files come from each layer's own tar (the compressed blob in the store, decompressed and read
 * entry by entry; the unpacked directory cannot tell a directory the tar listed from one the
 * unpacker made as a parent). Each entry is judged against the image as the layers below it make
 * it (an in-memory tree of paths, layer by layer, as overlayfs merges them): `A` a path the lower
 * layers do not have, `C` one they have, `D` a whiteout (`.wh.NAME`) of a path they have, and
 * for an opaque directory (`.wh..wh..opq`) a `D` for each lower entry of that directory the layer
 * does not put back (the topmost such path, as for a whiteout). Whiteouts of paths no lower layer
 * has are shown as `D` too (the tar says so). Marker entries themselves are never shown.
 *
 * Contract: read-only; reads images.json without a lock (it is replaced atomically) and each blob
 * by digest. A blob missing from the store is an ERR_STORE error naming it.
 */
import { createReadStream } from 'node:fs';
import { TsrunError } from '../errors.js';
import { readTar } from '../layers/tar-reader.js';
import { decompress } from '../layers/compression.js';
import { cleanPath } from '../layers/unpack.js';
import { layerCompression } from '../oci/media-types.js';
import { findImage } from '../store/lookup.js';
import { Store } from '../store/store.js';
import { exists } from '../util/fs.js';
import type { AppContext } from './context.js';

export interface FileChange {
  kind: 'A' | 'C' | 'D';
  /** Absolute path in the container, e.g. `/etc/passwd`. */
  path: string;
}

export interface LayerView {
  /** 1 is the base layer. */
  index: number;
  digest: string;
  mediaType: string;
  /** Bytes of the blob as the registry serves it (compressed). */
  size: number;
  /** Sum of the sizes of the regular files in the layer (what `docker history` shows). */
  unpackedSize: number;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  diffId: string;
  chainId: string;
  /** The unpacked layer: one of the overlay mount's lowerdirs. */
  dir: string;
  createdBy: string;
  created?: string;
  comment?: string;
  /** With `files`: every path the layer adds, changes or deletes, in tar order per kind, sorted. */
  files?: FileChange[];
}

export interface ImageLayers {
  id: string;
  layers: LayerView[];
}

interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export async function imageLayers(ctx: AppContext, query: string, o: { files?: boolean } = {}): Promise<ImageLayers> {
  const store = await Store.open(ctx.root);
  const { record } = findImage(await store.readImages(), query);
  const config = JSON.parse((await store.readBlob(record.id)).toString('utf8')) as { history?: HistoryEntry[] };
  const made: (HistoryEntry | undefined)[] = [];
  for (const h of config.history ?? []) if (!h.empty_layer) made.push(h);
  const layers: LayerView[] = [];
  for (const [i, l] of record.layers.entries()) {
    const meta = await store.readLayerMeta(l.chainId).catch(() => undefined);
    const h = made[i];
    layers.push({
      index: i + 1,
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      unpackedSize: meta?.unpackedSize ?? 0,
      tarSize: meta?.tarSize ?? 0,
      diffId: l.diffId,
      chainId: l.chainId,
      dir: store.layerDiff(l.chainId),
      createdBy: h?.created_by ?? '',
      ...(h?.created ? { created: h.created } : {}),
      ...(h?.comment ? { comment: h.comment } : {}),
    });
  }
  if (o.files) {
    const tree = new Set<string>();
    for (const l of layers) l.files = await layerChanges(store, l, tree);
  }
  return { id: record.id, layers };
}

/** One layer's entries in tar order: the paths it writes, whiteouts and opaque directories. */
async function readLayerEntries(
  store: Store,
  l: LayerView,
): Promise<{ written: string[]; whiteouts: string[]; opaque: string[] }> {
  const file = store.blobPath(l.digest);
  if (!(await exists(file))) {
    throw new TsrunError('ERR_STORE', `reading layer ${l.digest}: its blob is not in the store`, {
      hint: 'pull the image again (tsrun rmi, then tsrun pull)',
    });
  }
  const tar = decompress(createReadStream(file), layerCompression(l.mediaType) ?? 'none');
  const written: string[] = [];
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  try {
    for await (const entry of readTar(tar)) {
      const rel = cleanPath(entry.header.path);
      const slash = rel.lastIndexOf('/');
      const dir = slash < 0 ? '' : rel.slice(0, slash);
      const base = rel.slice(slash + 1);
      if (base === '.wh..wh..opq') opaque.push(dir);
      else if (base.startsWith('.wh.')) whiteouts.push(dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`);
      else if (rel !== '') written.push(rel);
      for await (const _ of entry.body()) {
        /* skip the content */
      }
    }
  } finally {
    tar.destroy();
  }
  return { written, whiteouts, opaque };
}

const under = (p: string, dir: string) => dir === '' || p.startsWith(`${dir}/`);

/**
 * What layer `l` does to `tree` (the paths the layers below it make, relative, without a leading
 * slash), and `tree` updated to include it. Deletions apply before additions, as overlayfs sees
 * them (a layer may delete a path and write it again).
 */
async function layerChanges(store: Store, l: LayerView, tree: Set<string>): Promise<FileChange[]> {
  const { written, whiteouts, opaque } = await readLayerEntries(store, l);
  const mine = new Set(written);
  const before = new Set(tree);
  const out = new Map<string, FileChange['kind']>();
  const remove = (p: string) => {
    tree.delete(p);
    for (const t of [...tree]) if (under(t, p)) tree.delete(t);
  };
  for (const dir of opaque) {
    for (const t of [...tree]) {
      if (!under(t, dir) || t === dir) continue;
      // The topmost lower path the layer does not put back is the deletion (as with a whiteout).
      const slash = t.lastIndexOf('/');
      const parent = slash < 0 ? '' : t.slice(0, slash);
      if (!mine.has(t) && (parent === dir || mine.has(parent))) out.set(t, 'D');
      tree.delete(t);
    }
  }
  for (const w of whiteouts) {
    out.set(w, 'D');
    remove(w);
  }
  for (const p of written) {
    out.set(p, before.has(p) ? 'C' : 'A');
    // Writing a path makes its parents exist too: the unpacker creates the ones the tar does not
    // list, and they are shown as added (dive shows them in the layer's tree too).
    for (let s = p.indexOf('/'); s > 0; s = p.indexOf('/', s + 1)) {
      const parent = p.slice(0, s);
      if (!tree.has(parent) && !mine.has(parent) && !out.has(parent)) out.set(parent, 'A');
      tree.add(parent);
    }
    tree.add(p);
  }
  return [...out.entries()]
    .map(([p, kind]) => ({ kind, path: `/${p}` }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface WhichAnswer {
  path: string;
  /** `A`/`C`: the layer that last wrote the path (it is in the image); `D`: the one that deleted it. */
  kind: FileChange['kind'];
  layer: LayerView;
}

/**
 * `image which IMAGE PATH`: the newest layer that wrote PATH, or that deleted it (a whiteout of
 * it or of a directory above it, or an opaque directory above it that does not put it back).
 */
export async function whichLayer(ctx: AppContext, query: string, target: string): Promise<WhichAnswer> {
  const rel = cleanPath(target);
  const { layers } = await imageLayers(ctx, query, { files: true });
  let last: WhichAnswer | undefined;
  const present = new Set<string>();
  for (const l of layers) {
    for (const f of l.files ?? []) {
      const p = f.path.slice(1);
      if (f.kind === 'D' && (p === rel || under(rel, p)) && (present.has(rel) || p === rel)) {
        last = { path: `/${rel}`, kind: 'D', layer: l };
        present.delete(rel);
      } else if (f.kind !== 'D' && p === rel) {
        last = { path: `/${rel}`, kind: f.kind, layer: l };
        present.add(rel);
      }
    }
  }
  if (!last || rel === '') {
    throw new TsrunError('ERR_USAGE', `no layer of ${query} writes or deletes /${rel}`, {
      hint: `see what each layer holds: tsrun image layers --files ${query}`,
    });
  }
  return last;
}
