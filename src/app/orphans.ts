/**
 * What a crash (or a damaged record set aside, util/corrupt.ts) leaves of a container without its
 * record: a directory under containers/ with no container.json (a `run` killed between making
 * the name and writing the record, or a record that was set aside), a name link to such an id,
 * the runtime's state and the monitor's volatile directory, the network attachment, and
 * `writeFileAtomic` temp files of killed writers. `system prune` calls `pruneOrphans`.
 *
 * Contract: nothing a live process is still making is touched — an id whose creation lock is held
 * (records.ts `holdCreation`) is left for a later prune. A container still running without its
 * record (set aside) is stopped first: no other command can reach it.
 * Mounts under the directory are unmounted before it is removed (util/fs.ts `removeTempEntry`),
 * and the directory stays when one is busy.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorAlive } from '../runtime/records.js';
import { removeStaleDotTemps, removeTempEntry } from '../util/fs.js';
import { disconnect } from '../network/bridge.js';
import { disconnectSlirp } from '../network/slirp.js';
import { runtimeFor, type Env } from './containers.js';
import { sleep } from '../util/concurrency.js';

const ID_RE = /^[a-f0-9]{64}$/;

/** Does container `id`'s monitor still run (its record there or not)? */
export function monitorRuns(env: Env, id: string): boolean {
  try {
    const pid = Number(readFileSync(path.join(env.containers.paths(id).state, 'monitor.pid'), 'utf8'));
    return monitorAlive(pid, id);
  } catch {
    return false;
  }
}

async function stopOrphan(env: Env, id: string): Promise<void> {
  const runtime = await runtimeFor(env, 'runc').catch(() => undefined);
  await runtime?.delete(id, true).catch(() => {});
  for (let i = 0; i < 50 && monitorRuns(env, id); i++) await sleep(100);
}

/** Remove what containers without a record left; returns their ids. */
export async function pruneOrphans(env: Env): Promise<string[]> {
  const sp = env.containers.sp;
  const removed: string[] = [];
  const dirs = (await fs.readdir(sp.containers).catch(() => [] as string[])).filter((n) => ID_RE.test(n));
  const states = (await fs.readdir(sp.run).catch(() => [] as string[])).filter((n) => ID_RE.test(n));
  const links = await fs.readdir(sp.names).catch(() => [] as string[]);
  const linked = new Map<string, string[]>();
  for (const name of links) {
    const id = await fs.readlink(path.join(sp.names, name)).catch(() => '');
    linked.set(id, [...(linked.get(id) ?? []), name]);
  }
  const locked = (await fs.readdir(path.join(env.store.root, 'locks')).catch(() => [] as string[]))
    .map((n) => /^ctr-([a-f0-9]{64})(\.create)?\.lock$/.exec(n)?.[1])
    .filter((id): id is string => id !== undefined);
  const candidates = new Set([...dirs, ...states, ...locked, ...[...linked.keys()].filter((id) => ID_RE.test(id))]);
  for (const id of candidates) {
    const p = env.containers.paths(id);
    await removeStaleDotTemps(p.dir);
    if (await env.containers.read(id)) continue;
    // A container whose record was set aside cannot be stopped any other way: stop it here.
    if (monitorRuns(env, id) && !(await env.containers.unlessCreating(id, () => stopOrphan(env, id)))) continue;
    await env.containers.unlessCreating(id, () =>
      env.containers.lock(id, async () => {
        if (await env.containers.read(id)) return;
        const runtime = await runtimeFor(env, 'runc').catch(() => undefined);
        await runtime?.delete(id, true).catch(() => {});
        if (env.ctx.rootless) await disconnectSlirp(id, sp.run).catch(() => {});
        else if (env.ctx.uid === 0) await disconnect(id, env.ctx.env).catch(() => {});
        if (!(await removeTempEntry(p.dir))) return;
        await fs.rm(p.state, { recursive: true, force: true });
        for (const name of linked.get(id) ?? []) await fs.rm(path.join(sp.names, name), { force: true });
        await fs.rm(path.join(env.store.root, 'locks', `ctr-${id}.create.lock`), { force: true });
        await fs.rm(path.join(env.store.root, 'locks', `ctr-${id}.lock`), { force: true });
        if (dirs.includes(id) || linked.has(id)) removed.push(id);
      }),
    );
  }
  return removed;
}
