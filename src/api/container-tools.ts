/**
 * The endpoints of the CLI's looking-inside verbs, each over the use case its tsrun verb calls:
 * `top` (app/top.ts), `stats` (app/stats.ts), `changes` (app/diff.ts), `export` (app/export.ts),
 * `commit` (app/commit.ts) and the import half of `POST /images/create?fromSrc=-` (app/import.ts).
 *
 * Stats: Docker's StatsJSON is raw counters that the client turns into percentages. tsrun's
 * reading is the percentages (app/stats.ts measured two samples), so the CPU counters are given
 * as one reading over a nominal second: `precpu_stats` zero, `cpu_stats.total_usage` the share of
 * `system_cpu_usage` (1e9 ns × online CPUs) that gives the docker CLI's formula back tsrun's
 * CPU %. Memory, block I/O, network and pid counters are the real ones.
 */
import os from 'node:os';
import { top } from '../app/top.js';
import { statsOnce, type StatsRow } from '../app/stats.js';
import { exportContainer } from '../app/export.js';
import { commitContainer } from '../app/commit.js';
import { importImage } from '../app/import.js';
import { containerDiff } from '../app/diff.js';
import type { ApiRequest, Router } from './router.js';
import { queryBool, sendJson } from './router.js';
import type { ApiState } from './state.js';

/** `changes`: Docker sends Dockerfile instructions as repeated `changes=` parameters. */
const changes = (q: URLSearchParams): string[] => q.getAll('changes').filter((c) => c.trim() !== '');

/** `repo` and `tag` as one REPOSITORY[:TAG], or undefined. */
function repoTag(q: URLSearchParams): string | undefined {
  const repo = q.get('repo') ?? '';
  if (!repo) return undefined;
  const tag = q.get('tag') ?? '';
  return tag ? `${repo}:${tag}` : repo;
}

/** Docker's StatsJSON from one of tsrun's readings (see the module comment for CPU). */
export function statsJson(r: StatsRow, read: Date): Record<string, unknown> {
  const online = os.cpus().length || 1;
  const system = 1e9 * online;
  return {
    id: r.id,
    name: `/${r.name}`,
    read: read.toISOString(),
    preread: new Date(read.getTime() - 1000).toISOString(),
    num_procs: 0,
    pids_stats: { current: r.pids },
    cpu_stats: {
      cpu_usage: {
        total_usage: Math.round((r.cpuPercent / 100) * 1e9),
        usage_in_kernelmode: 0,
        usage_in_usermode: 0,
      },
      system_cpu_usage: system,
      online_cpus: online,
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
    precpu_stats: {
      cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
      system_cpu_usage: 0,
      online_cpus: online,
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
    memory_stats: { usage: r.memUsage, limit: r.memLimit, stats: {} },
    blkio_stats: {
      io_service_bytes_recursive: [
        { major: 0, minor: 0, op: 'read', value: r.blockRead },
        { major: 0, minor: 0, op: 'write', value: r.blockWrite },
      ],
    },
    networks: { eth0: { rx_bytes: r.netRx, tx_bytes: r.netTx, rx_packets: 0, tx_packets: 0 } },
  };
}

/** `POST /images/create?fromSrc=-`: the body is the tar (`fromSrc=URL`: fetched by the use case). */
export async function importFromSrc(state: ApiState, { req, res, query }: ApiRequest): Promise<void> {
  const src = query.get('fromSrc') ?? '-';
  const id = await importImage(
    state.ctx,
    src === '-' ? '-' : src,
    repoTag(query),
    {
      changes: changes(query),
      message: query.get('message') || undefined,
      platform: query.get('platform') || undefined,
    },
    req,
  );
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify({ status: id })}\r\n`);
}

export function registerContainerToolRoutes(router: Router, state: ApiState): void {
  router.add('GET', '/containers/{id}/top', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const psArgs = (query.get('ps_args') ?? '').split(/\s+/).filter(Boolean);
    const r = await top(state.ctx, c.record.id, psArgs);
    sendJson(res, 200, { Titles: r.titles, Processes: r.processes });
  });

  router.add('GET', '/containers/{id}/stats', async ({ req, res, params, query }) => {
    const c = await state.find(params.id ?? '');
    const stream = queryBool(query, 'stream', true) && !queryBool(query, 'one-shot');
    if (!stream) {
      const [row] = await statsOnce(state.env, [c]);
      if (row) sendJson(res, 200, statsJson(row, new Date()));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    let open = true;
    req.socket.once('close', () => (open = false));
    while (open && !res.destroyed) {
      // statsOnce measures over ~0.5 s; a reading a second, as Docker streams them.
      const [row] = await statsOnce(state.env, [await state.find(c.record.id)], 1000);
      if (row) res.write(`${JSON.stringify(statsJson(row, new Date()))}\n`);
    }
    res.end();
  });

  // Docker's kinds: 0 changed, 1 added, 2 deleted.
  router.add('GET', '/containers/{id}/changes', async ({ res, params }) => {
    const c = await state.find(params.id ?? '');
    const list = await containerDiff(state.ctx, c.record.id);
    sendJson(
      res,
      200,
      list.map((x) => ({ Path: x.path, Kind: x.kind === 'C' ? 0 : x.kind === 'A' ? 1 : 2 })),
    );
  });

  router.add('GET', '/containers/{id}/export', async ({ res, params }) => {
    const c = await state.find(params.id ?? '');
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    await exportContainer(state.ctx, c.record.id, res);
    res.end();
  });

  router.add('POST', '/commit', async ({ res, query }) => {
    const c = await state.find(query.get('container') ?? '');
    const id = await commitContainer(state.ctx, c.record.id, repoTag(query), {
      changes: changes(query),
      message: query.get('comment') || undefined,
      author: query.get('author') || undefined,
      pause: queryBool(query, 'pause', true),
    });
    sendJson(res, 201, { Id: id });
  });
}
