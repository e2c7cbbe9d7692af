/**
 * `tsrun system reset`: remove everything this store holds, as `podman system reset` does —
 * every container (running ones are killed and cleaned up: network, mounts, runtime state), then
 * the whole store directory and this store's volatile state. Rootless, it runs inside the user's
 * namespace, so files that containers wrote as subordinate ids go too (the user cannot remove
 * those with `rm`).
 *
 * Contract: waits for the store's other users (pulls, builds, container creation hold the store
 * shared) and holds it exclusively while removing; what is mounted under the store is unmounted
 * first, so nothing is deleted through a live mount.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { pidAlive } from '../util/fs.js';
import { sleep } from '../util/concurrency.js';
import { cleanupContainer, removeContainer, type Env } from './containers.js';

export interface ResetReport {
  containers: string[];
}

/** Mount points at or below `top`, deepest first. */
function mountsUnder(top: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((t): t is string => t !== undefined && (t === top || t.startsWith(`${top}/`)))
    .sort((a, b) => b.length - a.length);
}

export async function systemReset(env: Env): Promise<ResetReport> {
  const containers: string[] = [];
  const monitors: number[] = [];
  for (const c of await env.containers.list()) {
    if (c.observed.monitorPid > 0) monitors.push(c.observed.monitorPid);
    await removeContainer(env, c.record.id, true).catch(async () => {
      // A record too damaged to remove normally: clean up what can be, the rest goes with the store.
      await cleanupContainer(env, c.record.id, { remove: true }).catch(() => {});
    });
    containers.push(c.record.id);
  }
  // A killed container's monitor still runs its `container cleanup`, which opens (so would
  // re-create) the store: wait for the monitors to finish first.
  for (let i = 0; i < 300 && monitors.some(pidAlive); i++) await sleep(50);
  const root = env.store.root;
  await env.store.withExclusiveLock(async () => {
    for (const m of mountsUnder(root)) {
      try {
        native().umount(m);
      } catch {
        /* gone already, or busy: removal below reports what is left */
      }
    }
    // Everything but the lock we hold; then the lock's directory goes with the root below.
    for (const name of await fs.readdir(root)) {
      if (name === 'locks') continue;
      await fs.rm(path.join(root, name), { recursive: true, force: true });
    }
  });
  await fs.rm(root, { recursive: true, force: true });
  await fs.rm(env.containers.sp.run, { recursive: true, force: true });
  return { containers };
}
