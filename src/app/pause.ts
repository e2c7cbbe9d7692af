/**
 * `tsrun pause` / `unpause`: freeze and thaw every process of a running container (the runtime's
 * pause/resume: the cgroup freezer), as `docker pause` does. `ps` then says "Up … (Paused)" and
 * inspect's State.Paused is true: a marker in the container's volatile state dir says so (it goes
 * when the run ends, so a paused container that is killed is not "paused" when restarted).
 *
 * `withFrozen` is what export, commit and diff use to read a running container's files: a
 * frozen container cannot change them under us (ARCHITECTURE.md: "a running container is an
 * adversary"), Docker's `commit --pause` default.
 * Contract: each change happens under the container's lock; `withFrozen` always thaws what it
 * froze, and leaves a container the user paused paused.
 */
import { promises as fs } from 'node:fs';
import { TsrunError } from '../errors.js';
import { pauseContainer, resumeContainer } from '../runtime/control.js';
import { pausedMarker, type Container } from '../runtime/records.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor, type Env } from './containers.js';

const notRunning = (c: Container) => new TsrunError('ERR_CONTAINER_STATE', `container ${c.record.id} is not running`);

export async function pause(ctx: AppContext, query: string): Promise<void> {
  if (ctx.rootless) {
    throw new TsrunError(
      'ERR_ROOTLESS',
      `pausing container ${query}: the cgroup freezer is not available to rootless containers in tsrun yet`,
      {
        hint: 'it needs a delegated cgroup v2 hierarchy, which tsrun does not use yet',
      },
    );
  }
  const env = await openEnv(ctx);
  const found = await env.containers.find(query);
  await env.containers.lock(found.record.id, async () => {
    const c = env.containers.observe(found.record);
    if (c.observed.status !== 'running') throw notRunning(c);
    if (c.observed.paused) throw new TsrunError('ERR_CONTAINER_STATE', `container ${c.record.id} is already paused`);
    await pauseContainer(await runtimeFor(env, c.record.host.runtime), c.record.id);
    await fs.writeFile(pausedMarker(c.paths), new Date().toISOString());
  });
}

export async function unpause(ctx: AppContext, query: string): Promise<void> {
  const env = await openEnv(ctx);
  const found = await env.containers.find(query);
  await env.containers.lock(found.record.id, async () => {
    const c = env.containers.observe(found.record);
    if (c.observed.status !== 'running' || !c.observed.paused)
      throw new TsrunError('ERR_CONTAINER_STATE', `container ${c.record.id} is not paused`);
    await resumeContainer(await runtimeFor(env, c.record.host.runtime), c.record.id);
    await fs.rm(pausedMarker(c.paths), { force: true });
  });
}

/**
 * Run `fn` with the container frozen when it runs (and `freeze` is not false). A container the
 * user paused stays paused; one frozen here is thawed afterwards, whatever `fn` did.
 */
export async function withFrozen<T>(env: Env, c: Container, freeze: boolean, fn: () => Promise<T>): Promise<T> {
  // A rootless container has no cgroup of its own here (runc skips cgroups), so there is no
  // freezer: it is read live. It can only touch files its user owns, and the walks never follow
  // a link (container-fs.ts).
  if (!freeze || c.observed.status !== 'running' || c.observed.paused || env.ctx.rootless) return fn();
  const rt = await runtimeFor(env, c.record.host.runtime);
  await pauseContainer(rt, c.record.id);
  try {
    return await fn();
  } finally {
    await resumeContainer(rt, c.record.id);
  }
}
