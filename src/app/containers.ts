/**
 * Container lifecycle use cases: cleanup, stop, kill, wait, rm, prune; start is start.ts's
 * (re-exported here). Docker's views of a container are in container-views.ts, ps rows in ps.ts.
 * `run` (run.ts) creates a container and then uses `startContainer` like `tsrun start` does.
 *
 * Contracts:
 * - Every change to a container happens under its lock (records.ts), so the monitor's exit
 *   command, an attached CLI and a concurrent `rm -f` can all try to clean up: the first does
 *   it, the others find nothing to do (`cleanupContainer` is idempotent).
 * - A container that is not running has no mount and no runtime state: cleanup unmounts the
 *   root, deletes the runtime's container and, for `--rm`, removes record, name and directories.
 * - Creating a container holds the store's shared lock, and garbage collection keeps every layer
 *   a container record names, so `rmi` can never pull layers from under a container.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import { TsrunError } from '../errors.js';
import { unmountAll } from '../snapshot/overlay.js';
import { isActive, type Container, type ContainerRecord } from '../runtime/records.js';
import { runtimeKnows } from '../runtime/oci-runtime.js';
import type { Attachment } from '../runtime/monitor.js';
import { cleanupSteps } from './container-events.js';
import { disconnectNetwork, ownNetns, runtimeFor } from './start.js';
import { markStopped, restartIfPolicy } from './restart.js';
import { hostMounts } from './run-host.js';
import { removeAnonymousVolumes } from './volumes.js';
import { quickFs } from '../util/fs-quick.js';
import { containerDirs, nextChange } from '../runtime/watch.js';
import { openEnv, type Env } from './env.js';
import type { AppContext } from './context.js';
import { containerPaths, storePaths } from '../runtime/paths.js';
import { rootfsMount } from './container-mount.js';

export { openEnv, type Env } from './env.js';
export { runtimeFor, startContainer, type StartOptions } from './start.js';
export { ensureMounted, isMounted, overlayDriver, rootfsMount, storageDriver } from './container-mount.js';

/**
 * After the container's exit: keep how it ended in the record, delete the runtime's container,
 * unmount the root; with `--rm` (or `remove`) remove everything. Idempotent; a running container
 * is left alone.
 */
export async function cleanupContainer(
  env: Env,
  id: string,
  o: { remove?: boolean; removeVolumes?: boolean } = {},
): Promise<void> {
  await env.containers.lock(id, () => cleanupLocked(env, id, o));
  if (!o.remove) await restartIfPolicy(env, id);
}

/**
 * The monitor's exit command (`tsrun container cleanup ID`): `cleanupContainer`, unless the
 * container was removed meanwhile (`rm -f`, its store being deleted). Then nothing is done, and
 * the store is not opened, which would make its directories again under whoever removes it.
 */
export async function cleanupAfterExit(ctx: AppContext, id: string): Promise<void> {
  const sp = storePaths(path.resolve(ctx.root), ctx.uid, ctx.env);
  if (!existsSync(containerPaths(sp, id).record)) return;
  await cleanupContainer(await openEnv(ctx), id);
}

/** `cleanupContainer`'s work, for a caller that already holds the container's lock. */
async function cleanupLocked(env: Env, id: string, o: { remove?: boolean; removeVolumes?: boolean }): Promise<void> {
  const record = await env.containers.read(id);
  if (!record) return;
  const c = env.containers.observe(record);
  if (isActive(c.observed)) return;
  if (c.observed.finishedAt) {
    record.state = { ...record.state, exitCode: c.observed.exitCode, finishedAt: c.observed.finishedAt };
    env.ctx.reporter.emit({
      type: 'container-exit',
      id,
      exitCode: c.observed.exitCode,
      finishedAt: c.observed.finishedAt,
    });
  }
  // A monitor that started the container itself deletes the runtime's container before it
  // writes the exit file: then nothing is left to delete (the runtime's state dir is gone), and
  // the runtime is not run at all.
  // A runtime that cannot be found now never created anything to delete.
  const runtime = runtimeKnows(env.containers.sp.runtimeRoot, id)
    ? await runtimeFor(env, record.host.runtime).catch(() => undefined)
    : undefined;
  // The runtime's container, the network and the root do not depend on each other: they are
  // undone side by side (each step is idempotent, so a failed one is retried by the next cleanup).
  // A plugin failure must not keep the rest in place: finish, then report it (the network's
  // record stays, so `tsrun system prune` can try again).
  const [deleted, disconnected, unmounted] = await Promise.allSettled([
    runtime?.delete(id, true),
    ownNetns(record) ? disconnectNetwork(env, id) : undefined,
    unmountAll([rootfsMount(env, c), ...hostMounts(record, c.paths)]),
  ]);
  for (const e of cleanupSteps(id, [
    // Deleted by us or, before the exit, by the monitor: either way it is gone.
    ['runtime-delete', [id], deleted],
    ['network', ownNetns(record) ? [record.host.network] : [], disconnected],
    ['unmount', [c.paths.rootfs, ...hostMounts(record, c.paths).map((m) => m.target)], unmounted],
  ]))
    env.ctx.reporter.emit(e);
  if (deleted.status === 'rejected') throw deleted.reason;
  if (unmounted.status === 'rejected') throw unmounted.reason;
  const netError = disconnected.status === 'rejected' ? (disconnected.reason as unknown) : undefined;
  if (record.host.autoRemove || o.remove) {
    await env.containers.remove(record);
    env.ctx.reporter.emit({ type: 'cleanup-step', id, step: 'state-dir', targets: [c.paths.state, c.paths.dir] });
    // `run --rm` and `rm -v`: the anonymous volumes go too (named ones never).
    if (record.host.autoRemove || o.removeVolumes) await removeAnonymousVolumes(env, record);
  } else {
    await env.containers.write(record);
    await quickFs.mkdir(c.paths.state, { recursive: true, mode: 0o700 });
    await quickFs.writeFile(path.join(c.paths.state, 'cleaned'), '');
  }
  env.ctx.reporter.emit({ type: 'container-cleanup', id, removed: Boolean(record.host.autoRemove || o.remove) });
  if (netError) throw netError;
}

/** Wait until the container is no longer running (exit file written); false on timeout. Woken by the change (runtime/watch.ts). */
export async function waitExited(env: Env, id: string, timeoutMs = Infinity): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const dirs = containerDirs(env.containers.sp, env.containers.paths(id));
  for (;;) {
    const w = nextChange(dirs, Math.min(200, Math.max(1, deadline - Date.now())));
    try {
      const record = await env.containers.read(id);
      if (!record) return true;
      if (!isActive(env.containers.observe(record).observed)) return true;
      if (Date.now() >= deadline) return false;
      await w.changed;
    } finally {
      w.close();
    }
  }
}

export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  if (/^\d+$/.test(sig)) return Number(sig);
  const name = (
    sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`
  ) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined)
    throw new TsrunError('ERR_USAGE', `invalid signal: ${sig}`, {
      hint: 'use a name like SIGTERM, TERM or a number like 15',
    });
  return n;
}

function running(c: Container): boolean {
  return c.observed.status === 'running';
}

/**
 * `stop`: the stop signal (`-s`, else --stop-signal, else SIGTERM), then SIGKILL after `timeoutSec`
 * (else --stop-timeout, else 10 s); then clean up. A stopped container is not restarted by its policy.
 */
export async function stopContainer(env: Env, query: string, timeoutSec?: number, signal?: string): Promise<void> {
  const c = await env.containers.find(query);
  if (signal !== undefined) signalNumber(signal);
  if (running(c)) {
    const runtime = await runtimeFor(env, c.record.host.runtime);
    const sig = signal || c.record.config.stopSignal || 'SIGTERM';
    timeoutSec ??= c.record.config.stopTimeout ?? 10;
    let killed = false;
    await markStopped(c.paths);
    await runtime.kill(c.record.id, sig).catch(() => {});
    if (!(await waitExited(env, c.record.id, timeoutSec * 1000))) {
      await runtime.kill(c.record.id, 'SIGKILL').catch(() => {});
      await waitExited(env, c.record.id, 30_000);
      killed = true;
    }
    env.ctx.reporter.emit({ type: 'container-stop', id: c.record.id, signal: sig, timeoutSec, killed });
  }
  await cleanupContainer(env, c.record.id);
}

export async function killContainer(env: Env, query: string, signal = 'SIGKILL'): Promise<void> {
  const c = await env.containers.find(query);
  signalNumber(signal);
  if (!running(c)) {
    throw new TsrunError(
      'ERR_CONTAINER_STATE',
      `killing container ${query}: container ${c.record.id.slice(0, 12)} is not running`,
    );
  }
  const runtime = await runtimeFor(env, c.record.host.runtime);
  await markStopped(c.paths);
  await runtime.kill(c.record.id, signal);
}

export async function waitContainer(env: Env, query: string): Promise<number> {
  const c = await env.containers.find(query);
  await waitExited(env, c.record.id);
  const record = await env.containers.read(c.record.id);
  if (!record) return c.observed.exitCode;
  return env.containers.observe(record).observed.exitCode;
}

export async function removeContainer(env: Env, query: string, force = false, removeVolumes = false): Promise<string> {
  const c = await env.containers.find(query);
  if (isActive(c.observed)) {
    if (!force) {
      throw new TsrunError(
        'ERR_CONTAINER_STATE',
        `removing container ${query}: you cannot remove a running container ${c.record.id.slice(0, 12)}`,
        {
          hint: 'stop the container before removing it, or force-remove it with `tsrun rm -f`',
        },
      );
    }
    // Killed and cleaned up under the container's lock: the monitor's exit command then waits and
    // finds nothing to do, so what cleanup reports (a damaged record set aside, a plugin failure)
    // reaches the user of `rm -f`, not the monitor's log, and is done when `rm -f` returns.
    const runtime = await runtimeFor(env, c.record.host.runtime);
    await env.containers.lock(c.record.id, async () => {
      await markStopped(c.paths);
      await runtime.kill(c.record.id, 'SIGKILL').catch(() => {});
      if (!(await waitExited(env, c.record.id, 30_000))) {
        throw new TsrunError('ERR_RUNTIME', `removing container ${query}: it did not die within 30 s of SIGKILL`);
      }
      await cleanupLocked(env, c.record.id, { remove: true, removeVolumes });
    });
  } else await cleanupContainer(env, c.record.id, { remove: true, removeVolumes });
  env.ctx.reporter.emit({ type: 'container-remove', id: c.record.id, name: c.record.name, force });
  await (await import('./rmi.js')).freeLayersOfDeletedImages(env, [c.record.imageId]);
  return query;
}

export async function pruneContainers(env: Env): Promise<string[]> {
  const removed: string[] = [];
  const images: string[] = [];
  for (const c of await env.containers.list()) {
    if (isActive(c.observed)) continue;
    const done = await env.containers.unlessCreating(c.record.id, () =>
      cleanupContainer(env, c.record.id, { remove: true }),
    );
    if (!done) continue;
    removed.push(c.record.id);
    images.push(c.record.imageId);
  }
  await (await import('./rmi.js')).freeLayersOfDeletedImages(env, images);
  return removed;
}

/** Chain ids every container record needs (for garbage collection). */
export async function layersInUse(env: Env): Promise<string[]> {
  const out: string[] = [];
  for (const id of await env.containers.ids()) {
    const r = await env.containers.read(id);
    if (r) out.push(...r.layers);
  }
  return out;
}

export async function imagesInUse(env: Env): Promise<Map<string, ContainerRecord[]>> {
  const m = new Map<string, ContainerRecord[]>();
  for (const id of await env.containers.ids()) {
    const r = await env.containers.read(id);
    if (r) m.set(r.imageId, [...(m.get(r.imageId) ?? []), r]);
  }
  return m;
}

// ---- views -------------------------------------------------------------------------------------

export type { Attachment };
