/**
 * `docker build`'s flags for the containers of RUN steps: `--add-host`, `--shm-size`, `--ulimit`
 * (Docker CLI reference, "docker build"; the formats are `docker run`'s). Parsed once at the
 * boundary into `StepLimits`; run-step.ts applies them to every RUN step. They do not enter the
 * cache key (Docker's builder leaves them out too): they change how a step runs, not what it is.
 */
import { TsrunError } from '../errors.js';
import { parseMemory, withRlimits } from '../spec/options.js';
import type { Rlimit, Spec } from '../spec/types.js';
import { RLIM_INFINITY } from '../spec/types.js';

export interface StepLimits {
  /** `--add-host NAME:IP`: extra /etc/hosts lines. */
  hosts: { name: string; ip: string }[];
  /** `--shm-size`: bytes of /dev/shm (default Docker's 64 MiB). */
  shmSize?: number;
  ulimits: Rlimit[];
}

/** Docker's --ulimit names (moby pkg/units ulimit.go) → the kernel's RLIMIT_*. */
const ULIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
};

function limitValue(v: string, spec: string): number | bigint {
  if (v === '-1' || v === 'unlimited') return RLIM_INFINITY;
  if (!/^\d+$/.test(v))
    throw new TsrunError('ERR_USAGE', `invalid ulimit "${spec}": "${v}" is not a number`, {
      hint: 'use --ulimit nofile=1024:2048 (soft:hard; -1 for unlimited)',
    });
  const n = BigInt(v);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** `--ulimit NAME=SOFT[:HARD]` (Docker's syntax). */
export function parseUlimit(spec: string): Rlimit {
  const m = /^([a-z]+)=([^:]+)(?::(.+))?$/.exec(spec);
  const type = m ? ULIMITS[m[1] as string] : undefined;
  if (!m || !type) {
    throw new TsrunError('ERR_USAGE', `invalid ulimit "${spec}"`, {
      hint: `use NAME=SOFT[:HARD], NAME one of ${Object.keys(ULIMITS).join(', ')}`,
    });
  }
  const soft = limitValue(m[2] as string, spec);
  const hard = m[3] !== undefined ? limitValue(m[3], spec) : soft;
  if (BigInt(soft) > BigInt(hard))
    throw new TsrunError(
      'ERR_USAGE',
      `invalid ulimit "${spec}": ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`,
    );
  return { type, soft, hard };
}

/** `--add-host NAME:IP` (or Docker's newer `NAME=IP`); IPv6 addresses may be bracketed. */
export function parseAddHost(spec: string): { name: string; ip: string } {
  const i = spec.includes('=') ? spec.indexOf('=') : spec.indexOf(':');
  const name = i > 0 ? spec.slice(0, i) : '';
  const ip = i > 0 ? spec.slice(i + 1).replace(/^\[(.*)\]$/, '$1') : '';
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  const validIp = v4 ? v4.slice(1).every((o) => Number(o) <= 255) : /^[0-9a-fA-F:.]+$/.test(ip) && ip.includes(':');
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name) || !validIp) {
    const hint =
      ip === 'host-gateway'
        ? 'host-gateway is not supported by tsrun build: give the address'
        : 'use --add-host NAME:IP, e.g. --add-host db:10.0.0.5';
    throw new TsrunError('ERR_USAGE', `invalid argument "${spec}" for "--add-host" flag: invalid IP address`, { hint });
  }
  return { name, ip };
}

export function parseStepLimits(o: {
  addHosts?: readonly string[];
  shmSize?: string;
  ulimits?: readonly string[];
}): StepLimits {
  let shmSize: number | undefined;
  if (o.shmSize !== undefined) {
    shmSize = parseMemory(o.shmSize);
    if (shmSize <= 0) throw new TsrunError('ERR_USAGE', `invalid --shm-size "${o.shmSize}": it must be greater than 0`);
  }
  return {
    hosts: (o.addHosts ?? []).map(parseAddHost),
    ulimits: (o.ulimits ?? []).map(parseUlimit),
    ...(shmSize !== undefined ? { shmSize } : {}),
  };
}

/** The lines `--add-host` appends to a RUN step's /etc/hosts. */
export function extraHostsLines(l: StepLimits | undefined): string {
  return (l?.hosts ?? []).map((h) => `${h.ip}\t${h.name}\n`).join('');
}

/** The RUN step's spec with the rlimits and the /dev/shm size. */
export function withStepLimits(l: StepLimits | undefined): (spec: Spec) => void {
  return (spec) => {
    if (!l) return;
    if (l.ulimits.length > 0) withRlimits([...(spec.process.rlimits ?? []), ...l.ulimits])(spec);
    if (l.shmSize !== undefined) {
      const size = `size=${Math.ceil(l.shmSize / 1024)}k`;
      spec.mounts = spec.mounts.map((m) =>
        m.destination === '/dev/shm'
          ? { ...m, options: [...(m.options ?? []).filter((x) => !x.startsWith('size=')), size] }
          : m,
      );
    }
  };
}
