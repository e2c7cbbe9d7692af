/**
 * The default runtime spec for `tsrun run`: Docker's, as moby builds it in `oci/defaults.go`
 * (DefaultLinuxSpec) and `oci/caps/defaults.go` (DefaultCapabilities), expressed in
 * runtime-spec v1.1 terms (config.md "Process", "Root", "Mounts"; config-linux.md "Namespaces",
 * "Masked Paths", "Readonly Paths").
 *
 * Contract: `defaultSpec()` returns a fresh, deeply new object on every call (callers mutate it
 * through the option functions in options.ts). It is not runnable by itself: `process.args` is
 * empty until `withProcessArgs` fills it. `root.path` is "rootfs", relative to the bundle, as
 * `runc spec` writes it; the caller prepares the bundle.
 *
 * Left to the runtime on purpose: device nodes and the device cgroup allow-list (runc creates
 * /dev/null, /dev/zero, ... and allows them itself), seccomp and AppArmor profiles.
 */
import type { Mount, Spec } from './types.js';

export const OCI_VERSION = '1.1.0';

/** moby oci/caps/defaults.go DefaultCapabilities, in Docker's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

/** moby oci/defaults.go MaskedPaths: bind-mounted over with /dev/null (files) or an empty ro tmpfs. */
export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/** moby oci/defaults.go ReadonlyPaths: remounted read-only inside the container. */
export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
]);

/** Docker's default PATH (moby oci.DefaultPathEnv for Linux), used when the image sets none. */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // Docker's --shm-size default is 64 MiB (daemon config.DefaultShmSize), mode 1777.
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
  ];
}

export function defaultSpec(): Spec {
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      noNewPrivileges: false,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: '',
    mounts: defaultMounts(),
    linux: {
      // moby oci/defaults.go order.
      namespaces: [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }],
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}

/**
 * config.json text for a spec. Plain JSON.stringify cannot write a uint64 such as RLIM_INFINITY
 * (2^64-1): as a number it rounds to 18446744073709552000, which Go refuses to decode into a
 * uint64. Bigints are therefore written as exact integer literals.
 */
export function serializeSpec(spec: Spec): string {
  const MARK = '\u0000bigint:';
  const text = JSON.stringify(spec, (_k, v: unknown) => (typeof v === 'bigint' ? `${MARK}${v.toString()}` : v), 2);
  // JSON.stringify escapes U+0000 as \u0000, so only our own markers can match.
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
}

/**
 * config.json's text as a spec, integers of 16 digits or more exact (bigints: uint64 rlimits such
 * as RLIM_INFINITY), as `serializeSpec` writes them. One pass over the text: a JSON string is
 * matched whole and kept as it is, so digits inside one (an environment value) stay text.
 */
export function parseSpec(text: string): Spec {
  const MARK = '\u0000bigint:';
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|(?<![\d.])(-?\d{16,})(?![.eE\d])/g, (all, big: string | undefined) =>
    big === undefined ? all : `"\\u0000bigint:${big}"`,
  );
  return JSON.parse(marked, (_k, v: unknown) =>
    typeof v === 'string' && v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v,
  ) as Spec;
}
