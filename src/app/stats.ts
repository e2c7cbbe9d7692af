/**
 * `tsrun stats`: a running container's resource use, in `docker stats`'s columns. The counters
 * come from the runtime (`runc events --stats`: the container's cgroup, v1 or v2 — this host
 * mixes both — read by runc so tsrun parses no cgroup files), network counters from the
 * container's /proc/<pid>/net/dev (its network namespace).
 *
 * CPU % is Docker's: the CPU time the container used between two samples over the wall time
 * between them, ×100 (so 2 busy cores read 200%). Memory usage leaves out the inactive page
 * cache, as the docker CLI does (cgroup v1 total_inactive_file, v2 inactive_file); the limit is
 * the cgroup's, or the host's memory when the cgroup has none. A container that is not running
 * reads as zeros, as in Docker.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { runtimeStats, type RuntimeStats } from '../runtime/control.js';
import type { Container } from '../runtime/records.js';
import { sleep } from '../util/concurrency.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor, type Env } from './containers.js';

export interface StatsRow {
  id: string;
  name: string;
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  memPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

interface Sample {
  at: bigint;
  cpu: number;
  stats: RuntimeStats;
}

function netCounters(pid: number): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  try {
    for (const line of readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2)) {
      const [iface, rest] = line.split(':');
      if (!rest || iface?.trim() === 'lo') continue;
      const f = rest.trim().split(/\s+/).map(Number);
      rx += f[0] ?? 0;
      tx += f[8] ?? 0;
    }
  } catch {
    // the container is gone
  }
  return { rx, tx };
}

async function sample(env: Env, c: Container): Promise<Sample | undefined> {
  if (c.observed.status !== 'running') return undefined;
  try {
    const stats = await runtimeStats(await runtimeFor(env, c.record.host.runtime), c.record.id);
    return { at: process.hrtime.bigint(), cpu: stats.cpu?.usage?.total ?? 0, stats };
  } catch {
    return undefined;
  }
}

function row(c: Container, a: Sample | undefined, b: Sample | undefined): StatsRow {
  const base = { id: c.record.id, name: c.record.name };
  if (!b)
    return {
      ...base,
      cpuPercent: 0,
      memUsage: 0,
      memLimit: 0,
      memPercent: 0,
      netRx: 0,
      netTx: 0,
      blockRead: 0,
      blockWrite: 0,
      pids: 0,
    };
  const wall = a ? Number(b.at - a.at) : 0;
  const cpuPercent = a && wall > 0 ? ((b.cpu - a.cpu) / wall) * 100 : 0;
  const mem = b.stats.memory;
  const inactive = mem?.stats?.total_inactive_file ?? mem?.stats?.inactive_file ?? 0;
  const usage = Math.max(0, (mem?.usage?.usage ?? 0) - inactive);
  const cgLimit = mem?.usage?.limit ?? 0;
  const memLimit = cgLimit > 0 && cgLimit < os.totalmem() ? cgLimit : os.totalmem();
  let blockRead = 0;
  let blockWrite = 0;
  for (const e of b.stats.blkio?.ioServiceBytesRecursive ?? []) {
    if (/^read$/i.test(e.op ?? '')) blockRead += e.value ?? 0;
    if (/^write$/i.test(e.op ?? '')) blockWrite += e.value ?? 0;
  }
  const net = netCounters(c.observed.pid);
  return {
    ...base,
    cpuPercent: Math.max(0, cpuPercent),
    memUsage: usage,
    memLimit,
    memPercent: memLimit > 0 ? (usage / memLimit) * 100 : 0,
    netRx: net.rx,
    netTx: net.tx,
    blockRead,
    blockWrite,
    pids: b.stats.pids?.current ?? 0,
  };
}

/** The containers to show: those named, or every running one. */
export async function statsTargets(
  ctx: AppContext,
  names: string[],
  all: boolean,
): Promise<{ env: Env; list: Container[] }> {
  const env = await openEnv(ctx);
  if (names.length > 0) return { env, list: await Promise.all(names.map((n) => env.containers.find(n))) };
  return { env, list: (await env.containers.list()).filter((c) => all || c.observed.status === 'running') };
}

/** One reading per container, CPU measured over `intervalMs`. */
export async function statsOnce(env: Env, list: Container[], intervalMs = 500): Promise<StatsRow[]> {
  const fresh = list.map((c) => env.containers.observe(c.record));
  const first = await Promise.all(fresh.map((c) => sample(env, c)));
  await sleep(intervalMs);
  const second = await Promise.all(fresh.map((c) => sample(env, c)));
  return fresh.map((c, i) => row(c, first[i], second[i]));
}
