/**
 * Starting a container (`tsrun start`, and `run` after it created one): its root mounted, its
 * network attached beside the runtime's create (held back at the network gate, runtime/gate.ts),
 * a monitor that owns it, an attached caller before its first byte. Split from containers.ts
 * (the rest of the lifecycle: cleanup, stop, kill, wait, rm, prune), which re-exports it.
 *
 * Contract: on failure nothing is left mounted, attached or running, the record keeps the error
 * (and its exit code: 125, or 126/127 for the command), and an `--rm` container is removed.
 */
import { closeSync } from 'node:fs';
import path from 'node:path';
import type { Container, ContainerRecord } from '../runtime/records.js';
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
import { TsrunError } from '../errors.js';
import { unmountAll } from '../snapshot/overlay.js';
import { attachUserNetworks, detachUserNetworks, joinUserNetworks, onUserNetworks } from './networks.js';
import { hostMounts, prepareStart } from './run-host.js';
import { removeAnonymousVolumes } from './volumes.js';
import { healthForStart } from './healthcheck.js';
import { removeTree, writeFileAtomic } from '../util/fs.js';
import { quickFs } from '../util/fs-quick.js';
import type { Env } from './env.js';
import { ensureMounted, rootfsMount } from './container-mount.js';

export async function runtimeFor(env: Env, name: string): Promise<OciRuntime> {
  const info = await locateRuntime(name, env.ctx.env, env.containers.sp.run);
  return new OciRuntime(info, env.containers.sp.runtimeRoot, env.ctx.reporter);
}

/** Undo what start connected: the bridge or user networks (root, each idempotent) or slirp4netns (rootless). */
export function disconnectNetwork(env: Env, id: string): Promise<void> {
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
export function ownNetns(record: ContainerRecord): boolean {
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
