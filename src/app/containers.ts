/**
 * Container lifecycle use cases: start, cleanup, stop, kill, wait, rm, prune (Docker's views of a
 * container are in container-views.ts, ps rows in ps.ts).
 * `run` (run.ts) creates a container and then uses `startContainer` like `tsrun start` does.
 *
 * Contracts:
 * - Every change to a container happens under its lock (records.ts), so the monitor's exit
 *   command, an attached CLI and a concurrent `rm -f` can all try to clean up: the first does
 *   it, the others find nothing to do (`cleanupContainer` is idempotent).
 * - A container that is not running has no mount and no runtime state: cleanup unmounts the
 *   root, deletes the runtime's container and, for `--rm`, removes record, name and directories.
 * - Creating a container holds the store's shared lock, and garbage collection keeps every layer
 *   a container record names, so `rmi` can never pull layers from under a container.
 */
import { closeSync } from 'node:fs';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import { TsrunError } from '../errors.js';
import { unmountAll } from '../snapshot/overlay.js';
import { isActive, type Container, type ContainerRecord } from '../runtime/records.js';
import { locateRuntime, OciRuntime, runtimeKnows } from '../runtime/oci-runtime.js';
import { attach, spawnMonitor, type Attachment } from '../runtime/monitor.js';
import { startGate, type Gate } from '../runtime/gate.js';
import { cliEntry } from '../util/project.js';
import { attachNetwork, detachNetwork } from '../network/attach.js';
import { slirpFailure, type SlirpHandoff } from '../network/slirp.js';
import type { PortMapping } from '../network/ports.js';
import type { NetworkInfo } from '../network/bridge.js';
import { assignHostPorts } from '../network/ports.js';
import { hostsFile } from '../network/etc-files.js';
import { extraHostLines, hostAddress } from '../network/extra-hosts.js';
import { cleanupSteps } from './container-events.js';
import { attachUserNetworks, detachUserNetworks, joinUserNetworks, onUserNetworks } from './networks.js';
import { markStopped, restartIfPolicy } from './restart.js';
import { hostMounts, prepareStart } from './run-host.js';
import { removeAnonymousVolumes } from './volumes.js';
import { healthForStart } from './healthcheck.js';
import { removeTree, writeFileAtomic } from '../util/fs.js';
import { quickFs } from '../util/fs-quick.js';
import { containerDirs, nextChange } from '../runtime/watch.js';
import type { Env } from './env.js';
import { ensureMounted, rootfsMount } from './container-mount.js';

export { openEnv, type Env } from './env.js';
export { ensureMounted, isMounted, overlayDriver, rootfsMount, storageDriver } from './container-mount.js';

export async function runtimeFor(env: Env, name: string): Promise<OciRuntime> {
  const info = await locateRuntime(name, env.ctx.env, env.containers.sp.run);
  return new OciRuntime(info, env.containers.sp.runtimeRoot, env.ctx.reporter);
}

/** Undo what start connected: the bridge or user networks (root, each idempotent) or slirp4netns (rootless). */
function disconnectNetwork(env: Env, id: string): Promise<void> {
  const t = { id, rootless: env.ctx.rootless, runDir: env.containers.sp.run };
  if (env.ctx.rootless) return detachNetwork(t, env.ctx.env, env.ctx.reporter);
  // User endpoints first: a bridge container's are in the bridge's namespace, which goes last.
  return detachUserNetworks(env, id).then(
    () => detachNetwork(t, env.ctx.env, env.ctx.reporter),
    async (err: unknown) => {
      await detachNetwork(t, env.ctx.env, env.ctx.reporter);
      throw err;
    },
  );
}

/** The container has a network namespace tsrun made (the bridge or user networks). */
function ownNetns(record: ContainerRecord): boolean {
  return record.host.network === 'bridge' || onUserNetworks(record);
}

/** The argv the monitor runs after the container exits: `tsrun container cleanup ID`. */
function exitCommand(env: Env, id: string): string[] {
  return [process.execPath, '--', cliEntry(), '--root', env.store.root, 'container', 'cleanup', id];
}

export interface StartOptions {
  /** Attach before the container starts (so no output is lost); called with the attachment. */
  attachIo?: (a: Attachment) => void;
}

/**
 * Start a created or exited container: mount its root, hand the bundle to a new monitor (which
 * runs `runtime create`), optionally attach, then `runtime start`. On failure nothing is left
 * mounted or running, the record keeps the error, and an `--rm` container is removed.
 */
export async function startContainer(env: Env, c: Container, o: StartOptions = {}): Promise<Attachment | undefined> {
  const { record, paths } = c;
  let attachment: Attachment | undefined;
  await env.containers.lock(record.id, async () => {
    const now = env.containers.observe(record);
    if (now.observed.status === 'running') {
      throw new TsrunError('ERR_CONTAINER_STATE', `starting container ${record.name}: it is already running`);
    }
    let runtime: OciRuntime | undefined;
    let network: NetworkInfo | undefined;
    let networks: Record<string, NetworkInfo> | undefined;
    // The networks' plugins run while the monitor's `runtime create` joins the namespace.
    let attaching: Promise<NetworkInfo | undefined> | undefined;
    let bridgePorts: PortMapping[] | undefined;
    // Rootless: slirp4netns's lifeline, handed to the monitor (which keeps slirp4netns alive),
    // and without ports its ready fd (the monitor starts the container once slirp4netns is up).
    let handoff: SlirpHandoff | undefined;
    let gate: Gate | undefined;
    const closeHandoff = () => {
      for (const fd of [handoff?.lifeline, handoff?.ready]) if (fd !== undefined) closeSync(fd);
      handoff = undefined;
    };
    try {
      runtime = await runtimeFor(env, record.host.runtime);
      // A container that ran before may have left the runtime's record behind (a crash).
      if ((record.state.startedAt || record.state.finishedAt) && runtimeKnows(runtime.root, record.id))
        await runtime.delete(record.id, true);
      // The runtime state of an earlier run.
      await removeTree(paths.state);
      await env.store.withSharedLock(() => ensureMounted(env, c));
      if (record.host.network === 'bridge') {
        const ports = await assignHostPorts(record.host.ports ?? []);
        bridgePorts = ports;
        let netnsMade = (): void => {};
        const netnsReady = new Promise<void>((resolve) => (netnsMade = resolve));
        attaching = attachNetwork({
          id: record.id,
          rootless: env.ctx.rootless,
          runDir: env.containers.sp.run,
          storeRoot: env.store.root,
          ports,
          env: env.ctx.env,
          mac: record.host.macAddress,
          hosts: {
            file: path.join(paths.etc, 'hosts'),
            hostname: record.config.hostname,
            extraHosts: record.host.extraHosts ?? [],
          },
          reporter: env.ctx.reporter,
          // Nothing between the runtime's create and start then: one `runtime run` in the monitor.
          handReady: env.ctx.rootless && !ports.length && !env.ctx.reporter.detailed,
          onNetns: (h) => {
            handoff = h;
            netnsMade();
          },
        });
        attaching.catch(() => {}); // awaited below (and, on failure, before the cleanup)
        await Promise.race([netnsReady, attaching]);
        // An explanation (--debug, --explain) tells the steps in order: the network before the create.
        if (env.ctx.reporter.detailed) await attaching;
        // Connected to user networks too (`network connect`, testcontainers' withNetworkAliases):
        // they join the bridge's namespace once its attachment is made.
        if (!env.ctx.rootless && record.host.networks?.length) {
          network = await attaching;
          networks = await joinUserNetworks(env, record);
        }
      } else if (onUserNetworks(record)) {
        const ports = await assignHostPorts(record.host.ports ?? []);
        bridgePorts = ports;
        let netnsMade = (): void => {};
        const netnsReady = new Promise<void>((resolve) => (netnsMade = resolve));
        attaching = attachUserNetworks(env, record, ports, () => netnsMade()).then(async (user) => {
          ({ first: network, all: networks } = user);
          const extra = extraHostLines(record.host.extraHosts ?? [], network?.gateway ?? hostAddress());
          await quickFs.writeFile(path.join(paths.etc, 'hosts'), hostsFile(record.config.hostname, network?.ip, extra));
          return network;
        });
        attaching.catch(() => {}); // awaited below (and, on failure, before the cleanup)
        await Promise.race([netnsReady, attaching]);
        // An explanation (--debug, --explain) tells the steps in order: the network before the create.
        if (env.ctx.reporter.detailed) await attaching;
      }
      await prepareStart(env, record, paths);
      // A network being attached (root's bridge or user networks; rootless with ports, whose
      // forwards are added once slirp4netns is up): the runtime holds the process back until it
      // is (runtime/gate.ts), so one runtime process creates and starts it. (Rootless without
      // ports, the monitor itself waits for slirp4netns's ready fd.)
      if (attaching && handoff?.ready === undefined)
        gate = await startGate({
          stateDir: paths.state,
          configFile: paths.config,
          runtimeName: runtime.info.name,
          attaching,
        });
      const publish = env.ctx.rootless
        ? undefined
        : (network?.ports ?? bridgePorts)?.map((p) => `${p.protocol}:${p.hostIP}:${p.hostPort}`);
      // With nothing to do between the runtime's create and start (a network must be up before the
      // command runs) the monitor does both, in one runtime process; an attached caller attaches
      // before it, so it sees the first byte. An explanation (--debug, --explain) tells create
      // and start as two steps: it gets two runtime calls.
      // (rootless without ports: the monitor waits for slirp4netns's ready fd itself; root with a
      // network otherwise: the runtime waits at the gate's hook)
      const oneStep = (!attaching || handoff?.ready !== undefined || gate !== undefined) && !env.ctx.reporter.detailed;
      const attachIo = o.attachIo;
      const monitor = await spawnMonitor({
        id: record.id,
        bundle: paths.bundle,
        state: paths.state,
        runtimePath: runtime.info.path,
        runtimeRoot: runtime.root,
        log: paths.log,
        tty: record.config.tty,
        stdin: record.config.openStdin,
        // The monitor holds published ports for the bridge; slirp4netns binds its own.
        publish,
        exitCommand: exitCommand(env, record.id),
        health: await healthForStart(c),
        reporter: env.ctx.reporter,
        ...(handoff ? { keepOpen: handoff.lifeline } : {}),
        ...(handoff?.ready !== undefined ? { readyFd: handoff.ready } : {}),
        start: oneStep,
        // An attached `run --rm` without a tty: the runtime runs in the foreground for the
        // container's life and deletes it itself (no `runtime delete` after the exit).
        foreground: oneStep && Boolean(attachIo) && record.host.autoRemove && !record.config.tty,
        attachFirst:
          oneStep && attachIo
            ? async () => {
                attachment = await attach(paths.attachSocket);
                attachIo(attachment);
              }
            : undefined,
      });
      closeHandoff();
      gate?.close();
      env.ctx.reporter.emit({
        type: 'container-start',
        id: record.id,
        pid: monitor.pid,
        monitorPid: monitor.monitorPid,
        ports: publish ?? [],
        log: paths.log,
      });
      // (user networks: `networks` is set when `attaching` resolves)
      if (attaching) network = await attaching;
      if (!oneStep) {
        if (attachIo) {
          attachment = await attach(paths.attachSocket);
          attachIo(attachment);
        }
        await runtime.start(record.id);
      }
      const startedAt = new Date().toISOString();
      await writeFileAtomic(path.join(paths.state, 'started'), startedAt, 0o644, { volatile: true });
      // Docker keeps the last FinishedAt while the container runs again.
      record.state = {
        startedAt,
        ...(record.state.finishedAt ? { finishedAt: record.state.finishedAt } : {}),
        ...(network ? { network } : {}),
        ...(networks ? { networks } : {}),
      };
      await env.containers.write(record);
    } catch (caught) {
      let err = caught;
      attachment?.close();
      const handedReady = handoff?.ready !== undefined;
      closeHandoff();
      gate?.close();
      // A network that failed is the cause (the runtime then fails too: its namespace is gone).
      const netErr: unknown = await attaching?.then(
        () => undefined,
        (e: unknown) => e,
      );
      if (netErr) err = netErr;
      // The monitor found slirp4netns's ready fd closed: slirp4netns's own error says why.
      else if (handedReady) err = (await slirpFailure(record.id, env.containers.sp.run)) ?? err;
      await runtime?.delete(record.id, true).catch(() => {});
      if (ownNetns(record)) await disconnectNetwork(env, record.id).catch(() => {});
      await unmountAll([rootfsMount(env, c), ...hostMounts(record, paths)]).catch(() => {});
      await removeTree(paths.state);
      const detail = (err as TsrunError).detail;
      const code = typeof detail?.exitCode === 'number' ? detail.exitCode : 125;
      if (record.host.autoRemove) {
        await env.containers.remove(record);
        await removeAnonymousVolumes(env, record);
      } else {
        // A container that never ran stays Created (Docker), with the error and its exit code.
        record.state = {
          ...record.state,
          error: (err as Error).message,
          exitCode: code,
          ...(record.state.startedAt ? { finishedAt: new Date().toISOString() } : {}),
        };
        await env.containers.write(record).catch(() => {});
      }
      throw err;
    }
  });
  return attachment;
}

/**
 * After the container's exit: keep how it ended in the record, delete the runtime's container,
 * unmount the root; with `--rm` (or `remove`) remove everything. Idempotent; a running container
 * is left alone.
 */
export async function cleanupContainer(
  env: Env,
  id: string,
  o: { remove?: boolean; removeVolumes?: boolean } = {},
): Promise<void> {
  await env.containers.lock(id, () => cleanupLocked(env, id, o));
  if (!o.remove) await restartIfPolicy(env, id);
}

/** `cleanupContainer`'s work, for a caller that already holds the container's lock. */
async function cleanupLocked(env: Env, id: string, o: { remove?: boolean; removeVolumes?: boolean }): Promise<void> {
  const record = await env.containers.read(id);
  if (!record) return;
  const c = env.containers.observe(record);
  if (isActive(c.observed)) return;
  if (c.observed.finishedAt) {
    record.state = { ...record.state, exitCode: c.observed.exitCode, finishedAt: c.observed.finishedAt };
    env.ctx.reporter.emit({
      type: 'container-exit',
      id,
      exitCode: c.observed.exitCode,
      finishedAt: c.observed.finishedAt,
    });
  }
  // A monitor that started the container itself deletes the runtime's container before it
  // writes the exit file: then nothing is left to delete (the runtime's state dir is gone), and
  // the runtime is not run at all.
  // A runtime that cannot be found now never created anything to delete.
  const runtime = runtimeKnows(env.containers.sp.runtimeRoot, id)
    ? await runtimeFor(env, record.host.runtime).catch(() => undefined)
    : undefined;
  // The runtime's container, the network and the root do not depend on each other: they are
  // undone side by side (each step is idempotent, so a failed one is retried by the next cleanup).
  // A plugin failure must not keep the rest in place: finish, then report it (the network's
  // record stays, so `tsrun system prune` can try again).
  const [deleted, disconnected, unmounted] = await Promise.allSettled([
    runtime?.delete(id, true),
    ownNetns(record) ? disconnectNetwork(env, id) : undefined,
    unmountAll([rootfsMount(env, c), ...hostMounts(record, c.paths)]),
  ]);
  for (const e of cleanupSteps(id, [
    // Deleted by us or, before the exit, by the monitor: either way it is gone.
    ['runtime-delete', [id], deleted],
    ['network', ownNetns(record) ? [record.host.network] : [], disconnected],
    ['unmount', [c.paths.rootfs, ...hostMounts(record, c.paths).map((m) => m.target)], unmounted],
  ]))
    env.ctx.reporter.emit(e);
  if (deleted.status === 'rejected') throw deleted.reason;
  if (unmounted.status === 'rejected') throw unmounted.reason;
  const netError = disconnected.status === 'rejected' ? (disconnected.reason as unknown) : undefined;
  if (record.host.autoRemove || o.remove) {
    await env.containers.remove(record);
    env.ctx.reporter.emit({ type: 'cleanup-step', id, step: 'state-dir', targets: [c.paths.state, c.paths.dir] });
    // `run --rm` and `rm -v`: the anonymous volumes go too (named ones never).
    if (record.host.autoRemove || o.removeVolumes) await removeAnonymousVolumes(env, record);
  } else {
    await env.containers.write(record);
    await quickFs.mkdir(c.paths.state, { recursive: true, mode: 0o700 });
    await quickFs.writeFile(path.join(c.paths.state, 'cleaned'), '');
  }
  env.ctx.reporter.emit({ type: 'container-cleanup', id, removed: Boolean(record.host.autoRemove || o.remove) });
  if (netError) throw netError;
}

/** Wait until the container is no longer running (exit file written); false on timeout. Woken by the change (runtime/watch.ts). */
export async function waitExited(env: Env, id: string, timeoutMs = Infinity): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const dirs = containerDirs(env.containers.sp, env.containers.paths(id));
  for (;;) {
    const w = nextChange(dirs, Math.min(200, Math.max(1, deadline - Date.now())));
    try {
      const record = await env.containers.read(id);
      if (!record) return true;
      if (!isActive(env.containers.observe(record).observed)) return true;
      if (Date.now() >= deadline) return false;
      await w.changed;
    } finally {
      w.close();
    }
  }
}

export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  if (/^\d+$/.test(sig)) return Number(sig);
  const name = (
    sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`
  ) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined)
    throw new TsrunError('ERR_USAGE', `invalid signal: ${sig}`, {
      hint: 'use a name like SIGTERM, TERM or a number like 15',
    });
  return n;
}

function running(c: Container): boolean {
  return c.observed.status === 'running';
}

/**
 * `stop`: the stop signal (`-s`, else --stop-signal, else SIGTERM), then SIGKILL after `timeoutSec`
 * (else --stop-timeout, else 10 s); then clean up. A stopped container is not restarted by its policy.
 */
export async function stopContainer(env: Env, query: string, timeoutSec?: number, signal?: string): Promise<void> {
  const c = await env.containers.find(query);
  if (signal !== undefined) signalNumber(signal);
  if (running(c)) {
    const runtime = await runtimeFor(env, c.record.host.runtime);
    const sig = signal || c.record.config.stopSignal || 'SIGTERM';
    timeoutSec ??= c.record.config.stopTimeout ?? 10;
    let killed = false;
    await markStopped(c.paths);
    await runtime.kill(c.record.id, sig).catch(() => {});
    if (!(await waitExited(env, c.record.id, timeoutSec * 1000))) {
      await runtime.kill(c.record.id, 'SIGKILL').catch(() => {});
      await waitExited(env, c.record.id, 30_000);
      killed = true;
    }
    env.ctx.reporter.emit({ type: 'container-stop', id: c.record.id, signal: sig, timeoutSec, killed });
  }
  await cleanupContainer(env, c.record.id);
}

export async function killContainer(env: Env, query: string, signal = 'SIGKILL'): Promise<void> {
  const c = await env.containers.find(query);
  signalNumber(signal);
  if (!running(c)) {
    throw new TsrunError(
      'ERR_CONTAINER_STATE',
      `killing container ${query}: container ${c.record.id.slice(0, 12)} is not running`,
    );
  }
  const runtime = await runtimeFor(env, c.record.host.runtime);
  await markStopped(c.paths);
  await runtime.kill(c.record.id, signal);
}

export async function waitContainer(env: Env, query: string): Promise<number> {
  const c = await env.containers.find(query);
  await waitExited(env, c.record.id);
  const record = await env.containers.read(c.record.id);
  if (!record) return c.observed.exitCode;
  return env.containers.observe(record).observed.exitCode;
}

export async function removeContainer(env: Env, query: string, force = false, removeVolumes = false): Promise<string> {
  const c = await env.containers.find(query);
  if (isActive(c.observed)) {
    if (!force) {
      throw new TsrunError(
        'ERR_CONTAINER_STATE',
        `removing container ${query}: you cannot remove a running container ${c.record.id.slice(0, 12)}`,
        {
          hint: 'stop the container before removing it, or force-remove it with `tsrun rm -f`',
        },
      );
    }
    // Killed and cleaned up under the container's lock: the monitor's exit command then waits and
    // finds nothing to do, so what cleanup reports (a damaged record set aside, a plugin failure)
    // reaches the user of `rm -f`, not the monitor's log, and is done when `rm -f` returns.
    const runtime = await runtimeFor(env, c.record.host.runtime);
    await env.containers.lock(c.record.id, async () => {
      await markStopped(c.paths);
      await runtime.kill(c.record.id, 'SIGKILL').catch(() => {});
      if (!(await waitExited(env, c.record.id, 30_000))) {
        throw new TsrunError('ERR_RUNTIME', `removing container ${query}: it did not die within 30 s of SIGKILL`);
      }
      await cleanupLocked(env, c.record.id, { remove: true, removeVolumes });
    });
  } else await cleanupContainer(env, c.record.id, { remove: true, removeVolumes });
  env.ctx.reporter.emit({ type: 'container-remove', id: c.record.id, name: c.record.name, force });
  await (await import('./rmi.js')).freeLayersOfDeletedImages(env, [c.record.imageId]);
  return query;
}

export async function pruneContainers(env: Env): Promise<string[]> {
  const removed: string[] = [];
  const images: string[] = [];
  for (const c of await env.containers.list()) {
    if (isActive(c.observed)) continue;
    const done = await env.containers.unlessCreating(c.record.id, () =>
      cleanupContainer(env, c.record.id, { remove: true }),
    );
    if (!done) continue;
    removed.push(c.record.id);
    images.push(c.record.imageId);
  }
  await (await import('./rmi.js')).freeLayersOfDeletedImages(env, images);
  return removed;
}

/** Chain ids every container record needs (for garbage collection). */
export async function layersInUse(env: Env): Promise<string[]> {
  const out: string[] = [];
  for (const id of await env.containers.ids()) {
    const r = await env.containers.read(id);
    if (r) out.push(...r.layers);
  }
  return out;
}

export async function imagesInUse(env: Env): Promise<Map<string, ContainerRecord[]>> {
  const m = new Map<string, ContainerRecord[]>();
  for (const id of await env.containers.ids()) {
    const r = await env.containers.read(id);
    if (r) m.set(r.imageId, [...(m.get(r.imageId) ?? []), r]);
  }
  return m;
}

// ---- views -------------------------------------------------------------------------------------

export type { Attachment };
