/**
 * Container records and their observed state.
 *
 * A record (`container.json`) is what `run` decided: image, command, config, host options. It is
 * written atomically and changed only under the container's lock (`locks/ctr-<id>.lock`), by
 * create, start and cleanup. What the container is *doing* is never stored as a guess: it is
 * observed from the volatile state the monitor keeps (paths.ts), so a killed CLI or a reboot
 * cannot leave a record that says "running" about a dead container.
 *
 *   exit file present                      → exited (code and time from the monitor)
 *   monitor alive, start recorded          → running
 *   monitor alive, not started             → created
 *   no monitor, no exit file (crash/reboot)→ the last state the record kept, else exited (255)
 *
 * Names: `names/<name>` is a symlink to the id, made with symlink(2), which fails if it exists,
 * so two concurrent `run --name x` cannot both win. Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { native, withFileLock, withFileLockIfFree } from '../native/index.js';
import { removeTree, writeFileAtomic } from '../util/fs.js';
import { quickFs } from '../util/fs-quick.js';
import { parseChecked, setAside, setAsideSync } from '../util/corrupt.js';
import type { BindMount } from '../spec/options.js';
import type { VolumeRef } from '../spec/volumes.js';
import type { ExtraHost, NetworkInfo, PortMapping } from '../oci/network.js';
import type { OverlayDriver } from '../snapshot/overlay.js';
import type { HealthConfig } from './health.js';
import { containerPaths, type ContainerPaths, type StorePaths } from './paths.js';

export interface ContainerRecord {
  id: string;
  name: string;
  /** The image as the user named it, and its id. */
  image: string;
  imageId: string;
  /** Chain ids of the image's layers, bottom first: garbage collection keeps these. */
  layers: string[];
  created: string;
  path: string;
  args: string[];
  config: {
    hostname: string;
    env: string[];
    cwd: string;
    user: string;
    tty: boolean;
    openStdin: boolean;
    entrypoint: string[] | null;
    cmd: string[] | null;
    labels: Record<string, string>;
    exposedPorts: string[];
    stopSignal?: string;
    /** --stop-timeout: seconds `stop` waits when not told (Docker: 10). */
    stopTimeout?: number;
    /** The image's HEALTHCHECK merged with --health-* (runtime/health.ts), and the image's SHELL for it. */
    healthcheck?: HealthConfig;
    shell?: string[];
  };
  host: {
    autoRemove: boolean;
    binds: BindMount[];
    /** Named and anonymous volumes (app/volumes.ts); absent when none. */
    volumes?: VolumeRef[];
    readonly: boolean;
    network: string;
    /** `--add-host` entries (host-gateway resolved at each start; network/extra-hosts.ts). */
    extraHosts?: ExtraHost[];
    /** `-p`/`-P` as asked (host port 0: any free one, chosen at each start). */
    ports?: PortMapping[];
    runtime: string;
    /**
     * How the root filesystem is made (snapshot/overlay.ts). An upper directory is only readable
     * by the driver that wrote it, so a container keeps its driver when the rootless namespace
     * later probes or is told another. Absent in records written before it was kept: the
     * current driver.
     */
    storage?: OverlayDriver;
    memory?: number;
    cpus?: number;
    pidsLimit?: number;
    /** --mac-address (bridge only). */
    macAddress?: string;
    /** User networks (`--network NAME`, `network connect`), in attach order (app/networks.ts). */
    networks?: UserNetworkRef[];
    /** --restart (app/restart.ts). */
    restartPolicy?: { Name: 'no' | 'always' | 'unless-stopped' | 'on-failure'; MaximumRetryCount: number };
    /** --ipc/--pid container:NAME, by id: their namespaces are joined again at each start. */
    joins?: { ipc?: string; pid?: string };
    /** The rest of the host flags, as Docker's HostConfig names them, for inspect. */
    extra?: Record<string, unknown>;
  };
  /** Filled by start and cleanup; kept so a reboot does not forget how a container ended. */
  state: {
    startedAt?: string;
    finishedAt?: string;
    exitCode?: number;
    /** An error from the runtime when the container could not start (Docker's State.Error). */
    error?: string;
    /** What the bridge gave the container at its last start (address, published ports). */
    network?: NetworkInfo;
    /** Per user network (by name): what its last attach gave the container. */
    networks?: Record<string, NetworkInfo>;
  };
  restartCount: number;
}

/** One user network a container is on: the network's id and name, `--network-alias`, `--ip`. */
export interface UserNetworkRef {
  id: string;
  name: string;
  aliases: string[];
  ip?: string;
}

export type Status = 'created' | 'running' | 'exited';

export interface Observed {
  status: Status;
  /** The container's init pid, while running. */
  pid: number;
  exitCode: number;
  startedAt?: string;
  finishedAt?: string;
  monitorPid: number;
  /** Running but frozen by `tsrun pause` (its marker in the volatile state dir, see pausedMarker). */
  paused?: boolean;
}

export interface Container {
  record: ContainerRecord;
  paths: ContainerPaths;
  observed: Observed;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TsrunError('ERR_USAGE', `invalid container name "${name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, {
      hint: 'names start with a letter or digit and have at least two characters',
    });
  }
}

export class Containers {
  constructor(
    readonly sp: StorePaths,
    private readonly locksDir: string,
  ) {}

  paths(id: string): ContainerPaths {
    return containerPaths(this.sp, id);
  }

  lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(path.join(this.locksDir, `ctr-${id}.lock`), 'ex', fn);
  }

  /** Take `name` for `id`; a taken name is Docker's conflict error. */
  async reserveName(name: string, id: string): Promise<void> {
    checkName(name);
    await quickFs.mkdir(this.sp.names, { recursive: true, mode: 0o700 });
    try {
      await quickFs.symlink(id, path.join(this.sp.names, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = await quickFs.readlink(path.join(this.sp.names, name)).catch(() => '?');
      throw new TsrunError(
        'ERR_NAME_IN_USE',
        `the container name "/${name}" is already in use by container "${owner}"`,
        {
          hint: 'remove (or rename) that container to be able to reuse that name, or choose another with --name',
        },
      );
    }
  }

  async releaseName(name: string, id: string): Promise<void> {
    const link = path.join(this.sp.names, name);
    const owner = await quickFs.readlink(link).catch(() => undefined);
    if (owner === id) await quickFs.rm(link, { force: true });
  }

  async write(record: ContainerRecord): Promise<void> {
    const p = this.paths(record.id);
    await quickFs.mkdir(p.dir, { recursive: true, mode: 0o700 });
    // A --rm container's record goes with it: not synced (a crash leaves at worst a damaged
    // record, set aside on reading, whose directory `system prune` removes).
    await writeFileAtomic(p.record, JSON.stringify(record, null, 1) + '\n', 0o600, {
      volatile: Boolean(record.host.autoRemove),
    });
  }

  /**
   * The record of `id`, or undefined when there is none. A damaged one is set aside
   * (util/corrupt.ts) and reads as none: the container's directory is then an orphan that
   * `system prune` removes (app/orphans.ts).
   */
  async read(id: string): Promise<ContainerRecord | undefined> {
    const file = this.paths(id).record;
    let text: string;
    try {
      text = await quickFs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TsrunError('ERR_STORE', `reading container ${id}: ${(err as Error).message}`, { cause: err });
    }
    const r = parseChecked<ContainerRecord>(text, (v) => checkRecord(v, id));
    if (r.ok) return r.value;
    // Records are replaced atomically: what does not parse now never will, unless replaced meanwhile.
    if ((await quickFs.readFile(file, 'utf8').catch(() => undefined)) === text)
      await setAside(
        file,
        r.problem,
        `container ${id.slice(0, 12)} (run \`tsrun system prune\` to stop it and remove what it left)`,
      );
    return undefined;
  }

  async ids(): Promise<string[]> {
    const names = await quickFs.readdir(this.sp.containers).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n));
  }

  async list(): Promise<Container[]> {
    const out: Container[] = [];
    for (const id of await this.ids()) {
      const record = await this.read(id);
      if (record) out.push(this.observe(record));
    }
    return out.sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  /** By full name, full id, or unique id prefix (Docker's order). */
  async find(query: string): Promise<Container> {
    const q = query.startsWith('/') ? query.slice(1) : query;
    const byName = await quickFs.readlink(path.join(this.sp.names, q)).catch(() => undefined);
    const candidates = byName ? [byName] : (await this.ids()).filter((id) => /^[a-f0-9]+$/.test(q) && id.startsWith(q));
    if (candidates.length > 1) {
      throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `multiple containers match "${query}"`, {
        hint: 'give more characters of the id',
      });
    }
    const record = candidates[0] ? await this.read(candidates[0]) : undefined;
    if (!record) {
      throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${query}`, {
        hint: 'see `tsrun ps -a` for the containers of this store',
      });
    }
    return this.observe(record);
  }

  /**
   * Mark `id` as being made by this process, until the process exits (a flock held shared on
   * `locks/ctr-<id>.create.lock`): between its record being written and its monitor starting, a
   * container looks stopped, and `prune` must not take it from the `run` that is making it.
   */
  async holdCreation(id: string): Promise<void> {
    const fd = openSync(path.join(this.locksDir, `ctr-${id}.create.lock`), 'a', 0o600);
    if (!native().flock(fd, 'sh', true)) {
      closeSync(fd);
      throw new TsrunError('ERR_CONTAINER_STATE', `creating container ${id.slice(0, 12)}: it is being removed`);
    }
    creationHolds.push(fd);
  }

  /** Run fn unless a live process is still making container `id` (holdCreation). */
  async unlessCreating(id: string, fn: () => Promise<void>): Promise<boolean> {
    return (await withFileLockIfFree(path.join(this.locksDir, `ctr-${id}.create.lock`), 'ex', fn)).held;
  }

  async remove(record: ContainerRecord): Promise<void> {
    const p = this.paths(record.id);
    await quickFs.rm(path.join(this.locksDir, `ctr-${record.id}.create.lock`), { force: true });
    await this.releaseName(record.name, record.id);
    // The container's own trees (its changes, its log, a whole copied root where there is no
    // overlayfs) side by side, each at once when small, else on the thread pool (removeTree);
    // then what is left: its runtime state and record, tsrun's own few small files.
    await Promise.all([p.upper, p.work, p.rootfs, p.log].map((d) => removeTree(d)));
    await removeTree(p.state);
    await removeTree(p.dir);
    await quickFs.rm(path.join(this.locksDir, `ctr-${record.id}.lock`), { force: true });
  }

  observe(record: ContainerRecord): Container {
    const paths = this.paths(record.id);
    return { record, paths, observed: observe(record, paths) };
  }
}

/** Creation locks of this process: open until it exits. */
const creationHolds: number[] = [];

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Is `pid` a live tsrun-monitor for this container? (A pid alone may have been reused.) */
export function monitorAlive(pid: number, id: string): boolean {
  if (!(pid > 0)) return false;
  const cmdline = readText(`/proc/${pid}/cmdline`);
  return cmdline !== undefined && cmdline.includes('tsrun-monitor') && cmdline.includes(id);
}

/**
 * Owned by a live monitor: running, or created and waiting for `runtime start`. Such a container
 * may not be cleaned up or removed without being killed first; anything else is stopped.
 */
export function isActive(o: Observed): boolean {
  return o.status === 'running' || (o.status === 'created' && o.monitorPid > 0);
}

/** Written by `pause`, removed by `unpause`; the state dir (and so the marker) goes with the run. */
export function pausedMarker(p: ContainerPaths): string {
  return path.join(p.state, 'paused');
}

export function observe(record: ContainerRecord, p: ContainerPaths): Observed {
  const base = { startedAt: record.state.startedAt, finishedAt: record.state.finishedAt };
  const exitText = readText(p.exitFile);
  const e = exitText === undefined ? undefined : exitRecord(exitText, p.exitFile);
  if (e) {
    return {
      status: 'exited',
      pid: 0,
      exitCode: e.exitCode,
      startedAt: base.startedAt,
      finishedAt: e.finishedAt,
      monitorPid: 0,
    };
  }
  const monitorPid = Number(readText(path.join(p.state, 'monitor.pid')) ?? 0);
  if (monitorAlive(monitorPid, record.id)) {
    const started = readText(path.join(p.state, 'started'));
    const pid = Number(readText(path.join(p.state, 'pid')) ?? 0);
    if (started !== undefined) {
      const paused = readText(pausedMarker(p)) !== undefined;
      return {
        status: 'running',
        pid,
        exitCode: 0,
        startedAt: started.trim(),
        finishedAt: base.finishedAt,
        monitorPid,
        ...(paused ? { paused } : {}),
      };
    }
    return { status: 'created', pid, exitCode: 0, monitorPid };
  }
  // Never started, or its only start failed (Docker lists that Created, with the error's exit code).
  if (!record.state.startedAt)
    return { status: 'created', pid: 0, exitCode: record.state.exitCode ?? 0, monitorPid: 0 };
  return { status: 'exited', pid: 0, exitCode: record.state.exitCode ?? 255, ...base, monitorPid: 0 };
}

/** The monitor's exit file, or undefined (set aside) when damaged: the container then reads as crashed. */
function exitRecord(text: string, file: string): { exitCode: number; finishedAt: string } | undefined {
  const r = parseChecked<{ exitCode: number; finishedAt: string }>(text, (v) => {
    const e = v as { exitCode?: unknown; finishedAt?: unknown } | null;
    return e && typeof e === 'object' && Number.isInteger(e.exitCode) && typeof e.finishedAt === 'string'
      ? undefined
      : 'not an exit record';
  });
  if (r.ok) return r.value;
  setAsideSync(file, r.problem, 'how the container exited');
  return undefined;
}

/** A cheap structural check of container.json (our own file: guards against damage, not attack). */
export function checkRecord(v: unknown, id: string): string | undefined {
  const r = v as Partial<ContainerRecord> | null;
  if (!r || typeof r !== 'object') return 'not an object';
  if (r.id !== id) return `its id is not ${id}`;
  if (typeof r.name !== 'string' || typeof r.image !== 'string' || typeof r.imageId !== 'string')
    return 'name or image missing';
  if (!Array.isArray(r.layers) || !r.layers.every((l) => typeof l === 'string')) return 'layers missing';
  if (typeof r.created !== 'string' || typeof r.path !== 'string' || !Array.isArray(r.args)) return 'command missing';
  if (!r.config || typeof r.config !== 'object' || !Array.isArray(r.config.env)) return 'config missing';
  if (!r.host || typeof r.host !== 'object' || !Array.isArray(r.host.binds) || typeof r.host.network !== 'string')
    return 'host options missing';
  if (!r.state || typeof r.state !== 'object') return 'state missing';
  return undefined;
}
