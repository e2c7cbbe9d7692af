/**
 * The security side of a container's config: capabilities (`--cap-add`, `--cap-drop`,
 * `--privileged`), `--security-opt` (no-new-privileges, seccomp, apparmor, label, systempaths)
 * and the seccomp profile itself. The rules are moby's: `oci/caps/utils.go` TweakCapabilities,
 * `daemon/oci_linux.go` WithCapabilities / WithSeccomp / WithApparmor / privileged handling,
 * `profiles/seccomp/seccomp_linux.go` setupSeccomp (Docker's profile format → runtime-spec
 * config-linux.md "Seccomp"), and docker/cli `opts.go` parseSecurityOpts.
 *
 * Seccomp default: tsrun uses the profile Debian ships with containers-common
 * (`/usr/share/containers/seccomp.json`, podman's, which is Docker's with a few more syscalls
 * allowed), `/etc/containers/seccomp.json` first when the admin has one, as podman looks. Where
 * neither exists tsrun runs without seccomp (what it did for every container before) and says
 * so in a debug event. `--privileged` and `seccomp=unconfined` run without a filter, as Docker.
 *
 * Contract: like options.ts, every function here is pure; files (a profile's text, the host's
 * last capability) are read by the caller and passed in. Bad user input: TsrunError('ERR_USAGE').
 */
import { TsrunError } from '../errors.js';
import type { SpecOpt } from './options.js';
import type { Seccomp, SeccompSyscall } from './types.js';

/** Every capability by number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40). */
export const ALL_CAPABILITIES: readonly string[] = Object.freeze(
  [
    'CHOWN',
    'DAC_OVERRIDE',
    'DAC_READ_SEARCH',
    'FOWNER',
    'FSETID',
    'KILL',
    'SETGID',
    'SETUID',
    'SETPCAP',
    'LINUX_IMMUTABLE',
    'NET_BIND_SERVICE',
    'NET_BROADCAST',
    'NET_ADMIN',
    'NET_RAW',
    'IPC_LOCK',
    'IPC_OWNER',
    'SYS_MODULE',
    'SYS_RAWIO',
    'SYS_CHROOT',
    'SYS_PTRACE',
    'SYS_PACCT',
    'SYS_ADMIN',
    'SYS_BOOT',
    'SYS_NICE',
    'SYS_RESOURCE',
    'SYS_TIME',
    'SYS_TTY_CONFIG',
    'MKNOD',
    'LEASE',
    'AUDIT_WRITE',
    'AUDIT_CONTROL',
    'SETFCAP',
    'MAC_OVERRIDE',
    'MAC_ADMIN',
    'SYSLOG',
    'WAKE_ALARM',
    'BLOCK_SUSPEND',
    'AUDIT_READ',
    'PERFMON',
    'BPF',
    'CHECKPOINT_RESTORE',
  ].map((c) => `CAP_${c}`),
);

/** The capabilities this kernel has (`/proc/sys/kernel/cap_last_cap`), as Docker's GetAllCapabilities. */
export function hostCapabilities(lastCap: number): string[] {
  return ALL_CAPABILITIES.slice(0, Math.min(lastCap, ALL_CAPABILITIES.length - 1) + 1);
}

/** "net_admin", "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; "all" → "ALL"; unknown names refused as Docker does. */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const cap = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPABILITIES.includes(cap)) {
    throw new TsrunError('ERR_USAGE', `unknown capability: "${cap}"`, {
      hint: 'see capabilities(7) for the names; CAP_ is optional',
    });
  }
  return cap;
}

/**
 * moby TweakCapabilities: privileged → all; ALL in --cap-add → all but the dropped; ALL in
 * --cap-drop → only the added; else the defaults minus the dropped plus the added. Order kept,
 * duplicates removed.
 */
export function capabilitySet(o: {
  defaults: readonly string[];
  all: readonly string[];
  add?: readonly string[];
  drop?: readonly string[];
  privileged?: boolean;
}): string[] {
  if (o.privileged) return [...o.all];
  const add = (o.add ?? []).map(normalizeCapability);
  const drop = (o.drop ?? []).map(normalizeCapability);
  if (add.length === 0 && drop.length === 0) return [...o.defaults];
  let caps: string[];
  if (add.includes('ALL')) caps = o.all.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...o.defaults.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps.filter((c) => c !== 'ALL'))];
}

/** process.capabilities: the set in bounding, effective and permitted (Docker leaves inheritable and ambient empty). */
export function withCapabilities(caps: readonly string[]): SpecOpt {
  return (spec) => {
    spec.process.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  };
}

export interface SecurityOpts {
  noNewPrivileges: boolean;
  /** 'default' (the distribution's profile), 'unconfined', or a profile's text (seccomp=FILE, read by the caller). */
  seccomp: 'default' | 'unconfined' | { file: string };
  apparmor?: string;
  /** SELinux label options, kept for inspect; this host has no SELinux, so nothing applies them. */
  labels: string[];
  /** systempaths=unconfined: no masked or read-only /proc and /sys paths. */
  unmaskSystemPaths: boolean;
}

/**
 * `--security-opt` values as docker/cli and moby parse them: `key=value` (the old `key:value`
 * too), a bare `no-new-privileges`. Unknown keys are Docker's error. The file of `seccomp=FILE`
 * is only named here; the caller reads it.
 */
export function parseSecurityOpts(list: readonly string[]): SecurityOpts {
  const o: SecurityOpts = { noNewPrivileges: false, seccomp: 'default', labels: [], unmaskSystemPaths: false };
  list.forEach((raw, i) => {
    if (raw === 'no-new-privileges') {
      o.noNewPrivileges = true;
      return;
    }
    const eq = raw.indexOf('=');
    const colon = raw.indexOf(':');
    const at = eq >= 0 ? eq : colon;
    if (at < 0)
      throw new TsrunError('ERR_USAGE', `Invalid --security-opt: "${raw}"`, {
        hint: 'use KEY=VALUE, e.g. --security-opt seccomp=unconfined',
      });
    const key = raw.slice(0, at);
    const value = raw.slice(at + 1);
    const bad = () =>
      new TsrunError('ERR_USAGE', `invalid --security-opt ${i + 1}: "${raw}"`, {
        hint: 'tsrun knows no-new-privileges, seccomp=unconfined|FILE, apparmor=PROFILE, label=..., systempaths=unconfined',
      });
    switch (key) {
      case 'no-new-privileges':
        if (!/^(true|false)$/i.test(value))
          throw new TsrunError(
            'ERR_USAGE',
            `invalid --security-opt ${i + 1}: "${raw}": no-new-privileges takes true or false`,
          );
        o.noNewPrivileges = value.toLowerCase() === 'true';
        break;
      case 'seccomp':
        if (value === '') throw bad();
        o.seccomp = value === 'unconfined' ? 'unconfined' : value === 'builtin' ? 'default' : { file: value };
        break;
      case 'apparmor':
        o.apparmor = value;
        break;
      case 'label':
        if (value !== 'disable' && value !== 'nested' && !/^(user|role|type|level|filetype):./.test(value)) throw bad();
        o.labels.push(value);
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw bad();
        o.unmaskSystemPaths = true;
        break;
      default:
        throw bad();
    }
  });
  return o;
}

/** The kernel's arch names for seccomp (libseccomp), by Node's `process.arch`; Go's names for the profile's `arches`. */
const ARCHES: Record<string, { scmp: string; go: string }> = {
  x64: { scmp: 'SCMP_ARCH_X86_64', go: 'amd64' },
  arm64: { scmp: 'SCMP_ARCH_AARCH64', go: 'arm64' },
  arm: { scmp: 'SCMP_ARCH_ARM', go: 'arm' },
  ia32: { scmp: 'SCMP_ARCH_X86', go: '386' },
  s390x: { scmp: 'SCMP_ARCH_S390X', go: 's390x' },
  ppc64: { scmp: 'SCMP_ARCH_PPC64LE', go: 'ppc64le' },
};

interface ProfileSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[]; minKernel?: string };
}

interface Profile {
  defaultAction?: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  flags?: string[];
  syscalls?: ProfileSyscall[];
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const a = kernel.split(/[.-]/).map(Number);
  const b = min.split(/[.-]/).map(Number);
  for (let i = 0; i < 2; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/**
 * moby setupSeccomp: a profile in Docker's format (the one `seccomp=FILE` takes and
 * containers-common ships) → runtime-spec seccomp for this host: the native arch and its
 * sub-arches from `archMap`, and only the rules whose `includes` hold and whose `excludes` do
 * not (capabilities against the container's final set, arches, minimum kernel).
 *
 * One departure from moby: where the kernel runs no x32 system calls (`o.x32 === false`: built
 * without CONFIG_X86_X32_ABI, as most distributions' kernels are now), SCMP_ARCH_X32 is left out
 * of the sub-arches. Such a call then meets libseccomp's bad-arch action (the thread is killed)
 * instead of the kernel's ENOSYS: no program can run x32 code on that kernel either way, and
 * runc compiles the filter for one arch fewer (~10 ms of every start here, a third of its
 * seccomp work). Likewise SCMP_ARCH_X86 where the kernel runs no 32-bit calls at all
 * (`o.ia32 === false`: no IA32 emulation, or turned off at boot); there no difference can be
 * seen, since int 0x80 faults (SIGSEGV) before any filter is asked. A profile's own
 * `architectures` list is taken as written.
 */
export function seccompFromProfile(
  text: string,
  o: {
    caps: readonly string[];
    arch: string;
    kernel: string;
    source: string;
    x32?: boolean | null;
    ia32?: boolean | null;
  },
): Seccomp {
  let p: Profile;
  try {
    p = JSON.parse(text) as Profile;
  } catch (e) {
    throw new TsrunError('ERR_USAGE', `loading seccomp profile ${o.source}: ${(e as Error).message}`, {
      hint: "seccomp=FILE takes a JSON profile in Docker's format",
    });
  }
  if (typeof p !== 'object' || p === null || typeof p.defaultAction !== 'string') {
    throw new TsrunError('ERR_USAGE', `loading seccomp profile ${o.source}: no defaultAction`, {
      hint: "seccomp=FILE takes a JSON profile in Docker's format",
    });
  }
  const arch = ARCHES[o.arch];
  const out: Seccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  if (p.architectures && p.architectures.length > 0) out.architectures = [...p.architectures];
  else if (arch && p.archMap) {
    const m = p.archMap.find((a) => a.architecture === arch.scmp);
    const kept = (a: string) =>
      (a !== 'SCMP_ARCH_X32' || o.x32 !== false) && (a !== 'SCMP_ARCH_X86' || o.ia32 !== false);
    if (m) out.architectures = [m.architecture, ...(m.subArchitectures ?? []).filter(kept)];
  }
  if (p.flags && p.flags.length > 0) out.flags = [...p.flags];
  const has = (list: string[] | undefined, pred: (x: string) => boolean) =>
    (list ?? []).length > 0 && (list ?? []).some(pred);
  const syscalls: SeccompSyscall[] = [];
  for (const s of p.syscalls ?? []) {
    const inc = s.includes ?? {};
    const exc = s.excludes ?? {};
    if (inc.arches?.length && !(arch && inc.arches.includes(arch.go))) continue;
    if (has(exc.arches, (a) => a === arch?.go)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => o.caps.includes(c))) continue;
    if (has(exc.caps, (c) => o.caps.includes(c))) continue;
    if (inc.minKernel && !kernelAtLeast(o.kernel, inc.minKernel)) continue;
    const names = s.names ?? (s.name ? [s.name] : []);
    if (names.length === 0) continue;
    const rule: SeccompSyscall = { names: [...names], action: s.action };
    if (s.errnoRet !== undefined) rule.errnoRet = s.errnoRet;
    if (s.args && s.args.length > 0)
      rule.args = s.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
    syscalls.push(rule);
  }
  out.syscalls = syscalls;
  return out;
}

export function withSeccomp(profile: Seccomp | undefined): SpecOpt {
  return (spec) => {
    if (profile) spec.linux.seccomp = profile;
    else delete spec.linux.seccomp;
  };
}

/** no-new-privileges and, where the host has AppArmor, the profile (Docker ignores it on hosts without). */
export function withSecurityOpts(
  o: Pick<SecurityOpts, 'noNewPrivileges' | 'apparmor' | 'unmaskSystemPaths'>,
  host: { apparmor: boolean },
): SpecOpt {
  return (spec) => {
    spec.process.noNewPrivileges = o.noNewPrivileges;
    if (host.apparmor && o.apparmor && o.apparmor !== 'unconfined') spec.process.apparmorProfile = o.apparmor;
    if (o.unmaskSystemPaths) {
      spec.linux.maskedPaths = [];
      spec.linux.readonlyPaths = [];
    }
  };
}

/**
 * `--privileged` beyond capabilities (moby oci_linux.go): no masked or read-only paths, /sys and
 * the cgroup hierarchy writable, every device allowed, the host's devices made in /dev (the
 * caller lists them; none in rootless mode, where the kernel would not let them be used anyway).
 */
export function withPrivileged(devices: readonly import('./types.js').Device[]): SpecOpt {
  return (spec) => {
    spec.linux.maskedPaths = [];
    spec.linux.readonlyPaths = [];
    spec.mounts = spec.mounts.map((m) =>
      m.type === 'sysfs' || m.type === 'cgroup' ? { ...m, options: (m.options ?? []).filter((x) => x !== 'ro') } : m,
    );
    spec.linux.devices = [...(spec.linux.devices ?? []), ...devices];
    spec.linux.resources = { ...spec.linux.resources, devices: [{ allow: true, access: 'rwm' }] };
  };
}
