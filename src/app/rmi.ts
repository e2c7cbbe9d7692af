/**
 * `tsrun rmi` and `tsrun image prune`: removing images the way Docker's daemon does
 * (moby daemon/images/image_delete.go, image_prune.go), then freeing what nothing uses.
 *
 * Docker's rules, which scripts depend on:
 * - By name (a tag or `repo@digest`): the reference is removed; the image goes once no reference
 *   is left. Without --force, a name that is the image's only reference may not be removed while
 *   any container (running or not) uses the image: "conflict: unable to remove repository
 *   reference …". With --force it is untagged, and the image itself stays (dangling) while a
 *   running container uses it.
 * - By id: every reference goes with it; --force is needed when it has tags in several
 *   repositories or a stopped container uses it; a running container's image is never deleted
 *   ("cannot be forced").
 * Every check is made before anything is changed: a refused removal changes nothing.
 *
 * A deleted image's layers are freed at once unless a container still needs them (`rmi -f` of a
 * stopped container's image); those go when the container is removed or at the next prune.
 * Errors carry exit code 1 (`detail.exitCode`), as Docker's CLI exits for these.
 */
import { TsrunError } from '../errors.js';
import { familiarName, familiarRepository, parseReference } from '../reference/reference.js';
import { findImage } from '../store/lookup.js';
import { tagsOf, type ImageRecord, type ImagesFile } from '../store/images.js';
import { isActive } from '../runtime/records.js';
import type { AppContext } from './context.js';
import type { Env } from './containers.js';

export type RemoveLine = { untagged: string } | { deleted: string };

interface User {
  id: string;
  running: boolean;
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
const repoOfRef = (full: string): string => full.split('@')[0]?.replace(/:[^:/]+$/, '') ?? full;

function conflict(message: string, hint?: string): TsrunError {
  return new TsrunError('ERR_IMAGE_IN_USE', `conflict: ${message}`, { hint, detail: { exitCode: 1 } });
}

/** Every reference to `id`: its tags and its `repo@digest`s (full forms). */
function refsOf(file: ImagesFile, record: ImageRecord): string[] {
  return [...tagsOf(file, record.id), ...record.repoDigests];
}

/** Docker's isSingleReference: at most one tag, and digests only of that tag's repository. */
function isSingleReference(tags: string[], digests: string[]): boolean {
  if (tags.length > 1) return false;
  const repos = new Set([...tags, ...digests].map(repoOfRef));
  return repos.size <= 1;
}

function familiarDigest(repoDigest: string): string {
  const [repo, digest] = repoDigest.split('@') as [string, string];
  return `${familiarRepository(parseReference(repo))}@${digest}`;
}

/** Which containers use which image, and whether each is running (or starting). */
export async function imageUsers(env: Env): Promise<Map<string, User[]>> {
  const m = new Map<string, User[]>();
  for (const c of await env.containers.list()) {
    const u = { id: c.record.id, running: isActive(c.observed) };
    m.set(c.record.imageId, [...(m.get(c.record.imageId) ?? []), u]);
  }
  return m;
}

/**
 * Remove one image reference or id from `file` (mutated only when nothing is refused).
 * Returns the lines to print; throws a conflict before changing anything.
 */
export function removeFromFile(
  file: ImagesFile,
  query: string,
  force: boolean,
  users: User[] | undefined,
): RemoveLine[] {
  const found = findImage(file, query);
  const record = found.record;
  const id = record.id;
  const tags = tagsOf(file, id);
  const lines: RemoveLine[] = [];
  const running = users?.find((u) => u.running);
  const stopped = users?.find((u) => !u.running);
  const byName = found.tag !== undefined || found.repoDigest !== undefined;

  if (byName) {
    if (!force && isSingleReference(tags, record.repoDigests) && users?.[0]) {
      throw conflict(
        `unable to remove repository reference "${query}" (must force) - container ${short(users[0].id)} is using its referenced image ${short(id)}`,
        `remove the container first (tsrun rm ${short(users[0].id)}), or use --force`,
      );
    }
    if (found.tag) {
      delete file.tags[found.tag];
      lines.push({ untagged: familiarName(parseReference(found.tag)) });
      // The last tag of a repository takes that repository's digests with it (as Docker).
      const repo = repoOfRef(found.tag);
      if (!tagsOf(file, id).some((t) => repoOfRef(t) === repo)) {
        for (const d of record.repoDigests.filter((x) => repoOfRef(x) === repo))
          lines.push({ untagged: familiarDigest(d) });
        record.repoDigests = record.repoDigests.filter((x) => repoOfRef(x) !== repo);
      }
    } else if (found.repoDigest) {
      // Named by the manifest's digest where the pull recorded the index's: that repository's.
      const named = found.repoDigest;
      const gone = record.repoDigests.includes(named)
        ? [named]
        : record.repoDigests.filter((d) => repoOfRef(d) === repoOfRef(named));
      record.repoDigests = record.repoDigests.filter((d) => !gone.includes(d));
      lines.push({ untagged: familiarDigest(named) });
    }
    if (refsOf(file, record).length > 0) return lines;
    // The name was the last reference: delete the image unless that is refused, quietly (the
    // untag stands) when a container uses it, as Docker's daemon does.
    if (running || (!force && stopped)) return lines;
    delete file.images[id];
    lines.push({ deleted: id });
    return lines;
  }

  if (!force && !isSingleReference(tags, record.repoDigests)) {
    throw conflict(
      `unable to delete ${short(id)} (must be forced) - image is referenced in multiple repositories`,
      'remove it by name, or use --force',
    );
  }
  if (running) {
    throw conflict(
      `unable to delete ${short(id)} (cannot be forced) - image is being used by running container ${short(running.id)}`,
      `stop and remove the container first (tsrun rm -f ${short(running.id)})`,
    );
  }
  if (!force && stopped) {
    throw conflict(
      `unable to delete ${short(id)} (must be forced) - image is being used by stopped container ${short(stopped.id)}`,
      `remove the container first (tsrun rm ${short(stopped.id)}), or use --force`,
    );
  }
  for (const t of tags) {
    delete file.tags[t];
    lines.push({ untagged: familiarName(parseReference(t)) });
  }
  for (const d of record.repoDigests) lines.push({ untagged: familiarDigest(d) });
  delete file.images[id];
  lines.push({ deleted: id });
  return lines;
}

function describe(lines: RemoveLine[]): string {
  return lines.map((l) => ('untagged' in l ? `untagged ${l.untagged}` : `deleted ${l.deleted}`)).join(', ');
}

/**
 * `tsrun rmi [-f] IMAGE...`: each query on its own; then free the layers nothing uses. With
 * --debug each stage is an event (what each query removed, the collection's start and result).
 */
export async function removeImages(
  ctx: AppContext,
  queries: string[],
  force: boolean,
): Promise<{ lines: RemoveLine[]; errors: TsrunError[] }> {
  const { openEnv, layersInUse } = await import('./containers.js');
  const env = await openEnv(ctx);
  const lines: RemoveLine[] = [];
  const errors: TsrunError[] = [];
  const users = await imageUsers(env);
  for (const q of queries) {
    try {
      const removed = await env.store.updateImages((file) => {
        const id = findImage(file, q).record.id;
        return removeFromFile(file, q, force, users.get(id));
      });
      lines.push(...removed);
      ctx.reporter.emit({ type: 'debug', scope: 'rmi', message: `${q}: ${describe(removed)}` });
    } catch (err) {
      const e =
        err instanceof TsrunError ? err : new TsrunError('ERR_STORE', `removing ${q}: ${(err as Error).message}`);
      errors.push(
        e.detail?.exitCode !== undefined
          ? e
          : new TsrunError(e.code, e.message, { hint: e.hint, cause: e, detail: { ...e.detail, exitCode: 1 } }),
      );
    }
  }
  if (lines.some((l) => 'deleted' in l)) {
    ctx.reporter.emit({ type: 'debug', scope: 'rmi', message: 'freeing the layers and blobs nothing uses' });
    const freed = await env.store.gc(() => layersInUse(env));
    for (const l of freed.layers) lines.push({ deleted: l });
    ctx.reporter.emit({
      type: 'debug',
      scope: 'rmi',
      message: `freed ${freed.layers.length} layers and ${freed.blobs.length} blobs (${freed.bytes} bytes)`,
    });
  }
  return { lines, errors };
}

export interface PruneImagesReport {
  lines: RemoveLine[];
  /** Bytes freed: unpacked layers and blobs. */
  reclaimed: number;
  /** Layers were not freed because the store was busy (a pull or build); a later prune frees them. */
  busy: boolean;
}

/**
 * `tsrun image prune [-a]`: remove dangling images (no tag), or with `all` every image no
 * container uses, then the layers and blobs nothing needs. Never waits for, and never touches,
 * what a running pull, build or container uses: when the store is busy the images are still
 * untagged and removed, and their layers are left for the next prune.
 */
export async function pruneImages(env: Env, o: { all?: boolean } = {}): Promise<PruneImagesReport> {
  const { layersInUse } = await import('./containers.js');
  const users = await imageUsers(env);
  const lines = await env.store.updateImages((file) => {
    const out: RemoveLine[] = [];
    for (const record of Object.values(file.images)) {
      if (users.has(record.id)) continue;
      const tags = tagsOf(file, record.id);
      if (!o.all && tags.length > 0) continue;
      for (const t of tags) {
        delete file.tags[t];
        out.push({ untagged: familiarName(parseReference(t)) });
      }
      for (const d of record.repoDigests) out.push({ untagged: familiarDigest(d) });
      delete file.images[record.id];
      out.push({ deleted: record.id });
    }
    return out;
  });
  const freed = await env.store.gc(() => layersInUse(env), { wait: false });
  for (const l of freed?.layers ?? []) lines.push({ deleted: l });
  return { lines, reclaimed: freed?.bytes ?? 0, busy: freed === undefined };
}

/**
 * After containers were removed: when one of them used an image that is gone (`rmi -f` of a
 * stopped container's image), free the layers only it still held. Never waits for the store.
 */
export async function freeLayersOfDeletedImages(env: Env, imageIds: string[]): Promise<void> {
  if (imageIds.length === 0) return;
  const file = await env.store.readImages();
  if (imageIds.every((id) => file.images[id])) return;
  const { layersInUse } = await import('./containers.js');
  await env.store.gc(() => layersInUse(env), { wait: false });
}
