/**
 * Network endpoints over app/networks.ts (`tsrun network`), as the Engine answers them: list with
 * filters (name, id, label, driver, type), inspect, create (bridge only; 409 for a taken name),
 * DELETE (404 / 403 for a predefined network / 409 with active endpoints), connect, disconnect,
 * prune. A network made through an `--exec` session's socket carries the session label, so the
 * session's end removes it after its containers.
 */
import {
  networkConnect,
  networkCreate,
  networkDisconnect,
  networkInspect,
  networkList,
  networkPrune,
  networkRemove,
} from '../app/networks.js';
import { ApiError, toApiError } from './errors.js';
import { queryFilters, readJson, sendJson, type Router } from './router.js';
import { SESSION_LABEL, type ApiState } from './state.js';

type Obj = Record<string, unknown>;

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `invalid ${field}: expected a string`);
  return v;
}

function obj(v: unknown, field: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `invalid ${field}: expected an object`);
  return v as Obj;
}

function strMap(v: unknown, field: string): Record<string, string> | undefined {
  const o = obj(v, field);
  if (o && Object.values(o).some((x) => typeof x !== 'string'))
    throw new ApiError(400, `invalid ${field}: expected a map of strings`);
  return o as Record<string, string> | undefined;
}

function strs(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new ApiError(400, `invalid ${field}: expected a list of strings`);
  return v as string[];
}

/** A use case's TsrunError as the Engine's status for networks. */
function netError(err: unknown): ApiError {
  const e = toApiError(err);
  if (/not found/.test(e.message)) return new ApiError(404, e.message.replace(/ \(see `tsrun network ls`\)$/, ''));
  if (/already exists/.test(e.message)) return new ApiError(409, e.message);
  if (/active endpoints/.test(e.message)) return new ApiError(409, e.message.replace(/ \(stop or disconnect.*\)$/, ''));
  if (/pre-defined network/.test(e.message)) return new ApiError(403, e.message);
  return e;
}

async function wrap<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw netError(err);
  }
}

/** The endpoint config's aliases and IPv4 address (Docker's EndpointSettings). */
export function endpointOptions(v: unknown, field: string): { aliases?: string[]; ip?: string } {
  const e = obj(v, field);
  if (!e) return {};
  const ipam = obj(e.IPAMConfig, `${field}.IPAMConfig`);
  const ip = str(ipam?.IPv4Address, `${field}.IPAMConfig.IPv4Address`) || undefined;
  return { aliases: strs(e.Aliases, `${field}.Aliases`), ...(ip ? { ip } : {}) };
}

/** Go clients parse Created as a time: the predefined networks' empty one is Go's zero time. */
const goTime = (v: Record<string, unknown>) => (v.Created ? v : { ...v, Created: '0001-01-01T00:00:00Z' });

export function registerNetworkRoutes(router: Router, state: ApiState): void {
  const { env } = state;

  const view = async (ref: string) => {
    const r = await networkInspect([ref]);
    const v = r.found[0];
    if (!v) throw new ApiError(404, `network ${ref} not found`);
    return v;
  };

  router.add('GET', '/networks', async ({ res, query }) => {
    let rows = await networkList();
    for (const f of queryFilters(query)) {
      const i = f.indexOf('=');
      const [k, v] = i < 0 ? [f, ''] : [f.slice(0, i), f.slice(i + 1)];
      if (k === 'name') rows = rows.filter((r) => r.name.includes(v));
      else if (k === 'id') rows = rows.filter((r) => r.id.startsWith(v));
      else if (k === 'driver') rows = rows.filter((r) => r.driver === v);
      else if (k === 'type') {
        if (v !== 'custom' && v !== 'builtin') throw new ApiError(400, `invalid filter: 'type'='${v}'`);
        rows = rows.filter((r) => (v === 'custom') === (r.net !== undefined));
      } else if (k === 'label') {
        const j = v.indexOf('=');
        const [lk, lv] = j < 0 ? [v, undefined] : [v.slice(0, j), v.slice(j + 1)];
        rows = rows.filter((r) => r.net && lk in r.net.Labels && (lv === undefined || r.net.Labels[lk] === lv));
      } else if (k === 'dangling' || k === 'scope') continue;
      else throw new ApiError(400, `invalid filter '${k}'`);
    }
    sendJson(res, 200, (await networkInspect(rows.map((r) => r.id))).found.map(goTime));
  });

  router.add('GET', '/networks/{id}', async ({ res, params }) =>
    sendJson(res, 200, goTime(await view(params.id ?? ''))),
  );

  router.add('POST', '/networks/create', async ({ req, res }) => {
    const b = await readJson(req);
    const name = str(b.Name, 'Name');
    if (!name) throw new ApiError(400, 'network name is required');
    const ipam = obj(b.IPAM, 'IPAM');
    const configs = (ipam?.Config as unknown[] | undefined) ?? [];
    if (!Array.isArray(configs)) throw new ApiError(400, 'invalid IPAM.Config: expected a list');
    if (configs.length > 1) throw new ApiError(400, 'tsrun networks take one IPAM.Config (one IPv4 subnet)');
    const c = obj(configs[0], 'IPAM.Config[0]');
    const labels = {
      ...(strMap(b.Labels, 'Labels') ?? {}),
      ...(state.session ? { [SESSION_LABEL]: state.session } : {}),
    };
    const net = await wrap(() =>
      networkCreate(state.ctx, {
        name,
        driver: str(b.Driver, 'Driver') || undefined,
        subnet: str(c?.Subnet, 'IPAM.Config.Subnet') || undefined,
        gateway: str(c?.Gateway, 'IPAM.Config.Gateway') || undefined,
        internal: b.Internal === true,
        labels,
        options: strMap(b.Options, 'Options'),
      }),
    );
    sendJson(res, 201, { Id: net.Id, Warning: '' });
  });

  router.add('DELETE', '/networks/{id}', async ({ res, params }) => {
    const ref = params.id ?? '';
    const v = await view(ref);
    await wrap(() => networkRemove(state.ctx, String(v.Name)));
    res.writeHead(204);
    res.end();
  });

  router.add('POST', '/networks/{id}/connect', async ({ req, res, params }) => {
    const b = await readJson(req);
    const container = str(b.Container, 'Container');
    if (!container) throw new ApiError(400, 'Container is required');
    const ep = endpointOptions(b.EndpointConfig, 'EndpointConfig');
    await wrap(() => networkConnect(env, params.id ?? '', container, ep));
    res.writeHead(200);
    res.end();
  });

  router.add('POST', '/networks/{id}/disconnect', async ({ req, res, params }) => {
    const b = await readJson(req);
    const container = str(b.Container, 'Container');
    if (!container) throw new ApiError(400, 'Container is required');
    await wrap(() => networkDisconnect(env, params.id ?? '', container, b.Force === true));
    res.writeHead(200);
    res.end();
  });

  router.add('POST', '/networks/prune', async ({ res, query }) => {
    const removed = await wrap(() => networkPrune(state.ctx, queryFilters(query)));
    sendJson(res, 200, { NetworksDeleted: removed });
  });
}
