/**
 * A typed subset of the OCI runtime-spec `Spec` (runtime-spec v1.1: config.md, config-linux.md):
 * exactly the fields tsrun generates for `tsrun run`. Field names and shapes are the JSON ones,
 * so a `Spec` is written to `config.json` as is (through `serializeSpec`, which handles the one
 * value JSON numbers cannot carry: RLIM_INFINITY).
 *
 * Contract: pure data, no I/O. Everything here is produced by `defaultSpec()` plus the option
 * functions in options.ts; nothing reads a `Spec` from untrusted input.
 */

/** config.md "Mounts". `options` are the fstab-style strings runc understands (rbind, ro, ...). */
export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** config.md "POSIX process" → user. `umask` since runtime-spec 1.0.2. */
export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

/** config.md "Linux process" → capabilities, as `CAP_*` names. */
export interface Capabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable?: string[];
  ambient?: string[];
}

/**
 * config.md "POSIX process" → rlimits. `soft`/`hard` are uint64 in the spec: unlimited is
 * 2^64-1, which a JS number cannot hold exactly, so limits may be bigints (`RLIM_INFINITY`).
 */
export interface Rlimit {
  type: string;
  hard: number | bigint;
  soft: number | bigint;
}

/** 2^64-1, the kernel's RLIM_INFINITY as a uint64 in config.json. */
export const RLIM_INFINITY = 18446744073709551615n;

export interface Process {
  terminal: boolean;
  user: User;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges: boolean;
  /** config.md "Linux process": -1000..1000. */
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

export interface Root {
  path: string;
  readonly: boolean;
}

/** config-linux.md "Namespaces". */
export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';
export interface Namespace {
  type: NamespaceType;
  path?: string;
}

/** config-linux.md "User namespace mappings". */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** config-linux.md "Control groups" → resources (the subset `tsrun run` sets). */
export interface Resources {
  memory?: { limit?: number; swap?: number };
  cpu?: { quota?: number; period?: number };
  pids?: { limit: number };
  /** The device cgroup's allow/deny list, in order (config-linux.md "Device allowlist"). */
  devices?: DeviceRule[];
}

export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

/** config-linux.md "Devices": a node the runtime creates (or, rootless, bind-mounts) in /dev. */
export interface Device {
  path: string;
  type: 'c' | 'b' | 'p' | 'u';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** config-linux.md "Seccomp". */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}
export interface SeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
}
export interface Seccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: SeccompSyscall[];
}

export interface Linux {
  namespaces: Namespace[];
  maskedPaths: string[];
  readonlyPaths: string[];
  resources?: Resources;
  cgroupsPath?: string;
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  devices?: Device[];
  sysctl?: Record<string, string>;
  seccomp?: Seccomp;
}

/** config.md "POSIX-platform Hooks": a program the runtime runs at a point of the lifecycle. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Spec {
  ociVersion: string;
  process: Process;
  root: Root;
  hostname?: string;
  mounts: Mount[];
  linux: Linux;
  /** tsrun sets only createRuntime (runtime/gate.ts). */
  hooks?: { createRuntime?: Hook[] };
}
