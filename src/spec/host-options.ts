/**
 * Option functions for the host-side flags of `run`/`create`: namespaces shared with the host or
 * another container (`--ipc`, `--pid`, `--uts`, `--userns`), `--device`, `--ulimit`, `--sysctl`, `--shm-size`, `--group-add`, `--oom-score-adj`, `--init`.
 * The rules are Docker's: docker/cli `opts/` (ParseDevice, mount.go, ulimit, ValidateSysctl),
 * moby `daemon/oci_linux.go` (namespaces, devices, tmpfs via mount.MergeTmpfsOptions, shm,
 * rlimits, oom score, init at /sbin/docker-init). Runtime-spec v1.1: config-linux.md
 * "Namespaces", "Devices", "Sysctl"; config.md "Mounts", "POSIX process".
 *
 * Contract: as options.ts: pure; what needs the world (a device's numbers, another container's
 * pid, the container's /etc/group) is resolved by the caller (src/app/run-host.ts) and passed in.
 */
import { posix } from 'node:path';
import { TsrunError } from '../errors.js';
import type { SpecOpt } from './options.js';
import type { Device, DeviceRule, Mount, NamespaceType, Rlimit, Spec } from './types.js';
import { RLIM_INFINITY } from './types.js';

// ---------------------------------------------------------------------------------------------
// namespaces

export type IpcMode = { mode: 'private' | 'shareable' | 'none' | 'host' } | { mode: 'container'; container: string };
export type PidMode = { mode: 'private' | 'host' } | { mode: 'container'; container: string };

/** `--ipc`: "" (private), private, shareable, none, host, container:NAME — Docker's IpcMode. */
export function parseIpcMode(s: string | undefined): IpcMode {
  if (s === undefined || s === '' || s === 'private') return { mode: 'private' };
  if (s === 'shareable' || s === 'none' || s === 'host') return { mode: s };
  if (s.startsWith('container:') && s.length > 'container:'.length)
    return { mode: 'container', container: s.slice('container:'.length) };
  throw new TsrunError('ERR_USAGE', `invalid IPC mode: ${s}`, {
    hint: 'use private, shareable, none, host or container:NAME',
  });
}

/** `--pid`: "" (private), host, container:NAME — Docker's PidMode. */
export function parsePidMode(s: string | undefined): PidMode {
  if (s === undefined || s === '' || s === 'private') return { mode: 'private' };
  if (s === 'host') return { mode: 'host' };
  if (s.startsWith('container:') && s.length > 'container:'.length)
    return { mode: 'container', container: s.slice('container:'.length) };
  throw new TsrunError('ERR_USAGE', `invalid PID mode: ${s}`, { hint: 'use host or container:NAME' });
}

/** `--uts`: "" or host. */
export function parseUtsMode(s: string | undefined): 'private' | 'host' {
  if (s === undefined || s === '') return 'private';
  if (s === 'host') return 'host';
  throw new TsrunError('ERR_USAGE', `invalid UTS mode: ${s}`, { hint: 'the only UTS mode is host' });
}

/** `--userns`: "" or host; tsrun has no remapping of its own (rootless mode is its user namespace). */
export function checkUsernsMode(s: string | undefined): void {
  if (s === undefined || s === '' || s === 'host') return;
  throw new TsrunError(
    'ERR_USAGE',
    `--userns=${s} is not supported: tsrun runs containers in the host's user namespace (as root) or in its rootless namespace`,
    {
      hint: 'drop --userns (or use --userns=host); to run without root privileges on the host, run tsrun as an unprivileged user',
    },
  );
}

function dropNamespace(spec: Spec, type: NamespaceType): void {
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== type);
}

function joinNamespace(spec: Spec, type: NamespaceType, path: string): void {
  if (!spec.linux.namespaces.some((n) => n.type === type)) spec.linux.namespaces.push({ type });
  spec.linux.namespaces = spec.linux.namespaces.map((n) => (n.type === type ? { type, path } : n));
}

function setShm(spec: Spec, m: Mount | undefined): void {
  const rest = spec.mounts.filter((x) => x.destination !== '/dev/shm');
  spec.mounts = m ? [...rest, m] : rest;
}

/**
 * moby: host → no IPC namespace and the host's /dev/shm bound in; none → a private namespace and
 * no /dev/shm at all; shareable → /dev/shm is a tmpfs the host mounts (`shmPath`, so that others
 * can bind it too: a mount cannot be bound from another mount namespace); container → its
 * namespace (`nsPath`, /proc/PID/ns/ipc) and its shareable /dev/shm (`shmPath`), resolved by the
 * caller at each start.
 */
export function withIpcMode(m: IpcMode, join?: { nsPath?: string; shmPath: string }): SpecOpt {
  return (spec) => {
    if (m.mode === 'host') {
      dropNamespace(spec, 'ipc');
      setShm(spec, { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
    } else if (m.mode === 'none') {
      setShm(spec, undefined);
    } else if (m.mode === 'shareable' && join) {
      setShm(spec, {
        destination: '/dev/shm',
        type: 'bind',
        source: join.shmPath,
        options: ['rbind', 'nosuid', 'noexec', 'nodev', 'rprivate'],
      });
    } else if (m.mode === 'container' && join?.nsPath) {
      joinNamespace(spec, 'ipc', join.nsPath);
      setShm(spec, {
        destination: '/dev/shm',
        type: 'bind',
        source: join.shmPath,
        options: ['rbind', 'nosuid', 'noexec', 'nodev', 'rprivate'],
      });
    }
  };
}

export function withPidMode(m: PidMode, join?: { nsPath: string }): SpecOpt {
  return (spec) => {
    if (m.mode === 'host') dropNamespace(spec, 'pid');
    else if (m.mode === 'container' && join) joinNamespace(spec, 'pid', join.nsPath);
  };
}

/** --uts host: the host's UTS namespace, in which the runtime may not set a hostname. */
export function withUtsHost(): SpecOpt {
  return (spec) => {
    dropNamespace(spec, 'uts');
    delete spec.hostname;
  };
}

// ---------------------------------------------------------------------------------------------
// devices

export interface DeviceRequest {
  host: string;
  container: string;
  permissions: string;
}

const PERMS_RE = /^[rwm]{1,3}$/;

/** docker/cli ParseDevice: HOST[:CONTAINER][:PERMISSIONS]; permissions are a subset of rwm (default rwm). */
export function parseDevice(s: string): DeviceRequest {
  const parts = s.split(':');
  let host = parts[0] ?? '';
  let container = host;
  let permissions = 'rwm';
  if (parts.length === 2) {
    if (PERMS_RE.test(parts[1] ?? '')) permissions = parts[1] ?? 'rwm';
    else container = parts[1] ?? '';
  } else if (parts.length === 3) {
    container = parts[1] ?? '';
    permissions = parts[2] ?? '';
  } else if (parts.length > 3) {
    throw new TsrunError('ERR_USAGE', `invalid device specification: ${s}`, {
      hint: 'use --device HOST[:CONTAINER][:PERMISSIONS]',
    });
  }
  if (!PERMS_RE.test(permissions) || new Set(permissions).size !== permissions.length) {
    throw new TsrunError('ERR_USAGE', `invalid device specification: ${s}: bad cgroup permissions '${permissions}'`, {
      hint: 'permissions are a combination of r, w and m',
    });
  }
  if (!host.startsWith('/'))
    throw new TsrunError('ERR_USAGE', `invalid device specification: ${s}: the host path must be absolute`);
  if (!container.startsWith('/'))
    throw new TsrunError('ERR_USAGE', `invalid device mode: ${container}`, {
      hint: 'the path in the container must be absolute',
    });
  host = posix.normalize(host);
  container = posix.normalize(container);
  return { host, container, permissions };
}

/** Device nodes to make, each with its cgroup rule (Docker adds one allow rule per device). */
export function withDevices(devices: readonly { device: Device; permissions: string }[]): SpecOpt {
  const rules: DeviceRule[] = devices
    .filter((d) => d.device.type === 'c' || d.device.type === 'b')
    .map((d) => ({
      allow: true,
      type: d.device.type as 'c' | 'b',
      major: d.device.major,
      minor: d.device.minor,
      access: d.permissions,
    }));
  return (spec) => {
    if (devices.length === 0) return;
    const paths = new Set(devices.map((d) => d.device.path));
    spec.linux.devices = [
      ...(spec.linux.devices ?? []).filter((d) => !paths.has(d.path)),
      ...devices.map((d) => d.device),
    ];
    spec.linux.resources = { ...spec.linux.resources, devices: [...(spec.linux.resources?.devices ?? []), ...rules] };
  };
}

// ---------------------------------------------------------------------------------------------
// process: rlimits, oom score, groups, init; linux: sysctl, /dev/shm size

const ULIMITS = [
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
  'as',
];

/** go-units ParseUlimit: `name=soft[:hard]` (hard defaults to soft); -1 is unlimited. */
export function parseUlimit(s: string): Rlimit {
  const eq = s.indexOf('=');
  if (eq < 0)
    throw new TsrunError('ERR_USAGE', `invalid ulimit argument: ${s}`, {
      hint: 'use --ulimit NAME=SOFT[:HARD], e.g. nofile=1024:2048',
    });
  const name = s.slice(0, eq);
  if (!ULIMITS.includes(name))
    throw new TsrunError('ERR_USAGE', `invalid ulimit type: ${name}`, { hint: `one of ${ULIMITS.join(', ')}` });
  const parts = s.slice(eq + 1).split(':');
  if (parts.length > 2)
    throw new TsrunError(
      'ERR_USAGE',
      `too many limit value arguments - ${s.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``,
    );
  const value = (v: string): number | bigint => {
    if (!/^-?\d+$/.test(v)) throw new TsrunError('ERR_USAGE', `invalid ulimit value: ${v} in ${s}`);
    const n = Number(v);
    if (n === -1) return RLIM_INFINITY;
    if (n < 0 || !Number.isSafeInteger(n)) throw new TsrunError('ERR_USAGE', `invalid ulimit value: ${v} in ${s}`);
    return n;
  };
  const soft = value(parts[0] ?? '');
  const hard = parts[1] !== undefined ? value(parts[1]) : soft;
  if (BigInt(soft) > BigInt(hard))
    throw new TsrunError(
      'ERR_USAGE',
      `ulimit soft limit must be less than or equal to hard limit: ${parts[0]} > ${parts[1]}`,
    );
  return { type: `RLIMIT_${name.toUpperCase()}`, soft, hard };
}

/** --oom-score-adj, Docker's range check. */
export function withOomScoreAdj(n: number | undefined): SpecOpt {
  if (n !== undefined && (!Number.isInteger(n) || n < -1000 || n > 1000)) {
    throw new TsrunError('ERR_USAGE', `Invalid value ${n}, range for oom score adj is [-1000, 1000]`);
  }
  return (spec) => {
    if (n !== undefined) spec.process.oomScoreAdj = n;
  };
}

/** --group-add: gids (resolved from the container's /etc/group by the caller) after the user's own. */
export function withGroupAdd(gids: readonly number[]): SpecOpt {
  return (spec) => {
    if (gids.length === 0) return;
    const have = spec.process.user.additionalGids ?? [];
    spec.process.user.additionalGids = [...have, ...gids.filter((g) => !have.includes(g))];
  };
}

const SYSCTL_NAMES = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/**
 * --sysctl K=V: only namespaced keys (docker/cli ValidateSysctl: the IPC ones, fs.mqueue.*, net.*),
 * and not in a namespace shared with the host (moby: "not allowed in host network namespace").
 */
export function parseSysctls(
  list: readonly string[],
  o: { hostNetwork: boolean; hostIpc: boolean },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new TsrunError('ERR_USAGE', `invalid argument "${s}" for "--sysctl" flag: must be KEY=VALUE`);
    const key = s.slice(0, eq);
    const ipc = SYSCTL_NAMES.has(key) || key.startsWith('fs.mqueue.');
    const net = key.startsWith('net.');
    if (!ipc && !net)
      throw new TsrunError('ERR_USAGE', `invalid argument "${s}" for "--sysctl" flag: sysctl '${s}' is not allowed`, {
        hint: 'only namespaced sysctls can be set: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*',
      });
    if (net && o.hostNetwork)
      throw new TsrunError('ERR_USAGE', `sysctl "${key}" is not allowed in host network namespace`);
    if (ipc && o.hostIpc) throw new TsrunError('ERR_USAGE', `sysctl "${key}" is not allowed in host IPC namespace`);
    out[key] = s.slice(eq + 1);
  }
  return out;
}

export function withSysctls(sysctl: Record<string, string>): SpecOpt {
  return (spec) => {
    if (Object.keys(sysctl).length > 0) spec.linux.sysctl = { ...spec.linux.sysctl, ...sysctl };
  };
}

/** --shm-size: the size= of the /dev/shm tmpfs (in bytes, as moby writes it); no effect without one. */
export function withShmSize(bytes: number | undefined): SpecOpt {
  if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes <= 0))
    throw new TsrunError('ERR_USAGE', `invalid --shm-size ${bytes}: must be greater than 0`);
  return (spec) => {
    if (bytes === undefined) return;
    spec.mounts = spec.mounts.map((m) =>
      m.destination === '/dev/shm' && m.type === 'tmpfs'
        ? { ...m, options: [...(m.options ?? []).filter((o) => !o.startsWith('size=')), `size=${bytes}`] }
        : m,
    );
  };
}

/** Where Docker puts its init in the container. */
export const INIT_PATH = '/sbin/docker-init';

/** --init: the host's init binary bound read-only at /sbin/docker-init, running `argv` after `--`. */
export function withInit(binary: string, argv: readonly string[]): SpecOpt {
  return (spec) => {
    spec.process.args = [INIT_PATH, '--', ...argv];
    spec.mounts = [
      ...spec.mounts.filter((m) => m.destination !== INIT_PATH),
      { destination: INIT_PATH, type: 'bind', source: binary, options: ['rbind', 'ro', 'rprivate'] },
    ];
  };
}
