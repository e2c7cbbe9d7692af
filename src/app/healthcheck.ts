/**
 * Health checks at the use-case level: what a start hands the monitor (the probe's process,
 * built as `exec` builds one: the container's own process with the probe's argv), the views
 * (inspect's State.Health, ps's status and filter), and `tsrun healthcheck run` (podman's
 * command): one probe now, run by the container's monitor (frame 'h' on its attach socket), so
 * the monitor stays the only writer of the health state.
 *
 * Contract of `runHealthcheck`: resolves with the probe's exit code and the container's health
 * status after it; a missing or stopped container, or one without a check, is an error (exit 125,
 * as podman's) and runs nothing.
 */
import { promises as fs } from 'node:fs';
import { TsrunError } from '../errors.js';
import { serializeSpec } from '../spec/defaults.js';
import type { Spec } from '../spec/types.js';
import type { Container } from '../runtime/records.js';
import { frameDecoder } from '../runtime/monitor.js';
import { monitorTimings, probeArgv, readHealth, type Health, type MonitorHealth } from '../runtime/health.js';
import { connectUnix } from '../util/unix-socket.js';
import type { AppContext } from './context.js';
import { openEnv } from './env.js';
import { parseSpec } from '../spec/defaults.js';

/** For startContainer: the monitor's health arguments, or undefined (no check: no cost). */
export async function healthForStart(c: Pick<Container, 'record' | 'paths'>): Promise<MonitorHealth | undefined> {
  const h = c.record.config.healthcheck;
  const argv = probeArgv(h, c.record.config.shell);
  if (!h || !argv) return undefined;
  const spec = parseSpec(await fs.readFile(c.paths.config, 'utf8'));
  const proc = { ...spec.process, args: argv, terminal: false } as Spec['process'] & { consoleSize?: unknown };
  delete proc.consoleSize;
  return { process: serializeSpec(proc as unknown as Spec), ...monitorTimings(h) };
}

/** inspect's State.Health (undefined: the field is left out, as Docker's nil). */
export function healthOf(c: Container): Health | undefined {
  const h = readHealth(
    c.record.config.healthcheck,
    c.record.config.shell,
    c.observed.status,
    c.observed.startedAt,
    c.paths,
  );
  if (!h) return undefined;
  // Docker stops the probes of a paused container, which makes it unhealthy (CloseMonitorChannel).
  return { Status: c.observed.paused ? 'unhealthy' : h.Status, FailingStreak: h.FailingStreak, Log: h.Log };
}

/** ps's health: starting, healthy, unhealthy or none (Docker's container.Summary Health). */
export function healthStatus(c: Container): string {
  return healthOf(c)?.Status ?? 'none';
}

/** When the health status last changed while running (for `tsrun events`), and to what. */
export function healthChange(c: Container): { status: string; at: string } | undefined {
  if (c.observed.status !== 'running') return undefined;
  const h = readHealth(c.record.config.healthcheck, c.record.config.shell, 'running', c.observed.startedAt, c.paths);
  return h?.changedAt && h.Status !== 'starting' ? { status: h.Status, at: h.changedAt } : undefined;
}

export interface ProbeResult {
  exitCode: number;
  status: string;
}

/** `tsrun healthcheck run CONTAINER`. */
export async function runHealthcheck(ctx: AppContext, query: string): Promise<ProbeResult> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  const fail = (msg: string, hint?: string) =>
    new TsrunError('ERR_CONTAINER_STATE', msg, { hint, detail: { exitCode: 125 } });
  const h = c.record.config.healthcheck;
  if (!probeArgv(h, c.record.config.shell)) {
    throw fail(
      `container ${query} has no defined healthcheck`,
      'give it one with --health-cmd, or HEALTHCHECK in its image',
    );
  }
  if (c.observed.status !== 'running') {
    throw fail(`Container ${c.record.id.slice(0, 12)} is not running`, `start it first: tsrun start ${query}`);
  }
  const { timeoutMs } = monitorTimings(h ?? {});
  return askMonitor(c.paths.attachSocket, timeoutMs + 10_000);
}

/** Send frame 'h' and wait for the monitor's 'h' answer (other frames are output: dropped). */
function askMonitor(socketPath: string, limitMs: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const sock = connectUnix(socketPath);
    let done = false;
    const finish = (err?: Error, r?: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(r as ProbeResult);
    };
    const timer = setTimeout(
      () =>
        finish(new TsrunError('ERR_RUNTIME', `healthcheck: the container's monitor did not answer in ${limitMs} ms`)),
      limitMs,
    );
    sock.on('connect', () => sock.write(Buffer.from([0x68, 0, 0, 0, 0])));
    sock.on(
      'data',
      frameDecoder((type, payload) => {
        if (type === 'x')
          return finish(
            new TsrunError('ERR_CONTAINER_STATE', 'healthcheck: the container exited', { detail: { exitCode: 125 } }),
          );
        if (type !== 'h') return;
        if (payload.length < 4)
          return finish(
            new TsrunError('ERR_CONTAINER_STATE', 'healthcheck: the container has no health check running', {
              detail: { exitCode: 125 },
            }),
          );
        finish(undefined, { exitCode: payload.readInt32BE(0), status: payload.subarray(4).toString() });
      }),
    );
    sock.on('error', (e) =>
      finish(
        new TsrunError('ERR_RUNTIME', `healthcheck: reaching the container's monitor: ${e.message}`, { cause: e }),
      ),
    );
    sock.on('close', () => finish(new TsrunError('ERR_RUNTIME', "healthcheck: the container's monitor went away")));
  });
}
