/**
 * The host side of `run`/`create`'s security and host flags: everything the pure option functions
 * (spec/security.ts, spec/host-options.ts) need from the world is looked up here — the kernel's
 * capabilities and version, the seccomp profile file, AppArmor, device nodes, the init binary, the
 * container's /etc/group for --group-add, label files, the cidfile — and, at each start, the
 * namespaces of the container named by --ipc/--pid container:NAME.
 *
 * Contract: `hostFlags` validates every flag before anything is made (a bad flag fails create
 * with nothing left behind); the returned `specOpts` are applied after the base options; what is
 * kept in the record is only what start needs again (`joins`).
 */
import { promises as fs, readFileSync, statSync, readdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { SpecOpt } from '../spec/options.js';
import { parseMemory } from '../spec/options.js';
import { parseEnvFile, parseLabels } from '../spec/env.js';
import {
  capabilitySet,
  hostCapabilities,
  parseSecurityOpts,
  seccompFromProfile,
  withCapabilities,
  withPrivileged,
  withSeccomp,
  withSecurityOpts,
  type SecurityOpts,
} from '../spec/security.js';
import {
  checkUsernsMode,
  parseDevice,
  parseIpcMode,
  parsePidMode,
  parseSysctls,
  parseUlimit,
  parseUtsMode,
  withDevices,
  withGroupAdd,
  withInit,
  withIpcMode,
  withOomScoreAdj,
  withPidMode,
  withShmSize,
  withSysctls,
  withUtsHost,
  type IpcMode,
  type PidMode,
} from '../spec/host-options.js';
import { parseMount, parseTmpfs, type TmpfsMount } from '../spec/mount-flags.js';
import { volumeFromMount, type VolumeMount } from '../spec/volumes.js';
import { withRlimits, type BindMount } from '../spec/options.js';
import { DEFAULT_CAPABILITIES } from '../spec/defaults.js';
import type { Device, Rlimit } from '../spec/types.js';
import { parseSpec, serializeSpec } from '../spec/defaults.js';
import { mountAll, type Mount } from '../snapshot/overlay.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { ContainerPaths } from '../runtime/paths.js';
import { parseGroup } from '../spec/user.js';
import { isMounted, type Env } from './containers.js';
import { native } from '../native/index.js';

export interface HostFlagOptions {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  device?: string[];
  ipc?: string;
  pid?: string;
  uts?: string;
  userns?: string;
  mount?: string[];
  tmpfs?: string[];
  ulimit?: string[];
  init?: boolean;
  shmSize?: string;
  sysctl?: string[];
  oomScoreAdj?: string;
  groupAdd?: string[];
}

/** What `run` decided about these flags, validated. */
export interface HostFlags {
  privileged: boolean;
  caps: string[];
  security: SecurityOpts;
  /** The seccomp profile's text when seccomp=FILE (read now: Docker reads it in the CLI). */
  seccompText?: string;
  devices: { device: Device; permissions: string; hostPath: string }[];
  ipc: IpcMode;
  pid: PidMode;
  uts: 'private' | 'host';
  binds: BindMount[];
  tmpfs: TmpfsMount[];
  /** `--mount type=volume` (app/volumes.ts makes them). */
  volumes: VolumeMount[];
  rlimits: Rlimit[];
  initBinary?: string;
  shmSize?: number;
  sysctl: Record<string, string>;
  oomScoreAdj?: number;
  groupAdd: string[];
}

/** Where the distributions put podman's seccomp profile (containers-common), in podman's order. */
export const SECCOMP_PROFILES = ['/etc/containers/seccomp.json', '/usr/share/containers/seccomp.json'];

/** Static init binaries bound in by --init: podman's catatonit, then tini's static build. */
export const INIT_BINARIES = [
  '/usr/libexec/podman/catatonit',
  '/usr/bin/catatonit',
  '/usr/bin/tini-static',
  '/usr/bin/docker-init',
];

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * "All capabilities" for --privileged and --cap-add ALL: the kernel's (cap_last_cap, as Docker)
 * that tsrun itself holds in its bounding set (as podman): a runtime cannot grant one it lacks,
 * and sandboxes (this CI machine among them) drop some.
 */
export function allCapabilities(): string[] {
  const n = Number(readText('/proc/sys/kernel/cap_last_cap')?.trim());
  const kernel = hostCapabilities(Number.isInteger(n) ? n : 40);
  const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readText('/proc/self/status') ?? '')?.[1];
  if (!bnd) return kernel;
  const mask = BigInt(`0x${bnd}`);
  return kernel.filter((_c, i) => (mask >> BigInt(i)) & 1n);
}

/** stat(2) numbers of a device node: Linux's new_decode_dev. */
function deviceOf(hostPath: string, ctrPath: string): Device | undefined {
  const st = statSync(hostPath, { bigint: true });
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  const rdev = st.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return {
    path: ctrPath,
    type,
    major,
    minor,
    fileMode: Number(st.mode & 0o777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** Device nodes under a host directory, as libcontainer's HostDevices (skipping pts, shm, mqueue, fd ...). */
function devicesUnder(hostDir: string, ctrDir: string, top = true): Device[] {
  const out: Device[] = [];
  for (const e of readdirSync(hostDir, { withFileTypes: true })) {
    const h = path.join(hostDir, e.name);
    const c = path.posix.join(ctrDir, e.name);
    if (e.isDirectory()) {
      if (top && ['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev'].includes(e.name)) continue;
      out.push(...devicesUnder(h, c, false));
    } else if ((e.isCharacterDevice() || e.isBlockDevice()) && !(top && e.name === 'console')) {
      const d = deviceOf(h, c);
      if (d) out.push(d);
    }
  }
  return out;
}

function resolveDevice(spec: string): { device: Device; permissions: string; hostPath: string }[] {
  const r = parseDevice(spec);
  let st;
  try {
    st = statSync(r.host);
  } catch (e) {
    throw new TsrunError(
      'ERR_USAGE',
      `error gathering device information while adding custom device "${r.host}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
    );
  }
  if (st.isDirectory()) {
    return devicesUnder(r.host, r.container, false).map((device) => ({
      device,
      permissions: r.permissions,
      hostPath: path.join(r.host, path.relative(r.container, device.path)),
    }));
  }
  const device = deviceOf(r.host, r.container);
  if (!device)
    throw new TsrunError(
      'ERR_USAGE',
      `error gathering device information while adding custom device "${r.host}": not a device node`,
    );
  return [{ device, permissions: r.permissions, hostPath: r.host }];
}

function findInit(): string {
  for (const f of INIT_BINARIES) if (existsSync(f)) return f;
  throw new TsrunError('ERR_CONFIG', '--init: no init binary found', {
    hint: 'install one: apt-get install catatonit (or tini)',
  });
}

/** Parse and check every host flag (no container exists yet). */
export async function hostFlags(
  o: HostFlagOptions,
  ctx: { rootless: boolean; network: string; cwd: string },
): Promise<HostFlags> {
  checkUsernsMode(o.userns);
  const privileged = Boolean(o.privileged);
  const caps = capabilitySet({
    defaults: DEFAULT_CAPABILITIES,
    all: allCapabilities(),
    add: o.capAdd,
    drop: o.capDrop,
    privileged,
  });
  const security = parseSecurityOpts(o.securityOpt ?? []);
  let seccompText: string | undefined;
  if (typeof security.seccomp === 'object') {
    const file = path.resolve(ctx.cwd, security.seccomp.file);
    seccompText = await fs.readFile(file, 'utf8').catch((e: Error) => {
      throw new TsrunError('ERR_USAGE', `opening seccomp profile (${file}) failed: ${e.message}`);
    });
    security.seccomp = { file };
  }
  const ipc = parseIpcMode(o.ipc);
  const pid = parsePidMode(o.pid);
  const uts = parseUtsMode(o.uts);
  if (ctx.rootless) {
    const refuse = (flag: string) =>
      new TsrunError(
        'ERR_ROOTLESS',
        `rootless mode: ${flag} is not possible: the host's namespace belongs to the host's user namespace, in which tsrun has no privileges (its /proc or mqueue cannot be mounted)`,
        {
          hint: "drop the flag, share another container's namespace with container:NAME, or run tsrun as root",
        },
      );
    if (pid.mode === 'host') throw refuse('--pid host');
    if (ipc.mode === 'host') throw refuse('--ipc host');
  }
  const devices = (o.device ?? []).flatMap(resolveDevice);
  const binds: BindMount[] = [];
  const tmpfs: TmpfsMount[] = (o.tmpfs ?? []).map(parseTmpfs);
  const volumes: VolumeMount[] = [];
  for (const m of (o.mount ?? []).map((s) => parseMount(s, ctx.cwd))) {
    if (m.type === 'tmpfs') {
      tmpfs.push({ destination: m.destination, options: m.options ?? [] });
      continue;
    }
    if (m.type === 'volume') {
      volumes.push(volumeFromMount(m));
      continue;
    }
    const source = m.source ?? '';
    if (!existsSync(source))
      throw new TsrunError(
        'ERR_USAGE',
        `invalid mount config for type "bind": bind source path does not exist: ${source}`,
        { hint: 'create it first (unlike -v, --mount does not)' },
      );
    binds.push({
      source,
      destination: m.destination,
      readonly: m.readonly,
      propagation: m.propagation,
      nonRecursive: m.nonRecursive,
    });
  }
  const rlimits = (o.ulimit ?? []).map(parseUlimit);
  withRlimits(rlimits);
  const shmSize = o.shmSize !== undefined ? parseMemory(o.shmSize) : undefined;
  withShmSize(shmSize);
  const sysctl = parseSysctls(o.sysctl ?? [], { hostNetwork: ctx.network === 'host', hostIpc: ipc.mode === 'host' });
  let oomScoreAdj: number | undefined;
  if (o.oomScoreAdj !== undefined) {
    oomScoreAdj = Number(o.oomScoreAdj);
    if (!/^-?\d+$/.test(o.oomScoreAdj))
      throw new TsrunError('ERR_USAGE', `invalid argument "${o.oomScoreAdj}" for "--oom-score-adj" flag`);
    withOomScoreAdj(oomScoreAdj);
  }
  const initBinary = o.init ? findInit() : undefined;
  return {
    privileged,
    caps,
    security,
    seccompText,
    devices,
    ipc,
    pid,
    uts,
    binds,
    tmpfs,
    volumes,
    rlimits,
    initBinary,
    shmSize,
    sysctl,
    oomScoreAdj,
    groupAdd: o.groupAdd ?? [],
  };
}

/** --group-add names → gids from the container's /etc/group (numbers pass as they are). */
export function groupIds(names: readonly string[], groupText: string | undefined): number[] {
  const groups = parseGroup(groupText ?? '');
  return names.map((n) => {
    if (/^\d+$/.test(n)) return Number(n);
    const g = groups.find((x) => x.name === n);
    if (!g)
      throw new TsrunError('ERR_USAGE', `Unable to find group ${n}: no matching entries in group file`, {
        hint: "give a gid, or a group the image's /etc/group has",
      });
    return g.gid;
  });
}

/**
 * Whether this kernel runs x32 and 32-bit system calls (seccompFromProfile leaves an arch out
 * where not); null: cannot tell.
 */
function abis(): { x32: boolean | null; ia32: boolean | null } {
  if (process.arch !== 'x64') return { x32: null, ia32: null };
  try {
    const n = native();
    return { x32: n.x32Abi(), ia32: n.ia32Abi() };
  } catch {
    return { x32: null, ia32: null };
  }
}

/** The seccomp profile for a container: none (privileged, unconfined, or no profile on this host), the file given, or the distribution's. */
export function seccompFor(
  f: HostFlags,
  report: (msg: string) => void,
): ReturnType<typeof seccompFromProfile> | undefined {
  if (f.privileged || f.security.seccomp === 'unconfined') return undefined;
  // The kernel's ABIs are probed (a vfork) only for a profile that is used.
  const host = (source: string) => ({ caps: f.caps, arch: process.arch, kernel: os.release(), ...abis(), source });
  if (f.seccompText !== undefined && typeof f.security.seccomp === 'object') {
    return seccompFromProfile(f.seccompText, host(f.security.seccomp.file));
  }
  for (const file of SECCOMP_PROFILES) {
    const text = readText(file);
    if (text !== undefined) return seccompFromProfile(text, host(file));
  }
  report(
    `no seccomp profile found (${SECCOMP_PROFILES.join(', ')}): running without seccomp; install golang-github-containers-common`,
  );
  return undefined;
}

/** The option functions for these flags (the joins of container:NAME are applied at each start). */
export function hostSpecOpts(
  f: HostFlags,
  o: { rootless: boolean; gids: number[]; argv: string[]; shmPath: string; report: (msg: string) => void },
): SpecOpt[] {
  const apparmor = readText('/sys/module/apparmor/parameters/enabled')?.trim() === 'Y';
  const opts: SpecOpt[] = [
    withCapabilities(f.caps),
    withSecurityOpts(f.security, { apparmor }),
    withSeccomp(seccompFor(f, o.report)),
  ];
  if (f.privileged) opts.push(withPrivileged(o.rootless ? [] : devicesUnder('/dev', '/dev')));
  opts.push(withDevices(f.devices), withIpcMode(f.ipc, { shmPath: o.shmPath }), withPidMode(f.pid));
  if (f.uts === 'host') opts.push(withUtsHost());
  if (f.rlimits.length > 0) opts.push(withRlimits(f.rlimits));
  opts.push(withShmSize(f.shmSize), withSysctls(f.sysctl), withOomScoreAdj(f.oomScoreAdj), withGroupAdd(o.gids));
  if (f.initBinary) opts.push(withInit(f.initBinary, o.argv));
  return opts;
}

/** What start needs to join another container's namespaces again (its pid changes at each start). */
export interface Joins {
  ipc?: string;
  pid?: string;
}

/** container:NAME → the container's id now (it must exist; Docker checks at create). */
export async function resolveJoins(env: Env, f: HostFlags): Promise<Joins | undefined> {
  const joins: Joins = {};
  if (f.ipc.mode === 'container') joins.ipc = (await env.containers.find(f.ipc.container)).record.id;
  if (f.pid.mode === 'container') joins.pid = (await env.containers.find(f.pid.container)).record.id;
  return joins.ipc || joins.pid ? joins : undefined;
}

/** Where a shareable container's /dev/shm tmpfs is mounted on the host. */
export function shmHostPath(p: Pick<ContainerPaths, 'dir'>): string {
  return path.join(p.dir, 'shm');
}

/**
 * Mounts tsrun makes on the host for a container while it runs (unmounted by cleanup). mount(2)
 * gets data only here: nosuid, noexec and nodev are set where the container binds it.
 */
export function hostMounts(r: ContainerRecord, p: Pick<ContainerPaths, 'dir'>): Mount[] {
  if (r.host.extra?.IpcMode !== 'shareable') return [];
  const size = typeof r.host.extra.ShmSize === 'number' ? r.host.extra.ShmSize : 64 * 1024 * 1024;
  return [{ type: 'tmpfs', source: 'shm', target: shmHostPath(p), options: ['mode=1777', `size=${size}`] }];
}

/**
 * At each start, before the runtime sees config.json: mount the host side of a shareable
 * /dev/shm, and point the namespaces of --ipc/--pid container:NAME at that container's pid now.
 */
export async function prepareStart(env: Env, r: ContainerRecord, p: ContainerPaths): Promise<void> {
  const mounts = hostMounts(r, p);
  for (const m of mounts) await fs.mkdir(m.target, { recursive: true, mode: 0o700 });
  if (mounts.length > 0 && !isMounted(mounts[0]?.target ?? '')) await mountAll(mounts);
  const joins = r.host.joins;
  if (!joins) return;
  const configFile = path.join(p.bundle, 'config.json');
  const spec = parseSpec(await fs.readFile(configFile, 'utf8'));
  const donor = async (id: string, what: string) => {
    const c = await env.containers.find(id).catch(() => undefined);
    if (!c || c.observed.status !== 'running' || !(c.observed.pid > 0)) {
      throw new TsrunError(
        'ERR_CONTAINER_STATE',
        `cannot join ${what} of a non running container: ${c?.record.name ?? id.slice(0, 12)}`,
        { hint: 'start that container first' },
      );
    }
    return c;
  };
  if (joins.ipc) {
    const c = await donor(joins.ipc, 'IPC');
    const mode = c.record.host.extra?.IpcMode;
    if (mode === 'host') withIpcMode({ mode: 'host' })(spec);
    else if (mode === 'shareable')
      withIpcMode(
        { mode: 'container', container: joins.ipc },
        { nsPath: `/proc/${c.observed.pid}/ns/ipc`, shmPath: shmHostPath(c.paths) },
      )(spec);
    else {
      throw new TsrunError(
        'ERR_CONTAINER_STATE',
        `container ${c.record.name}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`,
        {
          hint: `run ${c.record.name} with --ipc shareable`,
        },
      );
    }
  }
  if (joins.pid) {
    const c = await donor(joins.pid, 'PID');
    withPidMode({ mode: 'container', container: joins.pid }, { nsPath: `/proc/${c.observed.pid}/ns/pid` })(spec);
  }
  await fs.writeFile(configFile, serializeSpec(spec));
}

/** --label-file: Docker reads it like an env file (KEY=VALUE lines, # comments). */
export async function readLabelFiles(files: readonly string[]): Promise<Record<string, string>> {
  const list: string[] = [];
  for (const f of files) {
    const text = await fs.readFile(f, 'utf8').catch((e: Error) => {
      throw new TsrunError('ERR_USAGE', `reading label file ${f}: ${e.message}`);
    });
    list.push(...parseEnvFile(text, f));
  }
  return parseLabels(list);
}

/** --cidfile: refused when the file exists, as Docker ("Container ID file found ..."). */
export async function checkCidfile(file: string | undefined): Promise<void> {
  if (file && existsSync(file)) {
    throw new TsrunError(
      'ERR_USAGE',
      `Container ID file found, make sure the other container isn't running or delete ${file}`,
    );
  }
}
