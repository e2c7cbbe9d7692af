/**
 * `--restart`, as far as a daemonless runtime can honour it. Docker's daemon restarts containers
 * when they exit and when the daemon itself starts (after a reboot). tsrun has no daemon: the
 * one process that sees a container exit is its monitor, which runs `tsrun container cleanup`,
 * and cleanup (here) starts the container again when the policy says so. What works:
 *
 *   no              never restarted (the default)
 *   on-failure[:N]  restarted after a non-zero exit, at most N times (no N: without limit)
 *   always          restarted after any exit
 *   unless-stopped  the same as always (they differ only at a daemon's start, which tsrun has not)
 *
 * Never restarted: a container stopped or killed with `tsrun stop`/`kill`/`rm -f` (Docker's
 * "manually stopped", kept until the next manual start), one that could not be started at all,
 * and nothing is restarted after a reboot (no daemon runs at boot; a systemd unit per container
 * is the way, as with podman). Between restarts Docker waits 100 ms, doubling each time; so does
 * tsrun, up to 10 s, and `ps` shows the container Exited meanwhile (Docker: Restarting).
 * RestartCount counts these automatic restarts only; a manual `restart` or `start` leaves it.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { isActive } from '../runtime/records.js';
import type { ContainerPaths } from '../runtime/paths.js';
import { sleep } from '../util/concurrency.js';
import type { Env } from './containers.js';

export interface RestartPolicy {
  Name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** on-failure only; 0: no limit. */
  MaximumRetryCount: number;
}

/** docker/cli ParseRestartPolicy: no | always | unless-stopped | on-failure[:N]. */
export function parseRestartPolicy(s: string | undefined): RestartPolicy {
  if (s === undefined || s === '' || s === 'no') return { Name: 'no', MaximumRetryCount: 0 };
  const [name, count, extra] = s.split(':');
  if (extra !== undefined) throw new TsrunError('ERR_USAGE', `invalid restart policy format: ${s}`);
  if (name === 'on-failure') {
    if (count === undefined) return { Name: 'on-failure', MaximumRetryCount: 0 };
    if (!/^\d+$/.test(count))
      throw new TsrunError(
        'ERR_USAGE',
        `invalid restart policy format: maximum retry count must be an integer: ${count}`,
      );
    return { Name: 'on-failure', MaximumRetryCount: Number(count) };
  }
  if (name === 'always' || name === 'unless-stopped' || name === 'no') {
    if (count !== undefined)
      throw new TsrunError(
        'ERR_USAGE',
        `invalid restart policy format: maximum retry count can only be used with 'on-failure'`,
      );
    return { Name: name, MaximumRetryCount: 0 };
  }
  throw new TsrunError('ERR_USAGE', `invalid restart policy: ${s}`, {
    hint: 'use no, always, unless-stopped or on-failure[:max-retries]',
  });
}

/** Should a container that exited with `exitCode`, restarted `count` times already, go again? */
export function shouldRestart(p: RestartPolicy | undefined, exitCode: number, count: number): boolean {
  if (!p || p.Name === 'no') return false;
  if (p.Name === 'on-failure') return exitCode !== 0 && (p.MaximumRetryCount === 0 || count < p.MaximumRetryCount);
  return true;
}

/** Docker's backoff: 100 ms, doubling (capped here at 10 s). */
export function restartDelay(count: number): number {
  return Math.min(100 * 2 ** Math.min(count, 10), 10_000);
}

const STOPPED = 'stopped-by-user';

/** `stop`/`kill`/`rm -f` say so before the signal: the coming exit is not a failure to act on. */
export async function markStopped(p: ContainerPaths): Promise<void> {
  await fs.mkdir(p.state, { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(p.state, STOPPED), '');
}

function stoppedByUser(p: ContainerPaths): boolean {
  return existsSync(path.join(p.state, STOPPED));
}

/** After cleanup: start the container again if its policy says so. Errors are the caller's to report. */
export async function restartIfPolicy(env: Env, id: string): Promise<void> {
  const first = await env.containers.read(id);
  const policy = first?.host.restartPolicy;
  if (!first || !policy || policy.Name === 'no') return;
  const c0 = env.containers.observe(first);
  if (
    isActive(c0.observed) ||
    stoppedByUser(c0.paths) ||
    !shouldRestart(policy, c0.observed.exitCode, first.restartCount)
  )
    return;
  await sleep(restartDelay(first.restartCount));
  const { startContainer } = await import('./containers.js');
  const go = await env.containers.lock(id, async () => {
    const record = await env.containers.read(id);
    if (!record) return undefined;
    const c = env.containers.observe(record);
    // Someone started, stopped or restarted it meanwhile: their decision wins.
    if (isActive(c.observed) || stoppedByUser(c.paths) || record.restartCount !== first.restartCount) return undefined;
    record.restartCount += 1;
    await env.containers.write(record);
    return c;
  });
  if (!go) return;
  // The monitor runs cleanup from the state directory that this start deletes and makes again;
  // mounting the root chdirs and back (snapshot/overlay.ts), which would fail in between. This
  // is the last thing the process does (exit command or attached run), so its cwd is free.
  process.chdir('/');
  await startContainer(env, go).catch((err: unknown) => {
    if (!(err instanceof TsrunError && err.code === 'ERR_CONTAINER_STATE')) throw err;
  });
}
