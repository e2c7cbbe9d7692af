/**
 * Small option functions that turn `defaultSpec()` into the config.json for one `tsrun run`,
 * in containerd's style (`oci.SpecOpts`): `applyOpts(defaultSpec(), withProcessArgs(...), ...)`.
 * The rules are Docker's — docker/cli `cli/command/container/opts.go` (flag parsing),
 * moby `daemon/commit.go` merge (image config vs. user config), `container.CreateDaemonEnvironment`
 * (env), and `daemon/oci_linux.go` (user, mounts, resources) — written against runtime-spec v1.1
 * (config.md "Process", "Root", "Hostname", "Mounts", "POSIX process" rlimits; config-linux.md
 * "Control groups").
 *
 * Contract: every option is pure (it mutates only the spec it is given, reads no files, no
 * process.env); everything it needs from the world — the caller's environment, inherited
 * rlimits, prepared /etc files, the image's passwd text — is a parameter. Invalid user input
 * throws TsrunError('ERR_USAGE'); an invalid image config throws 'ERR_CONFIG'. Options are
 * independent of each other's order: whatever one needs (hostname, tty, HOME) is passed in.
 */
import { posix } from 'node:path';

import { TsrunError } from '../errors.js';
import type { ContainerConfig } from '../oci/schemas.js';
import type { Mount, Rlimit, Spec } from './types.js';
import type { ResolvedUser } from './user.js';

export type SpecOpt = (spec: Spec) => void;

export function applyOpts(spec: Spec, ...opts: SpecOpt[]): Spec {
  for (const opt of opts) opt(spec);
  return spec;
}

// ---------------------------------------------------------------------------------------------
// process.args

export interface ArgsOverrides {
  /** `--entrypoint X` (Docker passes one string: [X]); `''` is `--entrypoint ''`; undefined: not given. */
  entrypoint?: string[] | '';
  /** The arguments after the image name; undefined or [] means "none given". */
  cmd?: string[];
}

/**
 * The argv Docker would run. moby daemon/commit.go merge + daemon/create.go:
 *   - no --entrypoint: image ENTRYPOINT is kept; image CMD is used unless args were given;
 *   - --entrypoint X: replaces ENTRYPOINT and discards the image CMD (only given args follow);
 *   - --entrypoint '': the CLI sends [""], which also discards the image CMD, and the daemon
 *     then resets [""] to no entrypoint, so the given args alone are the command;
 *   - argv = entrypoint ++ cmd; empty → "No command specified".
 */
export function resolveProcessArgs(image: ContainerConfig | null | undefined, o: ArgsOverrides): string[] {
  const userCmd = o.cmd ?? [];
  const userEntrypoint = o.entrypoint === '' ? [''] : o.entrypoint;
  let entrypoint: string[] = userEntrypoint ?? [];
  let cmd: string[] = userCmd;
  if (entrypoint.length === 0) {
    if (cmd.length === 0) cmd = image?.Cmd ?? [];
    if (userEntrypoint === undefined) entrypoint = image?.Entrypoint ?? [];
  }
  if (entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new TsrunError('ERR_USAGE', 'no command specified', {
      hint: 'the image defines no ENTRYPOINT or CMD: give a command after the image name, e.g. `tsrun run IMAGE sh`',
    });
  }
  return argv;
}

export function withProcessArgs(image: ContainerConfig | null | undefined, o: ArgsOverrides): SpecOpt {
  const argv = resolveProcessArgs(image, o);
  return (spec) => {
    spec.process.args = argv;
  };
}

// ---------------------------------------------------------------------------------------------
// process.cwd, user, terminal; root; hostname

/**
 * cwd = `-w`, else the image's WorkingDir, else "/"; cleaned. Docker refuses a relative one:
 * "the working directory 'X' is invalid, it needs to be an absolute path".
 */
export function resolveCwd(imageWorkingDir: string | undefined, workdir: string | undefined): string {
  const fromUser = workdir !== undefined && workdir !== '';
  const dir = fromUser ? workdir : imageWorkingDir || '/';
  if (!dir.startsWith('/')) {
    throw new TsrunError(
      fromUser ? 'ERR_USAGE' : 'ERR_CONFIG',
      `the working directory '${dir}' is invalid, it needs to be an absolute path`,
      fromUser ? { hint: `use an absolute path, e.g. -w /${dir}` } : {},
    );
  }
  return cleanPath(dir);
}

export function withCwd(imageWorkingDir: string | undefined, workdir: string | undefined): SpecOpt {
  const cwd = resolveCwd(imageWorkingDir, workdir);
  return (spec) => {
    spec.process.cwd = cwd;
  };
}

/**
 * process.user from a resolved user (user.ts). moby getUser puts the primary gid first in
 * additionalGids, then the supplementary groups (since the 2023 supplementary-groups fix).
 */
export function withUser(resolved: ResolvedUser): SpecOpt {
  return (spec) => {
    spec.process.user = {
      uid: resolved.uid,
      gid: resolved.gid,
      additionalGids: [resolved.gid, ...resolved.additionalGids],
    };
  };
}

export function withTty(tty: boolean): SpecOpt {
  return (spec) => {
    spec.process.terminal = tty;
  };
}

export function withReadonlyRootfs(readonly: boolean): SpecOpt {
  return (spec) => {
    spec.root.readonly = readonly;
  };
}

/** RFC 1123 labels, at most 64 bytes (HOST_NAME_MAX); sethostname(2) would refuse longer. */
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function withHostname(name: string): SpecOpt {
  if (name.length > 64 || !HOSTNAME_RE.test(name)) {
    throw new TsrunError('ERR_USAGE', `invalid hostname format: ${name}`, {
      hint: 'a hostname is letters, digits and hyphens, dot-separated, at most 64 characters',
    });
  }
  return (spec) => {
    spec.hostname = name;
  };
}

// ---------------------------------------------------------------------------------------------
// mounts

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
  /** rprivate when absent; shared, rslave, ... from `-v …:OPTS` or `--mount bind-propagation=`. */
  propagation?: string;
  /** `--mount bind-nonrecursive=true`: "bind" rather than "rbind". */
  nonRecursive?: boolean;
}

function cleanPath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

/** moby oci_linux.go: user mounts replace default mounts at the same destination. */
function addMounts(spec: Spec, mounts: Mount[]): void {
  const dests = new Set(mounts.map((m) => m.destination));
  spec.mounts = [...spec.mounts.filter((m) => !dests.has(m.destination)), ...mounts];
}

/**
 * `-v /src:/dst[:ro]` / `--mount type=bind`: moby mounts these as type "bind" with
 * ["rbind", ("ro"), "rprivate"]. Sources and destinations must be absolute (Docker: "invalid
 * mount config: ... must be an absolute path"); two mounts on one destination are an error
 * ("Duplicate mount point"). The list is sorted parents-first (moby sortMounts, by path depth),
 * so `/data` is mounted before `/data/sub`; a mount on a default destination (e.g. /dev/shm)
 * replaces the default.
 */
export function withBindMounts(
  binds: readonly BindMount[],
  tmpfs: readonly { destination: string; options: string[] }[] = [],
): SpecOpt {
  const seen = new Set<string>();
  const mounts: Mount[] = binds.map((b) => {
    if (!b.source.startsWith('/')) {
      throw new TsrunError('ERR_USAGE', `invalid mount config: source '${b.source}' must be an absolute path`);
    }
    if (!b.destination.startsWith('/')) {
      throw new TsrunError(
        'ERR_USAGE',
        `invalid mount config: destination '${b.destination}' must be an absolute path`,
        {
          hint: `use an absolute path inside the container, e.g. /${b.destination}`,
        },
      );
    }
    const destination = cleanPath(b.destination);
    if (destination === '/') throw new TsrunError('ERR_USAGE', "invalid mount config: destination can't be '/'");
    if (seen.has(destination)) throw new TsrunError('ERR_USAGE', `Duplicate mount point: ${destination}`);
    seen.add(destination);
    const options = [b.nonRecursive ? 'bind' : 'rbind'];
    if (b.readonly) options.push('ro');
    options.push(b.propagation ?? 'rprivate');
    return { destination, type: 'bind', source: b.source, options };
  });
  // --tmpfs / --mount type=tmpfs take part in the same duplicate check and ordering.
  for (const t of tmpfs) {
    const destination = cleanPath(t.destination);
    if (seen.has(destination)) throw new TsrunError('ERR_USAGE', `Duplicate mount point: ${destination}`);
    seen.add(destination);
    mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options: [...t.options] });
  }
  // Array.prototype.sort is stable: equal depths keep the user's order.
  mounts.sort((a, b) => depth(a.destination) - depth(b.destination));
  return (spec) => addMounts(spec, mounts);
}

export interface EtcFiles {
  hosts?: string;
  hostname?: string;
  resolvConf?: string;
}

/**
 * The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf the caller prepared on the
 * host, bind-mounted as moby does for its NetworkMounts: writable, ["rbind", "rprivate"], even
 * with --read-only (Docker keeps them writable so the container can still edit them).
 */
export function withEtcFiles(files: EtcFiles): SpecOpt {
  const list: [string, string | undefined][] = [
    ['/etc/resolv.conf', files.resolvConf],
    ['/etc/hostname', files.hostname],
    ['/etc/hosts', files.hosts],
  ];
  const mounts: Mount[] = [];
  for (const [destination, source] of list) {
    if (source === undefined) continue;
    if (!source.startsWith('/')) {
      throw new TsrunError('ERR_INTERNAL', `mounting ${destination}: source '${source}' must be an absolute path`);
    }
    mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  }
  return (spec) => addMounts(spec, mounts);
}

// ---------------------------------------------------------------------------------------------
// rlimits, resources

const RLIMIT_TYPE = /^RLIMIT_[A-Z]+$/;

/**
 * process.rlimits. The caller passes the limits it inherited (or the user's --ulimit values):
 * nothing is raised here, since raised defaults (podman's) fail where the host's hard limit is
 * lower. A later entry of the same type replaces an earlier one (runc refuses duplicates).
 * Docker: "ulimit soft limit must be less than or equal to hard limit".
 */
export function withRlimits(limits: readonly Rlimit[]): SpecOpt {
  const byType = new Map<string, Rlimit>();
  for (const l of limits) {
    if (!RLIMIT_TYPE.test(l.type)) throw new TsrunError('ERR_USAGE', `invalid rlimit type: ${l.type}`);
    for (const v of [l.soft, l.hard]) {
      if (
        (typeof v === 'number' && (!Number.isSafeInteger(v) || v < 0)) ||
        (typeof v === 'bigint' && (v < 0n || v > 18446744073709551615n))
      ) {
        throw new TsrunError('ERR_USAGE', `invalid ${l.type} value: ${String(v)}`, {
          hint: 'use RLIM_INFINITY for unlimited',
        });
      }
    }
    if (l.soft > l.hard) {
      throw new TsrunError(
        'ERR_USAGE',
        `invalid ${l.type}: ulimit soft limit must be less than or equal to hard limit: ${l.soft} > ${l.hard}`,
      );
    }
    byType.set(l.type, { type: l.type, hard: l.hard, soft: l.soft });
  }
  const rlimits = [...byType.values()];
  return (spec) => {
    spec.process.rlimits = rlimits;
  };
}

export interface ResourceLimits {
  /** --memory, in bytes (see parseMemory). */
  memory?: number;
  /** --cpus, e.g. 1.5. */
  cpus?: number;
  /** --pids-limit; 0 or undefined: not set; negative: unlimited. */
  pidsLimit?: number;
}

/** moby daemon_unix.go: "Minimum memory limit allowed is 6MB". */
export const MIN_MEMORY = 6 * 1024 * 1024;
export const CPU_PERIOD = 100_000;

/**
 * linux.resources. --memory sets memory.limit and, as Docker does when --memory-swap is not
 * given, swap = 2 × memory (memory plus as much swap). --cpus becomes a CFS quota over a
 * 100000µs period (moby: NanoCPUs → CPUQuota = nanoCPUs × period / 1e9); Docker refuses less
 * than 0.01 CPU.
 */
export function withResources(r: ResourceLimits): SpecOpt {
  const res: NonNullable<Spec['linux']['resources']> = {};
  // Docker: -m 0 is "no limit".
  if (r.memory !== undefined && r.memory !== 0) {
    if (!Number.isSafeInteger(r.memory) || r.memory < MIN_MEMORY) {
      throw new TsrunError('ERR_USAGE', `invalid --memory ${r.memory}: Minimum memory limit allowed is 6MB`);
    }
    res.memory = { limit: r.memory, swap: r.memory * 2 };
  }
  if (r.cpus !== undefined) {
    const quota = Math.round(r.cpus * CPU_PERIOD);
    if (!Number.isFinite(r.cpus) || quota < 1000) {
      throw new TsrunError('ERR_USAGE', `invalid --cpus ${r.cpus}: range of CPUs is from 0.01 upwards`);
    }
    res.cpu = { quota, period: CPU_PERIOD };
  }
  if (r.pidsLimit !== undefined && r.pidsLimit !== 0) {
    if (!Number.isSafeInteger(r.pidsLimit)) throw new TsrunError('ERR_USAGE', `invalid --pids-limit ${r.pidsLimit}`);
    res.pids = { limit: r.pidsLimit < 0 ? -1 : r.pidsLimit };
  }
  return (spec) => {
    if (Object.keys(res).length > 0) spec.linux.resources = { ...spec.linux.resources, ...res };
  };
}

/**
 * Docker's RAMInBytes (go-units): a decimal number, an optional space, an optional k/m/g/t/p
 * prefix, an optional "i", an optional "b", case-insensitive, binary multiples (1k = 1024);
 * the result is truncated to whole bytes. "512m" → 536870912.
 */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(i)?(b)?$/i.exec(s);
  if (!m) {
    throw new TsrunError('ERR_USAGE', `invalid size: '${s}'`, {
      hint: 'use a number with an optional unit: 512m, 2g, 1048576',
    });
  }
  const unit = m[2] ? 1024 ** ('kmgtp'.indexOf(m[2].toLowerCase()) + 1) : 1;
  const bytes = Math.trunc(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new TsrunError('ERR_USAGE', `invalid size: '${s}': too large`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// rootless

/**
 * The config for a runtime running as uid 0 of a rootless user namespace (src/rootless/), after
 * runc's own `spec --rootless` conversion: the cgroup hierarchy is the host's and not ours, so it
 * is bind-mounted read-only instead of mounted, and no cgroup path is set (runc then skips the
 * cgroups it may not create instead of failing); with the host's network, sysfs cannot be mounted
 * (the network namespace is not ours), so /sys is bind-mounted read-only too. Resource limits
 * need a delegated cgroup v2 hierarchy: refused with a clear error rather than ignored.
 */
export function withRootless(o: { hostNetwork: boolean; singleId?: boolean }): SpecOpt {
  return (spec) => {
    if (spec.linux.resources && Object.keys(spec.linux.resources).some((k) => k !== 'devices')) {
      throw new TsrunError(
        'ERR_ROOTLESS',
        'rootless mode: --memory, --cpus and --pids-limit need a cgroup v2 hierarchy delegated to you, and this host has none',
        {
          hint: 'drop the limits, or run as root (see `tsrun info`)',
        },
      );
    }
    delete spec.linux.cgroupsPath;
    spec.mounts = spec.mounts.map((m) => {
      if (m.type === 'cgroup')
        return {
          destination: m.destination,
          type: 'bind',
          source: '/sys/fs/cgroup',
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        };
      if (m.type === 'sysfs' && o.hostNetwork)
        return {
          destination: m.destination,
          type: 'bind',
          source: '/sys',
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        };
      // A single-id namespace (no subordinate ids) has no gid 5 (tty) to give the ptys, as podman drops it.
      if (m.type === 'devpts' && o.singleId)
        return { ...m, options: (m.options ?? []).filter((x) => !x.startsWith('gid=')) };
      return m;
    });
  };
}
