/**
 * Volume endpoints over app/volumes.ts (`tsrun volume`): create, list with filters, inspect,
 * DELETE, prune. A volume made through an `--exec` session's socket carries the session label,
 * so the session's end removes it with its containers.
 */
import { createVolume, inspectVolume, listVolumes, pruneVolumes, removeVolumes } from '../app/volumes.js';
import { ApiError, toApiError } from './errors.js';
import { queryBool, queryFilters, readJson, sendJson, type Router } from './router.js';
import { SESSION_LABEL, type ApiState } from './state.js';

function strMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
    throw new ApiError(400, `invalid ${field}: expected a map of strings`);
  return v as Record<string, string>;
}

export function registerVolumeRoutes(router: Router, state: ApiState): void {
  const { env } = state;
  const lookup = async (name: string) => {
    try {
      return await inspectVolume(env, name);
    } catch {
      throw new ApiError(404, `get ${name}: no such volume`);
    }
  };

  router.add('POST', '/volumes/create', async ({ req, res }) => {
    const b = await readJson(req);
    if (b.Name !== undefined && b.Name !== null && typeof b.Name !== 'string')
      throw new ApiError(400, 'invalid Name: expected a string');
    if (b.Driver !== undefined && b.Driver !== null && typeof b.Driver !== 'string')
      throw new ApiError(400, 'invalid Driver: expected a string');
    const labels = {
      ...(strMap(b.Labels, 'Labels') ?? {}),
      ...(state.session ? { [SESSION_LABEL]: state.session } : {}),
    };
    const v = await createVolume(env, {
      name: (b.Name as string | undefined) || undefined,
      driver: (b.Driver as string | undefined) || undefined,
      labels,
      options: strMap(b.DriverOpts, 'DriverOpts'),
    });
    sendJson(res, 201, v);
  });

  router.add('GET', '/volumes', async ({ res, query }) => {
    const rows = await listVolumes(env, queryFilters(query));
    sendJson(res, 200, { Volumes: rows.map(({ links: _links, ...v }) => v), Warnings: [] });
  });

  router.add('GET', '/volumes/{name}', async ({ res, params }) => sendJson(res, 200, await lookup(params.name ?? '')));

  router.add('DELETE', '/volumes/{name}', async ({ res, params, query }) => {
    const name = params.name ?? '';
    if (!queryBool(query, 'force')) await lookup(name);
    const r = await removeVolumes(env, [name], queryBool(query, 'force'));
    if (r.errors.length > 0) {
      const e = toApiError(r.errors[0]);
      throw new ApiError(/in use/.test(e.message) ? 409 : e.status, e.message);
    }
    res.writeHead(204);
    res.end();
  });

  router.add('POST', '/volumes/prune', async ({ res, query }) => {
    const all = queryFilters(query).some((f) => f === 'all=true' || f === 'all=1');
    const r = await pruneVolumes(env, { all });
    sendJson(res, 200, { VolumesDeleted: r.removed, SpaceReclaimed: r.reclaimed });
  });
}
