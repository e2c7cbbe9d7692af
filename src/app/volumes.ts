/**
 * Volumes: `tsrun volume create|ls|inspect|rm|prune`, and what `run`/`create`/`rm` do with a
 * container's volumes (make them, copy the image's content into empty ones, remove the
 * anonymous ones with the container when asked).
 *
 * Docker's rules (moby volume/service, daemon/mounts.go):
 * - A volume used by any container record (running or not) cannot be removed: "volume is in
 *   use - [ids]". `rm -v` and `run --rm` remove the container's anonymous volumes (unless another
 *   container uses one); named volumes stay. Nothing else deletes a volume's data: not `rm`,
 *   not `container prune`, not `system prune` (only `system reset`, which removes the store).
 * - `volume prune` removes unused anonymous volumes; with `-a`, every unused volume.
 * - The only driver is `local`; another is "plugin not found".
 *
 * Contract: creation and removal are serialised by the volumes lock (store/volumes.ts): a
 * container's volumes are made and its record written under it (shared), removal checks the
 * records and deletes under it (exclusive), so a volume is never removed under a new container.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { ANONYMOUS_LABEL, anonymousName, VolumeStore, type VolumeRecord } from '../store/volumes.js';
import { copyUp } from '../snapshot/volume-copy.js';
import type { BindMount } from '../spec/options.js';
import type { VolumeMount, VolumeRef } from '../spec/volumes.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { Env } from './containers.js';
import { monitorRuns } from './orphans.js';

export function volumeStore(env: Pick<Env, 'store'>): VolumeStore {
  return new VolumeStore(env.store.root);
}

function checkDriver(name: string, driver: string | undefined): void {
  if (driver !== undefined && driver !== '' && driver !== 'local')
    throw new TsrunError(
      'ERR_USAGE',
      `create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`,
      { hint: 'tsrun has the local driver only: drop --driver / volume-driver=' },
    );
}

function checkOptions(name: string, options: Record<string, string> | undefined): void {
  const keys = Object.keys(options ?? {});
  if (keys.length > 0)
    throw new TsrunError('ERR_USAGE', `create ${name}: invalid option: "${keys[0]}"`, {
      hint: "tsrun's local driver takes no options (no type=, device=, o=)",
    });
}

/** The container's volumes with names given to the anonymous ones; drivers and options checked. */
export function planVolumes(mounts: readonly VolumeMount[]): {
  refs: VolumeRef[];
  labels: Map<string, Record<string, string>>;
} {
  const labels = new Map<string, Record<string, string>>();
  const refs = mounts.map((m) => {
    const name = m.name ?? anonymousName();
    checkDriver(name, m.driver);
    checkOptions(name, m.options);
    if (m.labels) labels.set(name, m.labels);
    return {
      name,
      destination: m.destination,
      readonly: m.readonly,
      anonymous: m.name === undefined,
      ...(m.nocopy ? { nocopy: true } : {}),
    };
  });
  return { refs, labels };
}

/**
 * Make the volumes a new container needs (those missing), then `write` its record, holding the
 * volumes lock shared across both. Returns the anonymous volumes this call made (to remove if
 * creating the container fails later).
 */
export async function ensureVolumes(
  env: Env,
  refs: readonly VolumeRef[],
  labels: Map<string, Record<string, string>>,
  write: () => Promise<void>,
): Promise<string[]> {
  const vs = volumeStore(env);
  return vs.withLock('sh', async () => {
    const made: string[] = [];
    for (const r of refs) {
      const { created } = await vs.ensure(r.name, {
        labels: r.anonymous ? { [ANONYMOUS_LABEL]: '' } : (labels.get(r.name) ?? null),
      });
      if (created && r.anonymous) made.push(r.name);
    }
    await write();
    return made;
  });
}

/** The bind mounts that put the volumes in the container (rbind, rprivate, as Docker's). */
export function volumeBinds(env: Pick<Env, 'store'>, refs: readonly VolumeRef[]): BindMount[] {
  const vs = volumeStore(env);
  return refs.map((r) => ({ source: vs.dataPath(r.name), destination: r.destination, readonly: r.readonly }));
}

/** Copy-up: each empty volume gets what the root has at its destination (snapshot/volume-copy.ts). */
export async function populateVolumes(env: Env, rootfs: string, refs: readonly VolumeRef[]): Promise<void> {
  const vs = volumeStore(env);
  for (const r of refs) {
    if (r.nocopy || !(await vs.isEmpty(r.name))) continue;
    const res = await copyUp(rootfs, r.destination, vs.dataPath(r.name)).catch((err: Error) => {
      throw new TsrunError(
        'ERR_STORE',
        `copying the image's content at ${r.destination} into volume ${r.name}: ${err.message}`,
        { cause: err, hint: 'mount the volume with nocopy (-v NAME:/path:nocopy) to start it empty' },
      );
    });
    if (res.copied)
      env.ctx.reporter.emit({
        type: 'debug',
        scope: 'run',
        message: `volume ${r.name}: copied ${res.entries} entries (${res.bytes} bytes) from ${r.destination}`,
      });
  }
}

/**
 * The volumes a container without a record (set aside as damaged, util/corrupt.ts) still has
 * mounted: those its bundle binds, while its monitor runs. Once it is stopped (`system prune`
 * stops it) nothing refers to them, and an anonymous one is prune's to remove.
 */
async function orphanVolumes(env: Env, id: string): Promise<string[]> {
  if (!monitorRuns(env, id)) return [];
  let mounts: { source?: unknown }[];
  try {
    mounts = (JSON.parse(await fs.readFile(env.containers.paths(id).config, 'utf8')) as { mounts?: [] }).mounts ?? [];
  } catch {
    return [];
  }
  const vs = volumeStore(env);
  const out: string[] = [];
  for (const m of mounts) {
    if (typeof m.source !== 'string' || path.dirname(path.dirname(m.source)) !== vs.dir) continue;
    if (path.basename(m.source) === '_data') out.push(path.basename(path.dirname(m.source)));
  }
  return out;
}

/** Which containers use each volume, by full id (a running container without a record too). */
export async function volumesInUse(env: Env): Promise<Map<string, string[]>> {
  const m = new Map<string, string[]>();
  for (const id of await env.containers.ids()) {
    const rec = await env.containers.read(id).catch(() => undefined);
    const names = rec ? (rec.host.volumes ?? []).map((v) => v.name) : await orphanVolumes(env, id);
    for (const name of names) m.set(name, [...(m.get(name) ?? []), id]);
  }
  return m;
}

/**
 * After the container's record is gone: remove its anonymous volumes that no other container
 * uses (`rm -v`, `run --rm`). Named volumes stay. Only `names` when given (the ones a failed
 * create made).
 */
export async function removeAnonymousVolumes(env: Env, record: ContainerRecord, names?: string[]): Promise<void> {
  const mine = (record.host.volumes ?? []).filter((v) => v.anonymous && (!names || names.includes(v.name)));
  if (mine.length === 0) return;
  const vs = volumeStore(env);
  await vs.withLock('ex', async () => {
    const used = await volumesInUse(env);
    for (const v of mine) {
      const others = (used.get(v.name) ?? []).filter((id) => id !== record.id);
      if (others.length === 0) {
        await vs.remove(v.name);
        env.ctx.reporter.emit({ type: 'cleanup-step', id: record.id, step: 'volume', targets: [v.name] });
      }
    }
  });
}

// ---- tsrun volume … ----------------------------------------------------------------------------

export interface VolumeView {
  CreatedAt: string;
  Driver: 'local';
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
}

export function volumeView(vs: VolumeStore, v: VolumeRecord): VolumeView {
  return {
    CreatedAt: v.CreatedAt,
    Driver: 'local',
    Labels: v.Labels,
    Mountpoint: vs.dataPath(v.Name),
    Name: v.Name,
    Options: v.Options,
    Scope: 'local',
  };
}

export async function createVolume(
  env: Env,
  o: { name?: string; driver?: string; labels?: Record<string, string>; options?: Record<string, string> },
): Promise<VolumeView> {
  const name = o.name ?? anonymousName();
  checkDriver(name, o.driver);
  checkOptions(name, o.options);
  const vs = volumeStore(env);
  const { volume } = await vs.withLock('sh', () =>
    vs.ensure(name, {
      labels: { ...(o.name === undefined ? { [ANONYMOUS_LABEL]: '' } : {}), ...(o.labels ?? {}) },
      options: o.options ?? {},
    }),
  );
  return volumeView(vs, volume);
}

function noSuchVolume(name: string, verb = 'get'): TsrunError {
  return new TsrunError('ERR_USAGE', `${verb} ${name}: no such volume`, { hint: 'see `tsrun volume ls`' });
}

export async function inspectVolume(env: Env, name: string): Promise<VolumeView> {
  const vs = volumeStore(env);
  const v = await vs.get(name);
  if (!v) throw new TsrunError('ERR_USAGE', `No such volume: ${name}`, { hint: 'see `tsrun volume ls`' });
  return volumeView(vs, v);
}

export interface VolumeRow extends VolumeView {
  /** Containers using it. */
  links: number;
}

/** `volume ls` filters (Docker's: dangling, name (substring), label, driver). */
export async function listVolumes(env: Env, filters: readonly string[] = []): Promise<VolumeRow[]> {
  const vs = volumeStore(env);
  const used = await volumesInUse(env);
  const tests: ((r: VolumeRow) => boolean)[] = [];
  const byKey = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    const key = (i < 0 ? f : f.slice(0, i)).toLowerCase();
    const value = i < 0 ? '' : f.slice(i + 1);
    if (!['dangling', 'name', 'label', 'driver'].includes(key))
      throw new TsrunError('ERR_USAGE', `invalid filter '${key}'`, {
        hint: 'filters are dangling=true|false, name=…, label=KEY[=VALUE], driver=local',
      });
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  // Docker: values of one key are alternatives (OR), keys must all match (AND).
  for (const [key, values] of byKey) {
    if (key === 'dangling') {
      const want = values.map((v) => {
        if (/^(true|1)$/i.test(v)) return true;
        if (/^(false|0)$/i.test(v)) return false;
        throw new TsrunError('ERR_USAGE', `invalid filter 'dangling=${v}'`);
      });
      tests.push((r) => want.includes(r.links === 0));
    } else if (key === 'name') tests.push((r) => values.some((v) => r.Name.includes(v)));
    else if (key === 'driver') tests.push((r) => values.some((v) => v === r.Driver));
    else
      tests.push((r) =>
        values.some((v) => {
          const eq = v.indexOf('=');
          const k = eq < 0 ? v : v.slice(0, eq);
          const labels = r.Labels ?? {};
          return k in labels && (eq < 0 || labels[k] === v.slice(eq + 1));
        }),
      );
  }
  return (await vs.list())
    .map((v) => ({ ...volumeView(vs, v), links: used.get(v.Name)?.length ?? 0 }))
    .filter((r) => tests.every((t) => t(r)));
}

/**
 * `volume rm [-f]`: each name removed unless in use (Docker's "volume is in use - [ids]");
 * `force` only makes a missing volume not an error. Returns the errors, one per name that failed.
 */
export async function removeVolumes(
  env: Env,
  names: readonly string[],
  force = false,
): Promise<{ removed: string[]; errors: TsrunError[] }> {
  const vs = volumeStore(env);
  const removed: string[] = [];
  const errors: TsrunError[] = [];
  await vs.withLock('ex', async () => {
    const used = await volumesInUse(env);
    for (const name of names) {
      const ids = used.get(name) ?? [];
      if (ids.length > 0) {
        errors.push(
          new TsrunError('ERR_USAGE', `remove ${name}: volume is in use - [${ids.join(', ')}]`, {
            hint: 'remove the containers that use it first (`tsrun rm`)',
          }),
        );
        continue;
      }
      if (await vs.remove(name)) removed.push(name);
      else if (force) removed.push(name);
      else errors.push(noSuchVolume(name));
    }
  });
  return { removed, errors };
}

/** `volume prune [-a]`: unused anonymous volumes (every unused volume with `all`). */
export async function pruneVolumes(
  env: Env,
  o: { all?: boolean } = {},
): Promise<{ removed: string[]; reclaimed: number }> {
  const vs = volumeStore(env);
  const removed: string[] = [];
  let reclaimed = 0;
  await vs.withLock('ex', async () => {
    const used = await volumesInUse(env);
    for (const v of await vs.list()) {
      if (used.has(v.Name)) continue;
      if (!o.all && !(v.Labels && ANONYMOUS_LABEL in v.Labels)) continue;
      const size = await vs.size(v.Name);
      if (await vs.remove(v.Name)) {
        removed.push(v.Name);
        reclaimed += size;
      }
    }
  });
  return { removed, reclaimed };
}
