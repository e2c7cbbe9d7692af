/**
 * Option functions for the host-side flags of `run`/`create`: namespaces shared with the host or
 * another container (`--ipc`, `--pid`, `--uts`, `--userns`), `--device`, `--tmpfs` and
 * `--mount`, `--ulimit`, `--sysctl`, `--shm-size`, `--group-add`, `--oom-score-adj`, `--init`.
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
import { parseMemory } from './options.js';
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
// tmpfs and --mount

export interface TmpfsMount {
  destination: string;
  /** tmpfs options after the user's (size=, mode=, exec, ...), merged with Docker's defaults. */
  options: string[];
}

/** Flags that cancel each other (moby pkg/mount flags): the last one given wins. */
const FLAG_GROUPS: string[][] = [
  ['ro', 'rw'],
  ['exec', 'noexec'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'],
  ['strictatime', 'nostrictatime'],
  ['mand', 'nomand'],
  ['dirsync'],
  ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable'],
];
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/**
 * moby mount.MergeTmpfsOptions: defaults first (noexec, nosuid, nodev), then the user's; walking
 * from the end, the last flag of each group and the last value of each data key are kept.
 */
export function mergeTmpfsOptions(user: readonly string[]): string[] {
  const all = ['noexec', 'nosuid', 'nodev', ...user.filter((o) => o !== '' && o !== 'defaults')];
  const out: string[] = [];
  const doneGroups = new Set<number>();
  const doneKeys = new Set<string>();
  for (let i = all.length - 1; i >= 0; i--) {
    const o = all[i] ?? '';
    const g = FLAG_GROUPS.findIndex((grp) => grp.includes(o));
    if (g >= 0) {
      if (doneGroups.has(g)) continue;
      doneGroups.add(g);
      out.unshift(o);
      continue;
    }
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    if (eq < 0 || !TMPFS_DATA.has(key))
      throw new TsrunError('ERR_USAGE', `invalid tmpfs option "${o}"`, {
        hint: 'tmpfs takes size=, mode=, uid=, gid=, nr_inodes= and mount flags such as exec, ro',
      });
    if (doneKeys.has(key)) continue;
    doneKeys.add(key);
    out.unshift(o);
  }
  return out;
}

/** `--tmpfs /path[:opt,opt]`. */
export function parseTmpfs(s: string): TmpfsMount {
  const i = s.indexOf(':');
  const destination = i < 0 ? s : s.slice(0, i);
  if (!destination.startsWith('/'))
    throw new TsrunError('ERR_USAGE', `invalid tmpfs: ${s}: the path must be absolute`, {
      hint: 'use --tmpfs /path[:options]',
    });
  return { destination, options: mergeTmpfsOptions(i < 0 ? [] : s.slice(i + 1).split(',')) };
}

export interface ParsedMount {
  type: 'bind' | 'tmpfs';
  source?: string;
  destination: string;
  readonly: boolean;
  /** bind: rprivate (default), shared, slave, ... */
  propagation?: string;
  /** bind-nonrecursive=true */
  nonRecursive?: boolean;
  /** tmpfs: merged options. */
  options?: string[];
}

/** A CSV record as Go's encoding/csv reads it (docker/cli reads --mount that way): quotes may wrap a field. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function boolValue(v: string | undefined, field: string, raw: string): boolean {
  if (v === undefined) return true;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new TsrunError('ERR_USAGE', `invalid value for ${field}: ${v} in '${raw}'`);
}

/**
 * docker/cli opts/mount.go: `type=bind|tmpfs|volume,source=,target=,readonly,...`. The default
 * type is volume, as Docker's; volumes are not there yet and are refused with a hint. A bind's
 * relative source is taken from `cwd`; its existence is checked by the caller (Docker refuses a
 * missing one, unlike -v).
 */
export function parseMount(raw: string, cwd: string): ParsedMount {
  let type = 'volume';
  let source: string | undefined;
  let destination: string | undefined;
  let readonly = false;
  let propagation: string | undefined;
  let nonRecursive = false;
  const tmpfsOpts: string[] = [];
  for (const field of csvFields(raw)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const need = () => {
      if (value === undefined) throw new TsrunError('ERR_USAGE', `invalid field '${field}' must be a key=value pair`);
      return value;
    };
    switch (key) {
      case 'type':
        type = need();
        break;
      case 'source':
      case 'src':
        source = need();
        break;
      case 'target':
      case 'destination':
      case 'dst':
        destination = need();
        break;
      case 'readonly':
      case 'ro':
        readonly = boolValue(value, key, raw);
        break;
      case 'consistency':
        break;
      case 'bind-propagation':
        propagation = need();
        break;
      case 'bind-nonrecursive':
        nonRecursive = boolValue(value, key, raw);
        break;
      case 'tmpfs-size':
        tmpfsOpts.push(`size=${parseMemory(need())}`);
        break;
      case 'tmpfs-mode': {
        const mode = need();
        if (!/^[0-7]+$/.test(mode))
          throw new TsrunError('ERR_USAGE', `invalid value for tmpfs-mode: ${mode}`, {
            hint: 'an octal mode, e.g. 1777',
          });
        tmpfsOpts.push(`mode=${mode}`);
        break;
      }
      default:
        if (key.startsWith('volume-')) {
          need();
          break;
        }
        throw new TsrunError('ERR_USAGE', `unexpected key '${key}' in '${field}'`);
    }
  }
  if (!destination)
    throw new TsrunError('ERR_USAGE', `invalid argument "${raw}" for "--mount" flag: target is required`);
  if (type === 'volume') {
    throw new TsrunError('ERR_USAGE', `--mount ${raw}: named volumes are not supported yet`, {
      hint: 'bind-mount a host directory: --mount type=bind,source=DIR,target=PATH (or use type=tmpfs)',
    });
  }
  if (type === 'bind') {
    if (!source)
      throw new TsrunError(
        'ERR_USAGE',
        `invalid argument "${raw}" for "--mount" flag: source is required when specifying bind mounts`,
      );
    if (propagation !== undefined && !/^r?(shared|slave|private)$/.test(propagation)) {
      throw new TsrunError('ERR_USAGE', `invalid bind-propagation: ${propagation}`, {
        hint: 'use rprivate, private, rshared, shared, rslave or slave',
      });
    }
    return { type, source: posix.resolve(cwd, source), destination, readonly, propagation, nonRecursive };
  }
  if (type === 'tmpfs') {
    if (source)
      throw new TsrunError(
        'ERR_USAGE',
        `invalid mount config for type "tmpfs": source is not supported for tmpfs mounts`,
      );
    return { type, destination, readonly, options: mergeTmpfsOptions([...(readonly ? ['ro'] : []), ...tmpfsOpts]) };
  }
  throw new TsrunError('ERR_USAGE', `invalid mount type "${type}"`, {
    hint: 'tsrun supports type=bind and type=tmpfs',
  });
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
