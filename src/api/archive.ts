/**
 * `/containers/{id}/archive`: HEAD (the path's stat, in `X-Docker-Container-Path-Stat`), GET (a
 * tar of the path, with that header) and PUT (a tar extracted into the directory at `path`), as
 * `docker cp` and testcontainers' copy use them. Both directions are app/cp.ts's tar streams, so
 * the same safe-path rules hold (issue 13), and they work before a container's first start.
 */
import { copy } from '../app/cp.js';
import { statInContainer } from '../app/cp-stat.js';
import { isTsrunError } from '../errors.js';
import { ApiError } from './errors.js';
import type { Router } from './router.js';
import type { ApiState } from './state.js';

export function registerArchiveRoutes(router: Router, state: ApiState): void {
  const stat = async (id: string, p: string) => {
    try {
      return await statInContainer(state.env, id, p);
    } catch (err) {
      if (isTsrunError(err) && err.detail?.notFound) throw new ApiError(404, err.message);
      throw err;
    }
  };
  const header = (s: object) => Buffer.from(JSON.stringify(s)).toString('base64');

  router.add('HEAD', '/containers/{id}/archive', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const s = await stat(c.record.id, query.get('path') ?? '/');
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': header(s), 'Content-Type': 'application/x-tar' });
    res.end();
  });

  router.add('GET', '/containers/{id}/archive', async ({ res, params, query, method }) => {
    const c = await state.find(params.id ?? '');
    const p = query.get('path') ?? '/';
    const s = await stat(c.record.id, p);
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': header(s), 'Content-Type': 'application/x-tar' });
    if (method === 'HEAD') return void res.end();
    await copy(state.ctx, `${c.record.id}:${p}`, '-', { stdout: res });
    res.end();
  });

  router.add('PUT', '/containers/{id}/archive', async ({ req, res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const p = query.get('path') ?? '/';
    const s = await stat(c.record.id, p);
    if (s.mode < 2 ** 31) throw new ApiError(400, `extraction point is not a directory: ${p}`);
    await copy(state.ctx, '-', `${c.record.id}:${p}`, {
      stdin: req,
      archive: query.get('copyUIDGID') === 'true' || query.get('copyUIDGID') === '1',
    });
    res.writeHead(200);
    res.end();
  });
}
