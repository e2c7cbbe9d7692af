/**
 * `tsrun update [-m MEM] [--memory-swap MEM] [--cpus N] [--cpu-shares N] [--cpuset-cpus LIST]
 * [--pids-limit N] CONTAINER...`: change a container's resource limits, as `docker update`
 * does. A running container's cgroup changes at once (`runc update`); the bundle's config.json
 * and the record change too, so the limits hold at the next start. The values mean what run's
 * flags mean (spec/options.ts withResources: --cpus as a CFS quota over 100ms, -m with swap = 2×).
 *
 * Rootless containers have no cgroup of their own here (no delegated v2 hierarchy): refused,
 * as run refuses the flags. config.json may hold uint64 values JavaScript numbers cannot
 * represent (RLIM_INFINITY): integers longer than 15 digits are kept as bigints while it is
 * rewritten, so nothing else in it changes.
 */
import { promises as fs } from 'node:fs';
import { TsrunError } from '../errors.js';
import { parseSpec, serializeSpec } from '../spec/defaults.js';
import { withResources } from '../spec/options.js';
import type { Spec } from '../spec/types.js';
import { updateResources, type ResourceUpdate } from '../runtime/control.js';
import { writeFileAtomic } from '../util/fs.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor } from './containers.js';

export interface UpdateOptions {
  memory?: number;
  memorySwap?: number;
  cpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  pidsLimit?: number;
}

export async function updateContainer(ctx: AppContext, query: string, o: UpdateOptions): Promise<void> {
  if (Object.values(o).every((v) => v === undefined)) {
    throw new TsrunError('ERR_USAGE', 'you must provide one or more flags when using this command', {
      hint: 'e.g. tsrun update -m 256m --cpus 0.5 CONTAINER',
    });
  }
  if (ctx.uid !== 0) {
    throw new TsrunError(
      'ERR_ROOTLESS',
      'updating resource limits: rootless containers have no cgroup limits in tsrun yet',
      {
        hint: 'resource limits need a delegated cgroup v2 hierarchy, which tsrun does not use yet',
      },
    );
  }
  const env = await openEnv(ctx);
  const found = await env.containers.find(query);
  await env.containers.lock(found.record.id, async () => {
    const c = env.containers.observe(found.record);
    const spec = parseSpec(await fs.readFile(c.paths.config, 'utf8'));
    const before = JSON.stringify(spec.linux.resources ?? {}, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v,
    );
    withResources({ memory: o.memory, cpus: o.cpus, pidsLimit: o.pidsLimit })(spec);
    const res = (spec.linux.resources ??= {}) as NonNullable<Spec['linux']['resources']> & ResourceUpdate;
    if (o.memorySwap !== undefined) {
      const limit = res.memory?.limit;
      if (limit === undefined)
        throw new TsrunError('ERR_USAGE', 'You must provide a memory limit (-m) to set --memory-swap');
      if (o.memorySwap !== -1 && o.memorySwap < Number(limit)) {
        throw new TsrunError('ERR_USAGE', 'Minimum memoryswap limit should be larger than memory limit, see usage');
      }
      res.memory = { ...res.memory, swap: o.memorySwap };
    }
    if (o.cpuShares !== undefined) res.cpu = { ...res.cpu, shares: o.cpuShares };
    if (o.cpusetCpus !== undefined) res.cpu = { ...res.cpu, cpus: o.cpusetCpus };
    if (c.observed.status === 'running') {
      const update: ResourceUpdate = {};
      if (res.memory) update.memory = { limit: Number(res.memory.limit), swap: Number(res.memory.swap) };
      if (res.cpu) update.cpu = res.cpu as ResourceUpdate['cpu'];
      if (res.pids) update.pids = { limit: Number(res.pids.limit) };
      await updateResources(await runtimeFor(env, c.record.host.runtime), c.record.id, update);
    }
    if (JSON.stringify(res, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) !== before) {
      await writeFileAtomic(c.paths.config, serializeSpec(spec), 0o644);
    }
    const record = await env.containers.read(c.record.id);
    if (record) {
      record.host = {
        ...record.host,
        ...(o.memory !== undefined ? { memory: o.memory } : {}),
        ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
        ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
      };
      await env.containers.write(record);
    }
  });
}
