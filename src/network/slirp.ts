/**
 * Rootless networking: a network namespace per container with user-mode networking by
 * slirp4netns (its README; podman's rootless default), for the default network of an
 * unprivileged user. The container sees tap0 = 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3
 * (forwarded to the host's resolvers); `-p` becomes slirp4netns `add_hostfwd` on its API socket,
 * so the host port is bound by slirp4netns itself, as the user (and [::1]:PORT by socat, which
 * forwards to it: slirp4netns's API has no IPv6 host side). Host loopback services are not
 * reachable from the container (`--disable-host-loopback`), as with Docker's bridge.
 *
 * Runs inside the rootless namespace (src/rootless/): the namespace is made persistent by a bind
 * mount in our mount namespace (native newNetns, what `unshare --net=FILE` does, without a
 * program), and slirp4netns, a detached child, outlives the CLI; both are recorded in
 * `<run>/slirp/<id>.json` for `disconnectSlirp`.
 *
 * Off the critical path, as podman does it: `onNetns` is called as soon as the namespace exists
 * (slirp4netns just started), so the runtime creates the container in it while slirp4netns comes
 * up; `connectSlirp` resolves only once slirp4netns is ready and every port is forwarded, and the
 * caller starts the container's process only then (network from its first instruction). Without
 * ports, `handReady` hands slirp4netns's ready fd over too and resolves at once: the callee (the
 * container's monitor, --ready-fd5) starts the process once slirp4netns writes its byte there,
 * so nobody waits for slirp4netns between the runtime's create and start (one `runtime run`).
 * A failure then shows as the monitor's; `slirpFailure` tells slirp4netns's own.
 *
 * slirp4netns is started with the addon's posix_spawn (native-helpers/src/spawn.c), not
 * child_process.spawn, which forks the whole Node process (5-8 ms); its stderr goes to
 * `<id>.log` beside the record. Its `--exit-fd` is the read end of a pipe whose write end is its
 * "lifeline": it exits by itself once every copy is closed. `onNetns` hands that end over (a
 * container's monitor keeps it for the container's life); without a taker this process keeps it
 * until `disconnectSlirp` (a build step). This process is slirp4netns's parent while it lives:
 * it reaps it on SIGCHLD, so a long-lived caller (the API service) keeps no zombie.
 * `disconnectSlirp` sends SIGTERM and waits for the exit only when host ports were published
 * (they must be free when it returns: a restart binds them again); otherwise nothing needs it gone
 * at once, and it is gone a moment later.
 *
 * Contract: `connectSlirp` leaves nothing behind if it fails; `disconnectSlirp` is idempotent.
 */
import { childProcess } from '../util/lazy-builtins.js';
import { closeSync, existsSync, promises as fs, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { native } from '../native/index.js';
import { which } from '../util/exec.js';
import { sleep } from '../util/concurrency.js';
import { deviceAccess } from '../util/device.js';
import type { NetworkInfo } from './bridge.js';
import type { PortMapping } from './ports.js';

export const SLIRP_IP = '10.0.2.100';
const GATEWAY = '10.0.2.2';
export const SLIRP_DNS = '10.0.2.3';

interface SlirpRecord {
  pid: number;
  netns: string;
  socket: string;
  /** socat processes forwarding [::1]:PORT to slirp4netns's IPv4 listener (slirp4netns has no IPv6 host side). */
  v6?: number[];
  /** A build step's attachment (it has no container record): the process it lives for. */
  owner?: number;
  /** Host ports were forwarded (add_hostfwd): disconnecting waits until slirp4netns has let them go. */
  published?: boolean;
}

/** The lifelines (write ends of slirp4netns's exit-fd pipes) this process still holds, by container id. */
const lifelines = new Map<string, number>();

/** What `onNetns` hands over: descriptors the callee owns from then on (and closes: fs.closeSync). */
export interface SlirpHandoff {
  /** The write end of slirp4netns's --exit-fd pipe: it exits once every copy is closed. */
  lifeline: number;
  /**
   * With `handReady` (and no ports): the read end of its --ready-fd pipe, where it writes one byte
   * once the network is up. The container's process must not start before that byte arrives.
   */
  ready?: number;
}

/** slirp4netns processes this process started and has not reaped yet, with who waits for the status. */
const children = new Map<number, (status: number) => void>();
let reaping = false;
/** The last few wait statuses reaped (a failure's message tells it), oldest first. */
const statuses = new Map<number, number>();

function reapChildren(): void {
  for (const [pid, done] of children) {
    let status: number;
    try {
      status = native().reap(pid, true);
    } catch {
      status = 0; // not ours to reap after all (ECHILD)
    }
    if (status === -1) continue;
    children.delete(pid);
    statuses.set(pid, status);
    for (const old of statuses.keys()) if (statuses.size > 16) statuses.delete(old);
    done(status);
  }
}

/** The wait status of slirp4netns `pid` (a child of this process), or undefined if it runs on after `ms`. */
function exitStatus(pid: number, ms: number): Promise<number | undefined> {
  reapChildren();
  if (statuses.has(pid)) return Promise.resolve(statuses.get(pid));
  if (!children.has(pid)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    children.set(pid, (status) => {
      clearTimeout(timer);
      resolve(status);
    });
    reapChildren();
  });
}

const logOf = (runDir: string, id: string) => path.join(dirOf(runDir), `${id}.log`);

/** slirp4netns's own account of its early exit: its exit status and what it wrote to its log. */
async function exitError(pid: number, log: string): Promise<TsrunError> {
  const status = await exitStatus(pid, 1000);
  const text = await fs.readFile(log, 'utf8').catch(() => '');
  const how =
    status === undefined
      ? 'closed its ready fd'
      : `exited (${status & 0x7f ? `signal ${status & 0x7f}` : status >> 8})`;
  return new TsrunError('ERR_ROOTLESS', `slirp4netns ${how}: ${text.trim()}`);
}

/**
 * After the container's monitor failed to start a container whose network was handed over with
 * `handReady`: slirp4netns's own error (exit status, log) if it is no longer running — then it is
 * what failed: the monitor found its ready fd closed — else undefined. Call it before
 * `disconnectSlirp`.
 */
export async function slirpFailure(id: string, runDir: string): Promise<TsrunError | undefined> {
  let r: SlirpRecord;
  try {
    r = JSON.parse(await fs.readFile(path.join(dirOf(runDir), `${id}.json`), 'utf8')) as SlirpRecord;
  } catch {
    return undefined;
  }
  if (!r.pid || running(r.pid)) return undefined;
  return exitError(r.pid, logOf(runDir, id));
}

const dirOf = (runDir: string) => path.join(runDir, 'slirp');

/** Where container `id`'s network namespace is kept (the spec joins it by this path). */
export function slirpNetnsPath(runDir: string, id: string): string {
  return path.join(dirOf(runDir), `${id}.netns`);
}

/** resolv.conf for a slirp4netns container: its DNS forwarder, and the host's search domains. */
export function slirpResolvConf(hostText: string): string {
  const search = hostText.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return [...search, `nameserver ${SLIRP_DNS}`].join('\n') + '\n';
}

function apiCall(socket: string, request: unknown): Promise<{ error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let data = '';
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (d) => {
      data += d.toString();
    });
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(data) as { error?: { desc?: string } });
      } catch {
        reject(new Error(`slirp4netns answered "${data}"`));
      }
    });
  });
}

export async function connectSlirp(o: {
  id: string;
  runDir: string;
  ports: PortMapping[];
  env: NodeJS.ProcessEnv;
  owner?: number;
  reporter?: Reporter;
  /**
   * Called once the namespace exists and slirp4netns has started, with its lifeline (and with
   * `handReady` its ready fd): the callee owns them from then on, and must close them once the
   * process that keeps slirp4netns alive (the container's monitor) has its copies. The container
   * must not start before `connectSlirp` resolves, or with `handReady` before the ready byte.
   */
  onNetns?: (handoff: SlirpHandoff) => void;
  /**
   * Without ports and with an `onNetns` taker: hand the ready fd over too, and resolve without
   * waiting for slirp4netns (the taker makes the container wait for it). Ignored with ports.
   */
  handReady?: boolean;
}): Promise<NetworkInfo> {
  const slirp = await which('slirp4netns', o.env);
  if (!slirp) {
    throw new TsrunError('ERR_ROOTLESS', 'rootless networking needs slirp4netns, which is not installed', {
      hint: 'as root: apt-get install slirp4netns; or use --network none or --network host',
    });
  }
  const tun = await deviceAccess('/dev/net/tun');
  if (!tun.usable) {
    throw new TsrunError(
      'ERR_ROOTLESS',
      `rootless networking needs /dev/net/tun, which you cannot use (mode ${tun.mode})`,
      {
        hint: 'as root: chmod 0666 /dev/net/tun (the mode distributions ship); or use --network none or --network host',
      },
    );
  }
  const dir = dirOf(o.runDir);
  const netns = slirpNetnsPath(o.runDir, o.id);
  const socket = path.join(dir, `${o.id.slice(0, 12)}.sock`);
  const recordFile = path.join(dir, `${o.id}.json`);
  // What a crashed attachment left (a few stats: the usual case has nothing to undo).
  if (lifelines.has(o.id) || [recordFile, netns, socket].some((f) => existsSync(f)))
    await disconnectSlirp(o.id, o.runDir);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await fs.writeFile(netns, '');
    try {
      native().newNetns(netns);
    } catch (err) {
      throw new TsrunError(
        'ERR_ROOTLESS',
        `making the network namespace for ${o.id.slice(0, 12)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const slirpArgs = [
      '--configure',
      '--mtu=65520',
      '--disable-host-loopback',
      '--api-socket',
      socket,
      '--ready-fd=3',
      '--exit-fd=4',
      '--netns-type=path',
      netns,
      'tap0',
    ];
    const [exitEnd, lifeline] = native().pipe();
    const log = logOf(o.runDir, o.id);
    let spawned: { pid: number; syncFd: number };
    try {
      const logFd = openSync(log, 'w', 0o600);
      try {
        // stderr: the log; fd 3 (--ready-fd): spawnDaemon's pipe; fd 4 (--exit-fd): exitEnd.
        spawned = native().spawnDaemon(slirp, [slirp, ...slirpArgs], logFd, exitEnd);
      } finally {
        closeSync(logFd);
      }
    } catch (err) {
      closeSync(lifeline);
      throw new TsrunError('ERR_ROOTLESS', `starting slirp4netns: ${(err as Error).message}`, { cause: err });
    } finally {
      closeSync(exitEnd);
    }
    if (!reaping) process.on('SIGCHLD', reapChildren);
    reaping = true;
    children.set(spawned.pid, () => {});
    lifelines.set(o.id, lifeline);
    const handReady = Boolean(o.handReady && !o.ports.length && o.onNetns);
    const record: SlirpRecord = {
      pid: spawned.pid,
      netns,
      socket,
      ...(o.owner ? { owner: o.owner } : {}),
      ...(o.ports.length ? { published: true } : {}),
    };
    let ready: Promise<void> | undefined;
    if (handReady) {
      try {
        await fs.writeFile(recordFile, JSON.stringify(record));
      } catch (err) {
        closeSync(spawned.syncFd); // (not handed over: slirp4netns ends with its lifeline, closed below)
        throw err;
      }
    } else {
      ready = readyByte(spawned.syncFd, () => exitError(spawned.pid, log));
      ready.catch(() => {}); // awaited below, once the record is written
      await fs.writeFile(recordFile, JSON.stringify(record));
    }
    if (o.onNetns) {
      lifelines.delete(o.id);
      o.onNetns({ lifeline, ...(handReady ? { ready: spawned.syncFd } : {}) });
    }
    await ready;
    o.reporter?.emit({
      type: 'slirp4netns',
      id: o.id,
      argv: [slirp, ...slirpArgs],
      pid: record.pid,
      netns,
      apiSocket: socket,
    });
    for (const p of o.ports) {
      const request = {
        execute: 'add_hostfwd',
        arguments: {
          proto: p.protocol,
          host_addr: p.hostIP || '0.0.0.0',
          host_port: p.hostPort,
          guest_addr: SLIRP_IP,
          guest_port: p.containerPort,
        },
      };
      const r = await apiCall(socket, request);
      o.reporter?.emit({
        type: 'slirp4netns-api',
        id: o.id,
        request,
        ...(r.error ? { error: r.error.desc ?? JSON.stringify(r.error) } : {}),
      });
      if (r.error) {
        const desc = r.error.desc ?? JSON.stringify(r.error);
        throw new TsrunError('ERR_PORT_IN_USE', `publishing ${p.hostIP || '0.0.0.0'}:${p.hostPort}: ${desc}`, {
          hint:
            p.hostPort < 1024
              ? 'ports below 1024 need root, or as root: sysctl -w net.ipv4.ip_unprivileged_port_start=0'
              : 'choose another host port',
        });
      }
      // All addresses means IPv6 loopback too, as podman's rootlessport listens: slirp4netns's API
      // takes IPv4 host addresses only, so socat (when installed) forwards [::1]:PORT to it.
      const socat =
        (p.hostIP || '0.0.0.0') === '0.0.0.0' && p.protocol === 'tcp' ? await which('socat', o.env) : undefined;
      if (socat) {
        const fwd = childProcess().spawn(
          socat,
          [`TCP6-LISTEN:${p.hostPort},bind=[::1],fork,reuseaddr`, `TCP4:127.0.0.1:${p.hostPort}`],
          { detached: true, stdio: 'ignore' },
        );
        fwd.on('error', () => {});
        fwd.unref();
        if (fwd.pid) (record.v6 ??= []).push(fwd.pid);
        await fs.writeFile(recordFile, JSON.stringify(record));
      }
    }
    return { ip: SLIRP_IP, prefixLen: 24, gateway: GATEWAY, mac: '', bridge: 'slirp4netns', ports: o.ports };
  } catch (err) {
    await disconnectSlirp(o.id, o.runDir).catch(() => {});
    throw err;
  }
}

/** Ids of the containers that have a slirp4netns attachment recorded under `runDir`. */
export async function slirpAttachments(runDir: string): Promise<string[]> {
  const names = await fs.readdir(dirOf(runDir)).catch(() => [] as string[]);
  return names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n)).map((n) => n.slice(0, 64));
}

/** The process a build step's attachment lives for (undefined for a container's). */
export async function slirpOwner(runDir: string, id: string): Promise<number | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(path.join(dirOf(runDir), `${id}.json`), 'utf8')) as SlirpRecord;
    return typeof r.owner === 'number' ? r.owner : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a slirp4netns whose CLI is gone is reaped by init, not by us). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z' && stat.includes('(slirp4netns)');
  } catch {
    return false;
  }
}

/**
 * Stop slirp4netns and remove the namespace and its files. Waits for slirp4netns's exit only
 * when it forwarded host ports; otherwise it is told to stop (SIGTERM, and its lifeline closed
 * here if this process held it) and ends a moment later on its own.
 */
export async function disconnectSlirp(id: string, runDir: string): Promise<void> {
  const lifeline = lifelines.get(id);
  lifelines.delete(id);
  if (lifeline !== undefined) closeSync(lifeline);
  const recordFile = path.join(dirOf(runDir), `${id}.json`);
  let r: SlirpRecord | undefined;
  try {
    r = JSON.parse(await fs.readFile(recordFile, 'utf8')) as SlirpRecord;
  } catch {
    /* none */
  }
  if (r?.pid && running(r.pid)) {
    try {
      process.kill(r.pid, 'SIGTERM');
      if (r.published) {
        for (let i = 0; i < 200 && running(r.pid); i++) await sleep(5);
        if (running(r.pid)) process.kill(r.pid, 'SIGKILL');
      }
    } catch {
      /* gone */
    }
  }
  for (const pid of r?.v6 ?? []) {
    // Only our forwarder: a recorded pid may have been reused after a reboot.
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'socat') process.kill(-pid, 'SIGTERM'); // it and its connections
    } catch {
      /* gone */
    }
  }
  const netns = slirpNetnsPath(runDir, id);
  try {
    native().umount(netns);
  } catch {
    /* not mounted */
  }
  // Side by side: each is an unlink on its own.
  await Promise.all([
    fs.rm(netns, { force: true }),
    ...(r?.socket ? [fs.rm(r.socket, { force: true })] : []),
    fs.rm(logOf(runDir, id), { force: true }),
  ]);
  await fs.rm(recordFile, { force: true });
}

/** Resolves once slirp4netns writes its ready byte to `fd` (and closes `fd`); rejects with `failed()` if it ends first. */
function readyByte(fd: number, failed: () => Promise<TsrunError>): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = new net.Socket({ fd, readable: true, writable: false });
    let done = false;
    const end = (ok: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      if (ok) resolve();
      else failed().then(reject, reject);
    };
    sock.once('data', () => end(true));
    sock.once('end', () => end(false));
    sock.once('error', () => end(false));
  });
}
