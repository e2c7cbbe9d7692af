/**
 * Image use cases that only read or rearrange the store: images, image inspect, tag, rmi.
 * Views here are Docker-shaped data; the CLI only prints them.
 */
import { TsrunError } from '../errors.js';
import { formatReference, familiarName, familiarRepository, parseReference } from '../reference/reference.js';
import { findImage } from '../store/lookup.js';
import { tagsOf, type ImageRecord } from '../store/images.js';
import { Store } from '../store/store.js';
import type { ImageConfig } from '../oci/schemas.js';
import type { AppContext } from './context.js';

export interface ImageRow {
  repository: string;
  tag: string;
  digest: string;
  id: string;
  created?: string;
  size: number;
}

/** 'docker.io/library/node:1' or 'docker.io/library/node' → 'node' */
const repoOf = (full: string): string => familiarRepository(parseReference(full));

export interface ListOptions {
  /** `-f/--filter KEY=VALUE` (image-filters.ts). */
  filters?: string[];
  /** `images REPOSITORY[:TAG]`: as a reference filter. */
  reference?: string;
}

/**
 * One row per tag, plus one `<none>` row per untagged image; newest first (as `docker images`),
 * after the filters. (`-a` changes nothing: tsrun keeps no intermediate images.)
 */
export async function listImages(ctx: AppContext, o: ListOptions = {}): Promise<ImageRow[]> {
  const { parseImageFilters, referenceMatches, labelsMatch } = await import('./image-filters.js');
  const f = parseImageFilters(o.filters ?? []);
  if (o.reference) f.reference.push(o.reference);
  const store = await Store.open(ctx.root);
  const file = await store.readImages();
  const createdOf = (q: string): string => findImage(file, q).record.created ?? '';
  const before = f.before !== undefined ? createdOf(f.before) : undefined;
  const since = f.since !== undefined ? createdOf(f.since) : undefined;
  const rows: ImageRow[] = [];
  for (const img of Object.values(file.images)) {
    let tags = tagsOf(file, img.id);
    if (f.dangling === true && tags.length > 0) continue;
    if (f.dangling === false && tags.length === 0) continue;
    if (before !== undefined && !((img.created ?? '') < before)) continue;
    if (since !== undefined && !((img.created ?? '') > since)) continue;
    if (f.reference.length > 0) {
      tags = tags.filter((t) => f.reference.some((p) => referenceMatches(p, repoOf(t), parseReference(t).tag ?? '')));
      if (tags.length === 0) continue;
    }
    if (f.label.length > 0) {
      const config = JSON.parse((await store.readBlob(img.id)).toString('utf8')) as ImageConfig;
      if (!labelsMatch(f.label, config.config?.Labels)) continue;
    }
    const digest = img.repoDigests[0]?.split('@')[1] ?? '<none>';
    if (tags.length === 0) {
      rows.push({
        repository: img.repoDigests[0] ? repoOf(img.repoDigests[0].split('@')[0] as string) : '<none>',
        tag: '<none>',
        digest,
        id: img.id,
        created: img.created,
        size: img.size,
      });
    }
    for (const t of tags) {
      const ref = parseReference(t);
      rows.push({
        repository: repoOf(t),
        tag: ref.tag ?? '<none>',
        digest,
        id: img.id,
        created: img.created,
        size: img.size,
      });
    }
  }
  return rows.sort(
    (a, b) =>
      (b.created ?? '').localeCompare(a.created ?? '') ||
      a.repository.localeCompare(b.repository) ||
      a.tag.localeCompare(b.tag),
  );
}

/** Docker-compatible `image inspect` objects. */
export interface HistoryRow {
  /** The image id on the newest row, undefined (Docker's "<missing>") below it. */
  id?: string;
  created?: string;
  createdBy: string;
  /** Bytes of the layer this step made (0 for metadata-only steps). */
  size: number;
  comment: string;
}

/**
 * `tsrun history`: the image config's history, newest first, each step with the size of the
 * layer it made (steps marked empty_layer made none), as `docker history` shows it.
 */
export async function imageHistory(ctx: AppContext, query: string): Promise<HistoryRow[]> {
  const store = await Store.open(ctx.root);
  const { record } = findImage(await store.readImages(), query);
  const config = JSON.parse((await store.readBlob(record.id)).toString('utf8')) as {
    history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
  };
  const sizes = await Promise.all(
    record.layers.map((l) =>
      store.readLayerMeta(l.chainId).then(
        (m) => m.unpackedSize,
        () => 0,
      ),
    ),
  );
  let layer = 0;
  const rows: HistoryRow[] = (config.history ?? []).map((h) => ({
    created: h.created,
    createdBy: h.created_by ?? '',
    comment: h.comment ?? '',
    size: h.empty_layer ? 0 : (sizes[layer++] ?? 0),
  }));
  rows.reverse();
  if (rows[0]) rows[0].id = record.id;
  return rows;
}

export async function inspectImages(
  ctx: AppContext,
  queries: string[],
): Promise<{ found: unknown[]; missing: TsrunError[] }> {
  const store = await Store.open(ctx.root);
  const file = await store.readImages();
  const found: unknown[] = [];
  const missing: TsrunError[] = [];
  for (const q of queries) {
    let record: ImageRecord;
    try {
      record = findImage(file, q).record;
    } catch (err) {
      missing.push(err as TsrunError);
      continue;
    }
    // Validated against the schema when it was pulled; the store holds it under its digest.
    const config = JSON.parse((await store.readBlob(record.id)).toString('utf8')) as ImageConfig;
    const c = config.config ?? {};
    found.push({
      Id: record.id,
      RepoTags: tagsOf(file, record.id).map((t) => familiarName(parseReference(t))),
      RepoDigests: record.repoDigests.map((d) => familiarDigest(d)),
      Parent: '',
      Comment: (config as { comment?: string }).comment ?? '',
      Created: config.created ?? '0001-01-01T00:00:00Z',
      Author: config.author ?? '',
      Config: {
        Hostname: '',
        Domainname: '',
        User: c.User ?? '',
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        ExposedPorts: c.ExposedPorts ?? undefined,
        Tty: false,
        OpenStdin: false,
        StdinOnce: false,
        Env: c.Env ?? null,
        Cmd: c.Cmd ?? null,
        Image: '',
        Volumes: c.Volumes ?? null,
        WorkingDir: c.WorkingDir ?? '',
        Entrypoint: c.Entrypoint ?? null,
        OnBuild: c.OnBuild ?? null,
        Labels: c.Labels ?? null,
        ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
        ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
        ...(c.Shell ? { Shell: c.Shell } : {}),
      },
      Architecture: config.architecture,
      ...(config.variant ? { Variant: config.variant } : {}),
      Os: config.os,
      Size: record.size,
      GraphDriver: {
        Name: 'overlay',
        Data: {
          LowerDir: [...record.layers]
            .reverse()
            .map((l) => store.layerDiff(l.chainId))
            .join(':'),
        },
      },
      RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
      Metadata: { LastTagTime: record.lastTagTime ?? '0001-01-01T00:00:00Z' },
      // tsrun's own: where the manifest came from (not in Docker's output).
      Descriptor: {
        manifestDigest: record.manifestDigest,
        mediaType: record.manifestMediaType,
        indexDigest: record.indexDigest,
      },
    });
  }
  return { found, missing };
}

function familiarDigest(repoDigest: string): string {
  const [repo, digest] = repoDigest.split('@') as [string, string];
  return `${repoOf(repo)}@${digest}`;
}

/** `tsrun tag SOURCE TARGET`: TARGET (default tag latest) now names SOURCE's image. */
export async function tagImage(ctx: AppContext, source: string, target: string): Promise<void> {
  const ref = parseReference(target);
  if (ref.digest) {
    throw new TsrunError('ERR_REFERENCE', `tagging ${source} as ${target}: a tag cannot contain a digest`, {
      hint: 'give a name with a :tag',
    });
  }
  const store = await Store.open(ctx.root);
  await store.updateImages((file) => {
    const { record } = findImage(file, source);
    const name = formatReference(ref);
    if (file.tags[name] !== record.id) record.lastTagTime = new Date().toISOString();
    file.tags[name] = record.id;
  });
}
