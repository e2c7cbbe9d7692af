/**
 * Container endpoints that answer with one JSON body or a status: create, list, inspect, start,
 * stop, kill, restart, wait, pause/unpause, rename, DELETE, prune. The streams (attach, logs,
 * exec) are in streams.ts, archive in archive.ts. Each handler calls the use case the CLI's verb
 * calls (src/app), so both front ends make and see the same containers.
 */
import type { TsrunEvent } from '../events.js';
import { createContainer } from '../app/run.js';
import { killContainer, pruneContainers, removeContainer, startContainer, stopContainer } from '../app/containers.js';
import { inspectView } from '../app/container-views.js';
import { containerSizes, listContainers, type ContainerSummary } from '../app/ps.js';
import { pause, unpause } from '../app/pause.js';
import { renameContainer } from '../app/rename.js';
import { createVolume, inspectVolume } from '../app/volumes.js';
import { isTsrunError } from '../errors.js';
import { humanDuration, timeAgo } from '../cli/format.js';
import { containerDirs, nextChange } from '../runtime/watch.js';
import { ApiError, notFoundImage } from './errors.js';
import { runOptionsFromBody } from './create-body.js';
import { noContent, queryBool, queryFilters, readJson, sendJson, type Router } from './router.js';
import { SESSION_LABEL, type ApiState } from './state.js';

/** Docker's Status column: "Up 5 minutes", "Exited (0) 2 hours ago", "Created". */
function statusText(c: ContainerSummary, now = Date.now()): string {
  if (c.state === 'running' || c.state === 'paused') {
    const up = `Up ${humanDuration(Math.max(0, now - Date.parse(c.startedAt ?? c.created)))}`;
    return c.state === 'paused' ? `${up} (Paused)` : up;
  }
  if (c.state === 'created') return 'Created';
  return `Exited (${c.exitCode}) ${timeAgo(c.finishedAt, now)}`;
}

/** container.Summary, as `GET /containers/json` lists it. */
export function summaryJson(c: ContainerSummary): Record<string, unknown> {
  return {
    Id: c.id,
    Names: c.names.map((n) => `/${n}`),
    Image: c.image,
    ImageID: c.imageId,
    Command: c.command,
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: c.ports.map((p) => ({
      ...(p.ip !== undefined ? { IP: p.ip } : {}),
      PrivatePort: p.privatePort,
      ...(p.publicPort !== undefined ? { PublicPort: p.publicPort } : {}),
      Type: p.type,
    })),
    Labels: c.labels,
    State: c.state,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.networks[0] ?? 'bridge' },
    NetworkSettings: { Networks: c.endpoints ?? Object.fromEntries(c.networks.map((n) => [n, {}])) },
    Mounts: c.mounts.map((m) => ({ Type: 'bind', Source: m.source, Destination: m.destination })),
    ...(c.sizeRw !== undefined ? { SizeRw: c.sizeRw, SizeRootFs: c.sizeRootFs } : {}),
  };
}

/**
 * Run `check` each time the container changes (runtime/watch.ts: the monitor's exit file, a
 * restart, the record's removal) until it answers; the watch is set before each look.
 */
async function untilChanged<T>(
  state: ApiState,
  id: string,
  check: () => Promise<T | undefined>,
  gone: () => boolean,
): Promise<T | undefined> {
  const { env } = state;
  const dirs = containerDirs(env.containers.sp, env.containers.paths(id));
  while (!gone()) {
    const w = nextChange(dirs, 200);
    try {
      const v = await check();
      if (v !== undefined) return v;
      await w.changed;
    } finally {
      w.close();
    }
  }
  return undefined;
}

/** The exit code a wait reports, and the time it stopped being active. */
async function waitFor(state: ApiState, id: string, condition: string, gone: () => boolean) {
  const first = await state.env.containers.read(id);
  let last = first ? state.env.containers.observe(first).observed : undefined;
  const startedAt = last?.startedAt;
  const finishedAt = last?.finishedAt;
  return untilChanged(
    state,
    id,
    async () => {
      const r = await state.env.containers.read(id);
      if (!r) return last?.exitCode ?? 0;
      const o = state.env.containers.observe(r).observed;
      last = o;
      const stopped = o.status !== 'running';
      if (condition === 'not-running' && stopped) return o.exitCode;
      // next-exit: an exit after this request (a new finish time, or one of a run begun since).
      if (
        condition === 'next-exit' &&
        stopped &&
        o.finishedAt !== undefined &&
        (o.finishedAt !== finishedAt || o.startedAt !== startedAt)
      )
        return o.exitCode;
      return undefined;
    },
    gone,
  );
}

export function registerContainerRoutes(router: Router, state: ApiState): void {
  const { env } = state;

  router.add('POST', '/containers/create', async ({ req, res, query }) => {
    const body = await readJson(req);
    const labels: Record<string, string> = state.session ? { [SESSION_LABEL]: state.session } : {};
    const o = runOptionsFromBody(body, query.get('name') ?? undefined, labels);
    if (query.get('platform')) o.platform = query.get('platform') ?? undefined;
    const warnings: string[] = [];
    // A session's named volumes that the container would make are made here, with its label, so
    // the session's end removes them too (one that exists already is not the session's).
    if (state.session) await sessionVolumes(state, o.volumes ?? [], o.mount ?? []);
    try {
      const reporter = { emit: (e: TsrunEvent) => void (e.type === 'warning' && warnings.push(e.message)) };
      const { id } = await createContainer({ ...state.ctx, reporter }, o);
      sendJson(res, 201, { Id: id, Warnings: warnings });
    } catch (err) {
      if (isTsrunError(err, 'ERR_IMAGE_NOT_FOUND')) throw notFoundImage(o.image);
      throw err;
    }
  });

  router.add('GET', '/containers/json', async ({ res, query }) => {
    const limit = Number(query.get('limit') ?? '-1');
    const list = await listContainers(env, {
      all: queryBool(query, 'all'),
      last: limit > 0 ? limit : undefined,
      size: queryBool(query, 'size'),
      filters: queryFilters(query),
    });
    sendJson(res, 200, list.map(summaryJson));
  });

  router.add('GET', '/containers/{id}/json', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const view = inspectView(env, c);
    if (queryBool(query, 'size')) {
      const s = await containerSizes(env, c);
      Object.assign(view, { SizeRw: s.sizeRw, SizeRootFs: s.sizeRootFs });
    }
    sendJson(res, 200, view);
  });

  router.add('POST', '/containers/{id}/start', async ({ res, params }) => {
    const c = await state.find(params.id ?? '');
    if (c.observed.status === 'running') return noContent(res, 304);
    const hooks = state.pendingAttach.get(c.record.id);
    state.pendingAttach.delete(c.record.id);
    await startContainer(env, c, hooks?.length ? { attachIo: (a) => hooks.forEach((h) => h(a)) } : {});
    noContent(res);
  });

  const stopLike = (restart: boolean) => async (r: Parameters<Parameters<Router['add']>[2]>[0]) => {
    const c = await state.find(r.params.id ?? '');
    const t = r.query.get('t') ?? r.query.get('timeout');
    const timeout = t !== null && t !== '' ? Math.max(0, Number(t)) : undefined;
    const signal = r.query.get('signal') || undefined;
    if (!restart && c.observed.status !== 'running') return noContent(r.res, 304);
    await stopContainer(env, c.record.id, timeout, signal);
    if (restart) await startContainer(env, await env.containers.find(c.record.id));
    noContent(r.res);
  };
  router.add('POST', '/containers/{id}/stop', stopLike(false));
  router.add('POST', '/containers/{id}/restart', stopLike(true));

  router.add('POST', '/containers/{id}/kill', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    if (c.observed.status !== 'running')
      throw new ApiError(409, `Cannot kill container: ${params.id}: Container ${c.record.id} is not running`);
    await killContainer(env, c.record.id, query.get('signal') || 'SIGKILL');
    noContent(res);
  });

  router.add('POST', '/containers/{id}/wait', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const condition = query.get('condition') || 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(condition))
      throw new ApiError(400, `invalid condition: "${condition}"`);
    // The Go client waits for the headers before it sends start: they go out now.
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    // A client that hangs up stops the wait (nothing would read the answer).
    let closed = false;
    res.on('close', () => (closed = true));
    const gone = () => closed;
    const code =
      condition === 'removed'
        ? await waitRemoved(state, c.record.id, gone)
        : await waitFor(state, c.record.id, condition, gone);
    if (code !== undefined) res.end(`${JSON.stringify({ StatusCode: code, Error: null })}\n`);
  });

  router.add('DELETE', '/containers/{id}', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const force = queryBool(query, 'force');
    if (c.observed.status === 'running' && !force)
      throw new ApiError(
        409,
        `You cannot remove a running container ${c.record.id}. Stop the container before attempting removal or force remove`,
      );
    await removeContainer(env, c.record.id, force, queryBool(query, 'v')).catch((err: unknown) => {
      // Removed meanwhile (an --rm container's monitor was faster): done.
      if (!isTsrunError(err, 'ERR_CONTAINER_NOT_FOUND')) throw err;
    });
    noContent(res);
  });

  router.add('POST', '/containers/prune', async ({ res, query }) => {
    const labels = queryFilters(query)
      .filter((f) => f.startsWith('label='))
      .map((f) => f.slice('label='.length));
    let removed: string[];
    if (labels.length === 0) removed = await pruneContainers(env);
    else {
      removed = [];
      const list = await listContainers(env, { all: true, filters: labels.map((l) => `label=${l}`) });
      for (const c of list) {
        if (c.state === 'running' || c.state === 'paused') continue;
        await removeContainer(env, c.id).catch(() => {});
        removed.push(c.id);
      }
    }
    sendJson(res, 200, { ContainersDeleted: removed, SpaceReclaimed: 0 });
  });

  router.add('POST', '/containers/{id}/pause', async ({ res, params }) => {
    await pause(state.ctx, (await state.find(params.id ?? '')).record.id);
    noContent(res);
  });
  router.add('POST', '/containers/{id}/unpause', async ({ res, params }) => {
    await unpause(state.ctx, (await state.find(params.id ?? '')).record.id);
    noContent(res);
  });
  router.add('POST', '/containers/{id}/rename', async ({ res, params, query }) => {
    await renameContainer(state.ctx, (await state.find(params.id ?? '')).record.id, query.get('name') ?? '');
    noContent(res);
  });
}

async function sessionVolumes(state: ApiState, binds: string[], mounts: string[]): Promise<void> {
  const names = [
    ...binds
      .filter((b) => b.includes(':'))
      .map((b) => b.split(':')[0] ?? '')
      .filter((n) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n)),
    ...mounts
      .filter((m) => /(^|,)type=volume(,|$)/.test(m))
      .map((m) => /(?:^|,)(?:source|src)=([^,]+)/.exec(m)?.[1] ?? '')
      .filter(Boolean),
  ];
  for (const name of names) {
    if (
      await inspectVolume(state.env, name).then(
        () => true,
        () => false,
      )
    )
      continue;
    await createVolume(state.env, { name, labels: { [SESSION_LABEL]: state.session ?? '' } });
  }
}

/** `condition=removed`: until the record is gone (an --rm container's monitor removes it). */
async function waitRemoved(state: ApiState, id: string, gone: () => boolean) {
  let code = 0;
  return untilChanged(
    state,
    id,
    async () => {
      const r = await state.env.containers.read(id);
      if (!r) return code;
      const o = state.env.containers.observe(r).observed;
      // A container that is not --rm is waited for until someone removes it, as Docker does.
      if (o.status !== 'running' && o.finishedAt) code = o.exitCode;
      return undefined;
    },
    gone,
  );
}
