/**
 * `tsrun system prune`: remove stopped containers and repair what a crash left behind.
 *
 * After a killed monitor, a CLI killed mid-start or a power cut, a container can be left with a
 * mount, a runtime record, an orphaned process or a network attachment (namespace, veth, lease,
 * port rules). Cleaning every stopped container (containers.ts `cleanupContainer`) undoes the
 * first three; `sweep` then tears down every network attachment on the host whose container, in
 * whichever store owns it, is no longer running (rootless: each slirp4netns whose container is
 * gone). As Docker's, it also empties the build cache.
 */
import path from 'node:path';
import { storePaths } from '../runtime/paths.js';
import { pidAlive } from '../store/fsutil.js';
import { Containers, isActive } from '../runtime/records.js';
import { sweep, type NetworkAttachment } from '../network/bridge.js';
import { disconnectSlirp, slirpAttachments } from '../network/slirp.js';
import { pruneContainers, type Env } from './containers.js';

export interface PruneReport {
  containers: string[];
  /** Build cache entries removed. */
  buildCache: number;
  /** Attachments torn down because their container was gone. */
  networks: string[];
}

async function attachmentAlive(env: Env, a: NetworkAttachment): Promise<boolean> {
  if (a.pid !== undefined) return pidAlive(a.pid);
  const containers = a.store === env.store.root
    ? env.containers
    : new Containers(storePaths(a.store, env.ctx.uid, env.ctx.env), path.join(a.store, 'locks'));
  const record = await containers.read(a.id).catch(() => undefined);
  if (!record) return false;
  return isActive(containers.observe(record).observed);
}

/** Rootless: slirp4netns processes and namespaces whose container is no longer running. */
async function sweepSlirp(env: Env): Promise<string[]> {
  const removed: string[] = [];
  for (const id of await slirpAttachments(env.containers.sp.run)) {
    const record = await env.containers.read(id).catch(() => undefined);
    if (record && isActive(env.containers.observe(record).observed)) continue;
    await disconnectSlirp(id, env.containers.sp.run);
    removed.push(id);
  }
  return removed;
}

export async function systemPrune(env: Env): Promise<PruneReport> {
  const containers = await pruneContainers(env);
  const networks = env.ctx.uid === 0 ? await sweep((a) => attachmentAlive(env, a), env.ctx.env) : await sweepSlirp(env);
  const { pruneBuildCache } = await import('./build.js');
  const buildCache = await pruneBuildCache(env.store);
  return { containers, networks, buildCache };
}
