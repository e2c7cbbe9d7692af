/**
 * `ps`: the containers of a store as Docker's API lists them (container.Summary), filtered as
 * Docker's daemon filters them (daemon/list.go): `--filter KEY=VALUE`, the same key repeated is
 * OR, different keys AND (`label` filters all must match). Keys: status, name, id (regular
 * expressions, as Docker's), label (`k` or `k=v`), ancestor (image name or id), exited (exit
 * code), network, volume (mount source or destination), before, since, publish and expose
 * (container ports, ranges, protocols), health (starting, healthy, unhealthy, none: app/healthcheck.ts),
 * is-task (never). `status`/`exited`
 * filters list stopped containers without -a, as Docker's do.
 *
 * Sizes (`--size`, or a template reading `.Size`): SizeRw is the bytes the container wrote (its
 * upper directory, hard links counted once), SizeRootFs that plus its image.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { findImage } from '../store/lookup.js';
import type { Container } from '../runtime/records.js';
import type { Env } from './env.js';
import type { healthStatus } from './healthcheck.js';
import type { networkNames } from './networks.js';
import type { networkEndpoints } from './container-views.js';

/**
 * What a row shows of a container's networks and health. Their modules load the container use
 * cases' whole graph (network, runtime, spec; child_process, net, crypto): loaded only when
 * there is a container to show.
 */
interface Views {
  healthStatus: typeof healthStatus;
  networkNames: typeof networkNames;
  networkEndpoints: typeof networkEndpoints;
}

async function views(): Promise<Views> {
  const [h, n, c] = await Promise.all([
    import('./healthcheck.js'),
    import('./networks.js'),
    import('./container-views.js'),
  ]);
  return { healthStatus: h.healthStatus, networkNames: n.networkNames, networkEndpoints: c.networkEndpoints };
}

export interface PortSummary {
  ip?: string;
  privatePort: number;
  publicPort?: number;
  type: string;
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  imageId: string;
  command: string;
  created: string;
  state: string;
  exitCode: number;
  startedAt?: string;
  finishedAt?: string;
  ports: PortSummary[];
  labels: Record<string, string>;
  mounts: { name?: string; source: string; destination: string; driver?: string }[];
  networks: string[];
  /** Docker's NetworkSettings.Networks (the Engine API's list has them). */
  endpoints?: Record<string, unknown>;
  sizeRw?: number;
  sizeRootFs?: number;
  /** starting, healthy, unhealthy, or none (no health check). */
  health?: string;
}

export interface ListOptions {
  all?: boolean;
  /** The n last created (Docker's -n; -l is 1). */
  last?: number;
  filters?: string[];
  size?: boolean;
}

const FILTER_KEYS = new Set([
  'status',
  'name',
  'id',
  'label',
  'ancestor',
  'exited',
  'network',
  'volume',
  'before',
  'since',
  'publish',
  'expose',
  'health',
  'is-task',
]);
const HEALTH = new Set(['starting', 'healthy', 'unhealthy', 'none']);
const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

/** "KEY=VALUE" filters → key → values, checked as Docker's daemon checks them. */
export function parseFilters(filters: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i < 0)
      throw new TsrunError('ERR_USAGE', `bad format of filter (expected name=value)`, {
        hint: 'e.g. --filter status=exited',
      });
    const key = f.slice(0, i).trim().toLowerCase();
    const value = f.slice(i + 1);
    if (!FILTER_KEYS.has(key)) {
      throw new TsrunError('ERR_USAGE', `invalid filter '${key}'`, {
        hint: `ps filters: ${[...FILTER_KEYS].join(', ')}`,
      });
    }
    if (key === 'status' && !STATUSES.has(value)) {
      throw new TsrunError('ERR_USAGE', `invalid filter 'status=${value}'`, {
        hint: `a status is one of ${[...STATUSES].join(', ')}`,
      });
    }
    if (key === 'health' && !HEALTH.has(value)) {
      throw new TsrunError('ERR_USAGE', `invalid filter 'health=${value}'`, {
        hint: `a health status is one of ${[...HEALTH].join(', ')}`,
      });
    }
    if ((key === 'publish' || key === 'expose') && !/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(value)) {
      throw new TsrunError('ERR_USAGE', `invalid filter '${key}=${value}'`, {
        hint: `a port, a range, and/or a protocol: ${key}=80, ${key}=8000-8080/tcp`,
      });
    }
    if (key === 'exited' && !/^-?\d+$/.test(value)) {
      throw new TsrunError('ERR_USAGE', `invalid filter 'exited=${value}'`, {
        hint: 'exited takes an exit code, e.g. exited=0',
      });
    }
    m.set(key, [...(m.get(key) ?? []), value]);
  }
  return m;
}

/** Docker's publish/expose filter: "80", "8000-8080", "53/udp" (tcp when no protocol) against "PORT/PROTO" entries. */
function portMatch(values: string[], ports: { port: number; proto: string }[]): boolean {
  return values.some((v) => {
    const [range, proto = 'tcp'] = v.split('/') as [string, string | undefined];
    const [lo, hi = lo] = range.split('-').map(Number) as [number, number | undefined];
    return ports.some((p) => p.proto === proto && p.port >= lo && p.port <= (hi as number));
  });
}

/** Docker's filters.Match: any value, as a regular expression, matches somewhere in `s`. */
function regexMatch(values: string[], s: string): boolean {
  return values.some((v) => {
    try {
      return new RegExp(v).test(s);
    } catch {
      return false;
    }
  });
}

/** Docker's daemon Command: path and args, an arg with a space in single quotes. */
export function psCommand(c: Container): string {
  const args = c.record.args.map((a) => (a.includes(' ') ? `'${a}'` : a));
  return args.length > 0 ? `${c.record.path} ${args.join(' ')}` : c.record.path;
}

function portsOf(c: Container): PortSummary[] {
  if (c.observed.status !== 'running') return [];
  const published = c.record.state.network?.ports ?? [];
  const out: PortSummary[] = published.map((m) => ({
    ip: m.hostIP || '0.0.0.0',
    privatePort: m.containerPort,
    publicPort: m.hostPort,
    type: m.protocol,
  }));
  const seen = new Set(published.map((m) => `${m.containerPort}/${m.protocol}`));
  for (const e of c.record.config.exposedPorts) {
    const [port, proto = 'tcp'] = e.split('/');
    if (!seen.has(`${port}/${proto}`)) out.push({ privatePort: Number(port), type: proto });
  }
  return out;
}

/** Bytes under `dir`, each inode once (Docker's directory.Size). */
export async function dirSize(dir: string, seen = new Set<string>()): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      total += await dirSize(p, seen);
      continue;
    }
    const st = await fs.lstat(p).catch(() => undefined);
    if (!st) continue;
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1) {
      if (seen.has(key)) continue;
      seen.add(key);
    }
    total += st.size;
  }
  return total;
}

export async function containerSizes(env: Env, c: Container): Promise<{ sizeRw: number; sizeRootFs: number }> {
  const sizeRw = await dirSize(c.paths.upper);
  const images = await env.store.readImages();
  const imageSize = images.images[c.record.imageId]?.size ?? 0;
  return { sizeRw, sizeRootFs: imageSize + sizeRw };
}

function summary(c: Container, v: Views): ContainerSummary {
  const r = c.record;
  return {
    id: r.id,
    names: [r.name],
    image: r.image,
    imageId: r.imageId,
    command: psCommand(c),
    created: r.created,
    state: c.observed.paused ? 'paused' : c.observed.status,
    exitCode: c.observed.exitCode,
    startedAt: c.observed.startedAt,
    finishedAt: c.observed.finishedAt,
    ports: portsOf(c),
    labels: r.config.labels,
    mounts: [
      ...r.host.binds.map((b) => ({ source: b.source, destination: b.destination })),
      ...(r.host.volumes ?? []).map((v) => ({ name: v.name, source: '', destination: v.destination, driver: 'local' })),
    ],
    networks: v.networkNames(r),
    endpoints: v.networkEndpoints(c),
    health: v.healthStatus(c),
  };
}

export async function listContainers(env: Env, o: ListOptions): Promise<ContainerSummary[]> {
  const f = parseFilters(o.filters ?? []);
  let list = await env.containers.list();
  // No container: nothing below calls the views, and their modules stay unloaded.
  const v = list.length > 0 ? await views() : ({} as Views);
  const all = o.all || (o.last !== undefined && o.last > 0) || f.has('status') || f.has('exited');
  let ancestors: Set<string> | undefined;
  if (f.has('ancestor')) {
    const file = await env.store.readImages();
    ancestors = new Set();
    for (const a of f.get('ancestor') ?? []) {
      try {
        ancestors.add(findImage(file, a).record.id);
      } catch {
        /* an unknown image matches nothing */
      }
    }
  }
  const order = (q: string): string | undefined =>
    list.find((c) => c.record.name === q || c.record.id.startsWith(q))?.record.created;
  const before = f.get('before')?.map(order);
  const since = f.get('since')?.map(order);
  if (before?.includes(undefined) || since?.includes(undefined)) {
    throw new TsrunError(
      'ERR_CONTAINER_NOT_FOUND',
      `no such container: ${[...(f.get('before') ?? []), ...(f.get('since') ?? [])].find((q) => !order(q))}`,
    );
  }
  list = list.filter((c) => {
    const r = c.record;
    const s = c.observed;
    const has = (k: string) => f.has(k);
    const vals = (k: string) => f.get(k) ?? [];
    if (!all && s.status !== 'running' && !has('before') && !has('since')) return false;
    if (has('status') && !vals('status').includes(s.paused ? 'paused' : s.status)) return false;
    if (has('name') && !regexMatch(vals('name'), `/${r.name}`)) return false;
    if (has('id') && !regexMatch(vals('id'), r.id)) return false;
    if (has('exited') && (s.status !== 'exited' || !s.startedAt || !vals('exited').map(Number).includes(s.exitCode)))
      return false;
    if (
      has('label') &&
      !vals('label').every((l) => {
        const i = l.indexOf('=');
        return i < 0 ? l in r.config.labels : r.config.labels[l.slice(0, i)] === l.slice(i + 1);
      })
    )
      return false;
    if (ancestors && !ancestors.has(r.imageId)) return false;
    const nets = [...v.networkNames(r), ...(r.host.networks ?? []).map((n) => n.id)];
    if (has('network') && !vals('network').some((v) => nets.includes(v))) return false;
    if (
      has('volume') &&
      !r.host.binds.some((b) => vals('volume').some((v) => v === b.source || v === b.destination)) &&
      !(r.host.volumes ?? []).some((m) => vals('volume').some((v) => v === m.name || v === m.destination))
    )
      return false;
    const exposed = r.config.exposedPorts.map((e) => {
      const [p, proto = 'tcp'] = e.split('/');
      return { port: Number(p), proto };
    });
    const published = (r.host.ports ?? []).map((m) => ({ port: m.containerPort, proto: m.protocol }));
    if (has('publish') && !portMatch(vals('publish'), published)) return false;
    if (has('expose') && !portMatch(vals('expose'), [...exposed, ...published])) return false;
    // No swarm tasks in tsrun.
    if (has('health') && !vals('health').includes(v.healthStatus(c))) return false;
    if (has('is-task') && !vals('is-task').includes('false')) return false;
    if (before && !before.every((t) => r.created < (t as string))) return false;
    if (since && !since.every((t) => r.created > (t as string))) return false;
    return true;
  });
  if (o.last !== undefined && o.last > 0) list = list.slice(0, o.last);
  const out = list.map((c) => summary(c, v));
  if (o.size) {
    await Promise.all(
      list.map(async (c, i) => Object.assign(out[i] as ContainerSummary, await containerSizes(env, c))),
    );
  }
  return out;
}
