/**
 * Sessions of `tsrun system service --exec`: everything created through such a service's socket
 * carries the label `io.tsrun.service.session=<id>`, and the session is recorded as
 * `<root>/service-sessions/<id>.json` with the service's pid and that process's start time (so a
 * reused pid is not taken for the service). When the command ends, the service removes what the
 * session made (containers, then volumes and networks); when the service itself died (SIGKILL, a crash, a reboot), its session is a
 * leftover: the next service start and `tsrun system prune` remove its containers, then its record.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { removeContainer, type Env } from './containers.js';

export const SESSION_LABEL = 'io.tsrun.service.session';

interface SessionRecord {
  pid: number;
  /** /proc/<pid>/stat's starttime (clock ticks after boot). */
  start: string;
  socket: string;
}

const dirOf = (env: Env) => path.join(env.store.root, 'service-sessions');

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Record a new session owned by this process; returns its id. */
export async function beginSession(env: Env, socket: string): Promise<string> {
  const id = randomBytes(8).toString('hex');
  await fs.mkdir(dirOf(env), { recursive: true, mode: 0o700 });
  const rec: SessionRecord = { pid: process.pid, start: startTime(process.pid) ?? '', socket };
  await fs.writeFile(path.join(dirOf(env), `${id}.json`), JSON.stringify(rec), { mode: 0o600 });
  return id;
}

/** Remove every container of the session (running ones killed), then its record. Returns their ids. */
export async function endSession(env: Env, id: string): Promise<string[]> {
  const removed: string[] = [];
  for (const c of await env.containers.list()) {
    if (c.record.config.labels[SESSION_LABEL] !== id) continue;
    try {
      await removeContainer(env, c.record.id, true, true);
      removed.push(c.record.id);
    } catch {
      /* removed meanwhile (an --rm container), or busy: the next prune tries again */
    }
  }
  // Then its volumes (now unused: their containers are gone).
  const { listVolumes, removeVolumes } = await import('./volumes.js');
  const volumes = await listVolumes(env, [`label=${SESSION_LABEL}=${id}`]).catch(() => []);
  if (volumes.length > 0)
    await removeVolumes(
      env,
      volumes.map((v) => v.Name),
      true,
    ).catch(() => {});
  // And its networks (their containers are gone; one still in use by another stays).
  const { networkPrune } = await import('./networks.js');
  await networkPrune(env.ctx, [`label=${SESSION_LABEL}=${id}`]).catch(() => {});
  await fs.rm(path.join(dirOf(env), `${id}.json`), { force: true });
  return removed;
}

/** End the sessions whose service is gone. Returns the containers removed. */
export async function reapDeadSessions(env: Env): Promise<string[]> {
  const names = await fs.readdir(dirOf(env)).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    let rec: SessionRecord | undefined;
    try {
      rec = JSON.parse(await fs.readFile(path.join(dirOf(env), n), 'utf8')) as SessionRecord;
    } catch {
      rec = undefined;
    }
    if (rec && startTime(rec.pid) === rec.start && rec.start !== '') continue;
    removed.push(...(await endSession(env, n.slice(0, -'.json'.length))));
  }
  return removed;
}
