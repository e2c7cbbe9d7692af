/**
 * Health checks: the configuration (Docker's container.HealthConfig, durations in nanoseconds)
 * from the image's HEALTHCHECK and the `--health-*` flags, merged as Docker's daemon merges them,
 * and the state the monitor keeps (native-helpers/src/health.c writes STATE/health.json by
 * rename after every probe) read back as Docker's State.Health.
 *
 * Docker's rules followed here (docker/cli opts.go, moby daemon/health.go, daemon/create.go):
 * - Test: ["NONE"] disables the image's check; ["CMD", argv...] runs argv; ["CMD-SHELL", cmd]
 *   runs it with the container's shell (Config.Shell, default /bin/sh -c); [] inherits.
 * - A flag left at zero takes the image's value; zero everywhere means the defaults: interval 30s,
 *   timeout 30s, start period 0, start interval 5s (the interval while starting within the start
 *   period, Docker 25), retries 3.
 * - A container without a probe has no State.Health (ps: no suffix, `health=none`); one that is
 *   not running keeps its last Log with Status "unhealthy" (moby: CloseMonitorChannel), until
 *   it starts again ("starting"). A created container that never ran has none yet.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { ContainerPaths } from './paths.js';

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface HealthFlags {
  cmd?: string;
  interval?: string;
  timeout?: string;
  retries?: string;
  startPeriod?: string;
  startInterval?: string;
  none?: boolean;
}

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface Health {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export const HEALTH_DEFAULTS = { interval: 30e9, timeout: 30e9, startPeriod: 0, startInterval: 5e9, retries: 3 };
/** Docker's container.MinimumDuration. */
const MINIMUM_NS = 1e6;

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, with its error text (pflag prefixes the flag). */
export function parseGoDuration(s: string): number {
  const bad = (why: string) => new Error(`time: ${why} "${s}"`);
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw bad('invalid duration');
  let total = 0;
  while (rest) {
    const m = /^(\d*(?:\.\d*)?)([a-zµμ]*)/.exec(rest);
    const num = m?.[1] ?? '';
    const unit = m?.[2] ?? '';
    if (!num || num === '.') throw bad('invalid duration');
    if (!unit) throw bad('missing unit in duration');
    const mult = UNIT_NS[unit];
    if (mult === undefined) throw new Error(`time: unknown unit "${unit}" in duration "${s}"`);
    total += Number(num) * mult;
    rest = rest.slice((m?.[0] ?? '').length);
  }
  return sign * Math.round(total);
}

function flagDuration(v: string | undefined, flag: string): number {
  if (v === undefined) return 0;
  try {
    return parseGoDuration(v);
  } catch (e) {
    throw new TsrunError('ERR_USAGE', `invalid argument "${v}" for "${flag}" flag: ${(e as Error).message}`);
  }
}

/** The `--health-*` / `--no-healthcheck` flags as Docker's CLI and daemon check them. */
export function healthFromFlags(f: HealthFlags): HealthConfig | undefined {
  const interval = flagDuration(f.interval, '--health-interval');
  const timeout = flagDuration(f.timeout, '--health-timeout');
  const startPeriod = flagDuration(f.startPeriod, '--health-start-period');
  const startInterval = flagDuration(f.startInterval, '--health-start-interval');
  let retries = 0;
  if (f.retries !== undefined) {
    if (!/^[+-]?\d+$/.test(f.retries.trim()))
      throw new TsrunError(
        'ERR_USAGE',
        `invalid argument "${f.retries}" for "--health-retries" flag: strconv.ParseInt: parsing "${f.retries}": invalid syntax`,
      );
    retries = Number(f.retries);
  }
  const cmd = f.cmd ?? '';
  const any =
    cmd !== '' || interval !== 0 || timeout !== 0 || startPeriod !== 0 || startInterval !== 0 || retries !== 0;
  if (f.none) {
    if (any) throw new TsrunError('ERR_USAGE', '--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!any) return undefined;
  if (interval < 0) throw new TsrunError('ERR_USAGE', '--health-interval cannot be negative');
  if (timeout < 0) throw new TsrunError('ERR_USAGE', '--health-timeout cannot be negative');
  if (retries < 0) throw new TsrunError('ERR_USAGE', '--health-retries cannot be negative');
  if (startPeriod < 0) throw new TsrunError('ERR_USAGE', '--health-start-period cannot be negative');
  if (startInterval < 0) throw new TsrunError('ERR_USAGE', '--health-start-interval cannot be negative');
  // The daemon's validateHealthCheck.
  if (interval !== 0 && interval < MINIMUM_NS)
    throw new TsrunError('ERR_USAGE', 'Interval in Healthcheck cannot be less than 1ms');
  if (timeout !== 0 && timeout < MINIMUM_NS)
    throw new TsrunError('ERR_USAGE', 'Timeout in Healthcheck cannot be less than 1ms');
  if (startPeriod !== 0 && startPeriod < MINIMUM_NS)
    throw new TsrunError('ERR_USAGE', 'StartPeriod in Healthcheck cannot be less than 1ms');
  if (startInterval !== 0 && startInterval < MINIMUM_NS)
    throw new TsrunError('ERR_USAGE', 'StartInterval in Healthcheck cannot be less than 1ms');
  const h: HealthConfig = {};
  if (cmd !== '') h.Test = ['CMD-SHELL', cmd];
  if (interval) h.Interval = interval;
  if (timeout) h.Timeout = timeout;
  if (startPeriod) h.StartPeriod = startPeriod;
  if (startInterval) h.StartInterval = startInterval;
  if (retries) h.Retries = retries;
  return h;
}

/** The image config's Healthcheck, if it is one (untrusted JSON: only the known fields, typed). */
export function imageHealth(v: unknown): HealthConfig | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const h: HealthConfig = {};
  if (Array.isArray(o.Test) && o.Test.every((t) => typeof t === 'string')) h.Test = o.Test as string[];
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    const n = o[k];
    if (typeof n === 'number' && Number.isFinite(n) && n > 0) h[k] = n;
  }
  return h;
}

/** moby daemon/create.go merge(): the container's values, the image's where they are unset. */
export function mergeHealth(user: HealthConfig | undefined, image: HealthConfig | undefined): HealthConfig | undefined {
  if (!user) return image;
  if (!image) return user;
  const h: HealthConfig = { ...user };
  if (!h.Test || h.Test.length === 0) h.Test = image.Test;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (!h[k] && image[k]) h[k] = image[k];
  }
  if (!h.Test) delete h.Test;
  return h;
}

/** The probe's argv, or undefined when there is no check (none, NONE, or an unknown type). */
export function probeArgv(h: HealthConfig | undefined, shell?: string[]): string[] | undefined {
  const t = h?.Test;
  if (!t || t.length === 0) return undefined;
  if (t[0] === 'CMD' && t.length > 1) return t.slice(1);
  if (t[0] === 'CMD-SHELL' && t.length > 1)
    return [...(shell && shell.length > 0 ? shell : ['/bin/sh', '-c']), t.slice(1).join(' ')];
  return undefined;
}

/** What the monitor is given (milliseconds, rounded up: a 1.5ms timeout is not 1ms). */
export interface MonitorHealth {
  /** The runtime-spec process of the probe, serialized. */
  process: string;
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

export function monitorTimings(h: HealthConfig): Omit<MonitorHealth, 'process'> {
  const ms = (ns: number | undefined, dflt: number) => Math.ceil((ns || dflt) / 1e6);
  return {
    intervalMs: ms(h.Interval, HEALTH_DEFAULTS.interval),
    timeoutMs: ms(h.Timeout, HEALTH_DEFAULTS.timeout),
    startPeriodMs: ms(h.StartPeriod, HEALTH_DEFAULTS.startPeriod),
    startIntervalMs: ms(h.StartInterval, HEALTH_DEFAULTS.startInterval),
    retries: h.Retries || HEALTH_DEFAULTS.retries,
  };
}

/** The arguments tsrun-monitor takes for it; the process file is written beside its state. */
export function monitorHealthArgs(h: MonitorHealth, processFile: string): string[] {
  return [
    '--health',
    processFile,
    '--health-interval',
    String(h.intervalMs),
    '--health-timeout',
    String(h.timeoutMs),
    '--health-start-period',
    String(h.startPeriodMs),
    '--health-start-interval',
    String(h.startIntervalMs),
    '--health-retries',
    String(h.retries),
  ];
}

export const HEALTH_PROCESS_FILE = 'health-process.json';

interface StateFile extends Health {
  ChangedAt?: string;
}

function readState(p: ContainerPaths): StateFile | undefined {
  try {
    const v = JSON.parse(readFileSync(path.join(p.state, 'health.json'), 'utf8')) as StateFile;
    return typeof v.Status === 'string' && Array.isArray(v.Log) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Docker's State.Health for a container with this check, in this state (see the module comment),
 * and when its status last changed (for events).
 */
export function readHealth(
  h: HealthConfig | undefined,
  shell: string[] | undefined,
  status: 'created' | 'running' | 'exited',
  startedAt: string | undefined,
  p: ContainerPaths,
): (Health & { changedAt?: string }) | undefined {
  if (!probeArgv(h, shell) || (status === 'created' && !startedAt)) return undefined;
  const s = readState(p);
  const health: Health = {
    Status: s?.Status ?? 'starting',
    FailingStreak: s?.FailingStreak ?? 0,
    Log: s?.Log ?? [],
  };
  if (status !== 'running') health.Status = 'unhealthy';
  return { ...health, ...(s?.ChangedAt && status === 'running' ? { changedAt: s.ChangedAt } : {}) };
}

/** The record's fields for a container's check (none: nothing, as for a container without one). */
export function healthRecord(
  h: HealthConfig | undefined,
  shell: string[] | null | undefined,
): { healthcheck?: HealthConfig; shell?: string[] } {
  if (!h) return {};
  return { healthcheck: h, ...(shell && shell.length > 0 ? { shell } : {}) };
}
