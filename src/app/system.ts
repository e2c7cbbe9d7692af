/**
 * `tsrun system prune`: remove stopped containers, dangling (with `all`: unused) images and the
 * build cache, and repair what a crash left behind.
 *
 * After a killed monitor, a CLI killed mid-start or a power cut, a container can be left with a
 * mount, a runtime record, an orphaned process or a network attachment (namespace, veth, lease,
 * port rules). Cleaning every stopped container (containers.ts `cleanupContainer`) undoes the
 * first three; `sweep` then tears down every network attachment on the host whose container, in
 * whichever store owns it, is no longer running (rootless: each slirp4netns whose container is
 * gone). As Docker's, it also removes dangling images and empties the build cache.
 *
 * Contract: prune never touches what is in use, whoever uses it. Each thing is checked under
 * the lock its user holds, or by its user's pid:
 * - a container's network: under that container's lock (held by `start` from the network's
 *   creation until the monitor runs), so a starting container is never torn down;
 * - a build step's network: alive while the build's process is (its pid is in the record);
 * - layers, blobs and RUN --mount=type=cache directories: only with the store held exclusively,
 *   tried without waiting: while a pull, build or container creation holds the store, they are
 *   left for a later prune (never queued behind another job's build);
 * - temp entries (`tmp/<pid>-…`): only those whose pid is gone.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { storePaths } from '../runtime/paths.js';
import { pidAlive } from '../util/fs.js';
import { Containers, isActive } from '../runtime/records.js';
import { attachments, sweep, type NetworkAttachment } from '../network/bridge.js';
import { disconnectSlirp, slirpAttachments, slirpOwner } from '../network/slirp.js';
import { allEndpoints, detach } from '../network/user-attach.js';
import { sweepPortRules } from '../network/published.js';
import { repairRules } from '../network/user-networks.js';
import { pruneContainers, type Env } from './containers.js';
import { pruneImages, type RemoveLine } from './rmi.js';
import { pruneOrphans } from './orphans.js';

export interface PruneReport {
  containers: string[];
  /** Images untagged and deleted, and the layers that went with them (Docker's "Deleted Images"). */
  images: RemoveLine[];
  /** Build cache entries removed. */
  buildCache: number;
  /** Attachments torn down because their container was gone. */
  networks: string[];
  /** Bytes of layers and blobs freed. */
  reclaimed: number;
  /** Something was in use and left for a later prune (the store was busy). */
  busy: boolean;
}

function containersOf(env: Env, store: string): Containers {
  return store === env.store.root
    ? env.containers
    : new Containers(storePaths(store, env.ctx.uid, env.ctx.env), path.join(store, 'locks'));
}

/** Run `fn` under container `id`'s lock in `store`; a store that is gone has no lock to take. */
async function underContainerLock(env: Env, store: string, id: string, fn: () => Promise<void>): Promise<void> {
  const locks = path.join(store, 'locks');
  if (!(await fs.stat(locks).catch(() => undefined))) return fn();
  return containersOf(env, store).lock(id, fn);
}

async function containerRunning(containers: Containers, id: string): Promise<boolean> {
  const record = await containers.read(id).catch(() => undefined);
  if (!record) return false;
  return isActive(containers.observe(record).observed);
}

async function attachmentAlive(env: Env, a: NetworkAttachment): Promise<boolean> {
  if (a.pid !== undefined) return pidAlive(a.pid);
  return containerRunning(containersOf(env, a.store), a.id);
}

/** User networks' endpoints (interfaces, leases, DNS names, namespace) whose container no longer runs. */
async function sweepUserEndpoints(env: Env): Promise<string[]> {
  const removed: string[] = [];
  for (const r of await allEndpoints()) {
    await underContainerLock(env, r.store, r.id, async () => {
      if (await containerRunning(containersOf(env, r.store), r.id)) return;
      await detach(r.id, env.ctx.env);
      removed.push(r.id);
    });
  }
  return removed;
}

/** Rootless: slirp4netns processes and namespaces whose container (or build) is no longer running. */
async function sweepSlirp(env: Env): Promise<string[]> {
  const removed: string[] = [];
  const run = env.containers.sp.run;
  for (const id of await slirpAttachments(run)) {
    const owner = await slirpOwner(run, id);
    if (owner !== undefined) {
      if (pidAlive(owner)) continue;
      await disconnectSlirp(id, run);
      removed.push(id);
      continue;
    }
    await underContainerLock(env, env.store.root, id, async () => {
      if (await containerRunning(env.containers, id)) return;
      await disconnectSlirp(id, run);
      removed.push(id);
    });
  }
  return removed;
}

/** Each stage of a prune, as a debug event (--debug). */
function stage(env: Env, message: string): void {
  env.ctx.reporter.emit({ type: 'debug', scope: 'prune', message });
}

export async function systemPrune(env: Env, o: { all?: boolean } = {}): Promise<PruneReport> {
  // What a killed `system service --exec` made goes first (running containers too: no one owns them).
  const fromSessions = await (await import('./service-sessions.js')).reapDeadSessions(env);
  const containers = [...fromSessions, ...(await pruneContainers(env))];
  stage(env, `removed ${containers.length} containers`);
  const orphans = await pruneOrphans(env);
  stage(env, `removed ${orphans.length} containers without a record`);
  const networks =
    env.ctx.uid === 0
      ? [
          ...(await sweep(
            (a) => attachmentAlive(env, a),
            env.ctx.env,
            (a, fn) => (a.pid !== undefined ? fn() : underContainerLock(env, a.store, a.id, fn)),
          )),
          ...(await sweepUserEndpoints(env)),
        ]
      : await sweepSlirp(env);
  stage(env, `tore down ${networks.length} network attachments`);
  if (env.ctx.uid === 0) {
    // Published ports' chains whose record is gone (a record lost after its rules were written);
    // a namespace still there (a running container whose record was damaged) keeps them.
    const ports = await sweepPortRules(
      async () => [
        ...(await attachments()).map((a) => a.id),
        ...(await allEndpoints()).map((r) => r.id),
        ...(await fs.readdir('/run/netns').catch(() => [] as string[]))
          .filter((n) => n.startsWith('tsrun-'))
          .map((n) => n.slice('tsrun-'.length)),
      ],
      env.ctx.env,
    );
    stage(env, `removed the port rules of ${ports.length} containers without a network record`);
  }
  // The networks' NAT and isolation rules again, in case something flushed iptables meanwhile.
  if (env.ctx.uid === 0) await repairRules(env.ctx.env);
  const images = await pruneImages(env, { all: o.all });
  stage(env, `removed ${images.lines.length} images and layers (${images.reclaimed} bytes)`);
  const { pruneBuildCache } = await import('./build.js');
  // Cache mounts may be in a running build's RUN: only when no build holds the store.
  const cache = await env.store.ifUnused(() => pruneBuildCache(env.store));
  const buildCache = cache.held ? cache.value : await pruneBuildCache(env.store, { keepMounts: true });
  stage(env, `removed ${buildCache} build cache entries`);
  await env.store.cleanTemp();
  return {
    containers,
    networks,
    images: images.lines,
    buildCache,
    reclaimed: images.reclaimed,
    busy: images.busy || !cache.held,
  };
}
