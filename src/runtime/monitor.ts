/**
 * Node's side of tsrun-monitor (native-helpers/src/monitor.c, which documents the protocol):
 * starting a monitor for a container, and attaching to a running one.
 *
 * Contract: `spawnMonitor` resolves once the runtime has *created* the container (its init
 * waits at the exec fifo for `runtime start`), or with `start` once it has *started* it, with the
 * init's pid; if creation fails it rejects with the runtime's message, and the monitor has
 * exited. The monitor runs in its own session and outlives the CLI. With `start`, when the
 * container exits the monitor deletes the runtime's container before it writes the exit file
 * (with `foreground` the runtime, which lives as long as the container, deletes it itself
 * before it exits, and the monitor records the exit after that), so such a container seen
 * exited has no runtime state left (without `start`, the caller's `runtime start` may still be
 * finishing when the process exits: cleanup deletes it). `attach` never starts anything: it
 * streams frames until the exit frame.
 *
 * The monitor is started with the addon's posix_spawn (native-helpers/src/spawn.c), not
 * child_process.spawn, which forks the whole Node process first (5-8 ms per start); it
 * daemonizes (--daemon), and its first process is reaped here once fd 3 reaches its end.
 */
import { openSync, closeSync } from 'node:fs';
import { quickFs } from '../util/fs-quick.js';
import { Socket } from 'node:net';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { native } from '../native/index.js';
import type { Reporter } from '../events.js';
import { nativeBuild } from '../util/project.js';
import { connectUnix } from '../util/unix-socket.js';
import { HEALTH_PROCESS_FILE, monitorHealthArgs, type MonitorHealth } from './health.js';
import { writeFileAtomic } from '../util/fs.js';

export interface MonitorOptions {
  id: string;
  bundle: string;
  state: string;
  runtimePath: string;
  runtimeRoot: string;
  log: string;
  tty: boolean;
  stdin: boolean;
  /** Host ports the monitor binds and holds for the container's life: "tcp:0.0.0.0:8080". */
  publish?: string[];
  /** Run by the monitor after the container exits, unless an attached CLI cleaned up already. */
  exitCommand: string[];
  /** An exec session instead of the container: the runtime-spec process to run in it. */
  execProcess?: string;
  /**
   * Start the container too (`runtime run --detach`: one runtime process instead of `create`
   * here and `start` by the caller), for a caller with nothing to do in between. With
   * `attachFirst`, the caller is attached before the container's first instruction. The
   * monitor then also deletes the runtime's container when it exits.
   */
  start?: boolean;
  /**
   * With `start` and without `tty` or `execProcess` (the monitor refuses it otherwise: the
   * caller decides, runtimeArgv reports what runs): `runtime run` in the foreground (no
   * --detach) for the container's whole life; the runtime then deletes the container itself when
   * it exits, and no `runtime delete` is run (native-helpers/src/launch.c). For an attached
   * `run --rm`: one runtime process fewer, and none after the exit.
   */
  foreground?: boolean;
  /**
   * Called once the monitor listens, before the runtime runs anything; the monitor waits for
   * the connection `attach` makes here (exec sessions: no byte is written before it).
   */
  attachFirst?: () => Promise<void>;
  /** The container's health check, run by the monitor (runtime/health.ts). */
  health?: MonitorHealth;
  /** Told of the monitor's argv and pid and of the runtime argv it runs. */
  reporter?: Reporter;
  /**
   * A descriptor held open by the monitor (as its fd 4, given to none of its children) until it
   * exits: rootless, slirp4netns's lifeline, so slirp4netns ends with the container's monitor at
   * the latest (network/slirp.ts). The caller closes its own copy.
   */
  keepOpen?: number;
  /**
   * The read end of the network's ready pipe (rootless: slirp4netns's --ready-fd, network/slirp.ts),
   * as the monitor's fd 5: it runs the runtime only once a byte arrives there, and fails (the
   * runtime never runs) if the pipe ends without one. For `start`: the container's process then
   * never runs before its network is up, though the caller does not wait for the network. The
   * caller closes its own copy (and must not read it).
   */
  readyFd?: number;
}

/** The runtime argv the monitor runs, in its state directory (as native-helpers/src/monitor.c builds it). */
function runtimeArgv(o: MonitorOptions): string[] {
  return [
    o.runtimePath,
    '--root',
    o.runtimeRoot,
    '--log',
    'runtime.log',
    '--log-format',
    'json',
    ...(o.execProcess
      ? ['exec', '--detach', '--process', o.execProcess]
      : o.start
        ? ['run', ...(o.foreground ? [] : ['--detach']), '--bundle', o.bundle]
        : ['create', '--bundle', o.bundle]),
    '--pid-file',
    'pid',
    ...(o.tty ? ['--console-socket', path.join(o.state, 'console.sock')] : []),
    o.id,
  ];
}

export function monitorBinary(): string {
  return nativeBuild('tsrun-monitor');
}

export interface Created {
  pid: number;
  monitorPid: number;
}

export async function spawnMonitor(o: MonitorOptions): Promise<Created> {
  await quickFs.mkdir(o.state, { recursive: true, mode: 0o700 });
  const bin = monitorBinary();
  const args = [
    '--id',
    o.id,
    '--bundle',
    o.bundle,
    '--state',
    o.state,
    '--runtime',
    o.runtimePath,
    '--runtime-root',
    o.runtimeRoot,
    '--log',
    o.log,
  ];
  if (o.tty) args.push('--tty');
  if (o.stdin) args.push('--stdin');
  for (const p of o.publish ?? []) args.push('--publish', p);
  if (o.execProcess) args.push('--exec', o.execProcess);
  else if (o.start) args.push('--start', ...(o.foreground ? ['--foreground'] : []));
  if (o.attachFirst) args.push('--wait-attach');
  if (o.health) {
    await quickFs.writeFile(path.join(o.state, HEALTH_PROCESS_FILE), o.health.process, { mode: 0o600 });
    args.push(...monitorHealthArgs(o.health, HEALTH_PROCESS_FILE));
  }
  if (o.keepOpen !== undefined) args.push('--keep-fd4');
  if (o.readyFd !== undefined) args.push('--ready-fd5');
  args.push('--daemon', '--', ...o.exitCommand);
  const errFd = openSync(path.join(o.state, 'monitor.log'), 'a', 0o600);
  let spawned: { pid: number; syncFd: number };
  try {
    // (the caller's directory may be gone, as when a restart runs from the old monitor's state
    // dir: unlike child_process.spawn, posix_spawn does not mind, and the monitor enters its own)
    // keepOpen (slirp4netns's lifeline) becomes the monitor's fd 4, readyFd its fd 5.
    spawned = native().spawnDaemon(bin, [bin, ...args], errFd, [o.keepOpen ?? -1, o.readyFd ?? -1]);
  } catch (err) {
    throw new TsrunError('ERR_NATIVE', `starting the monitor ${bin}: ${(err as Error).message}`, {
      hint: 'run `npm run build` in the tsrun checkout',
      cause: err,
    });
  } finally {
    closeSync(errFd);
  }
  const sync = new Socket({ fd: spawned.syncFd, readable: true, writable: false });
  let attaching: Promise<void> | undefined;
  let monitorPid = 0;
  const line = await new Promise<string>((resolve) => {
    let text = '';
    sync.on('data', (d: Buffer) => {
      text += d.toString();
      // "pid N" and "listening" come first, each once; what is left is "ok N" or "err ...".
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const l = text.slice(0, nl);
        if (/^pid \d+$/.test(l)) monitorPid = Number(l.slice(4));
        else if (l === 'listening') {
          attaching = o.attachFirst?.();
          attaching?.catch(() => {});
        } else break;
        text = text.slice(nl + 1);
      }
    });
    sync.on('end', () => resolve(text));
    sync.on('error', () => resolve(text));
  });
  sync.destroy();
  // The monitor's first process: gone (fd 3 is closed only by its exit and by the monitor's report).
  native().reap(spawned.pid);
  const m = /^ok (\d+)/.exec(line);
  if (m) {
    if (attaching) await attaching;
    // A container's monitor is found again through its state dir (runtime/records.ts, orphans).
    // An exec's dir is nobody's to read, and its exit command removes it: a short process beside
    // CPU hogs was gone, dir and all, before this write, which then failed the exec (API: 126).
    if (!o.execProcess)
      await writeFileAtomic(path.join(o.state, 'monitor.pid'), String(monitorPid), 0o644, { volatile: true });
    const created = { pid: Number(m[1]), monitorPid };
    o.reporter?.emit({ type: 'monitor', id: o.id, argv: [bin, ...args], ...created });
    o.reporter?.emit({ type: 'runtime', argv: runtimeArgv(o), cwd: o.state });
    return created;
  }
  const msg = /^err (.*)/s.exec(line)?.[1]?.trim() || 'the monitor exited without a word (see its log)';
  const bind = /^bind (tcp|udp) (.*):(\d+): (.*)$/.exec(msg);
  if (bind) {
    throw new TsrunError(
      'ERR_PORT_IN_USE',
      `Bind for ${bind[2]}:${bind[3]} failed: ${/in use/i.test(bind[4] ?? '') ? 'port is already allocated' : bind[4]}`,
      {
        hint: `another program (or container) holds ${bind[1]} port ${bind[3]}: choose another host port`,
      },
    );
  }
  throw runtimeCreateError(msg, o.execProcess ? 'exec' : 'create');
}

/**
 * What Docker does with a failed create: "executable file not found" → 127, "permission
 * denied" / "is a directory" on exec → 126, anything else is ours (125).
 */
export function runtimeCreateError(msg: string, verb: 'create' | 'exec' = 'create'): TsrunError {
  let exitCode = 125;
  if (/executable file not found|no such file or directory/i.test(msg) && /exec/i.test(msg)) exitCode = 127;
  else if (/permission denied|is a directory|exec format error/i.test(msg) && /exec/i.test(msg)) exitCode = 126;
  // crun refuses hosts that mount cgroup v1 controllers beside a v2 hierarchy (hybrid mode).
  const hint = /hybrid mode not supported/.test(msg)
    ? 'this host mixes cgroup v1 and v2 (hybrid mode), which crun does not support: use --runtime runc'
    : undefined;
  const what = verb === 'exec' ? 'OCI runtime exec failed' : 'the OCI runtime could not create the container';
  return new TsrunError(exitCode === 125 ? 'ERR_RUNTIME' : 'ERR_EXEC', `${what}: ${msg}`, {
    detail: { exitCode },
    hint,
  });
}

export interface Attachment {
  onStdout(fn: (d: Buffer) => void): void;
  onStderr(fn: (d: Buffer) => void): void;
  /** Resolves with the container's exit code; rejects if the monitor goes away first. */
  exited: Promise<number>;
  stdin(d: Buffer): void;
  closeStdin(): void;
  resize(rows: number, cols: number): void;
  signal(sig: number): void;
  /** Stop reading frames (the monitor's writes then block and slow the container), and go on. */
  pause(): void;
  resume(): void;
  close(): void;
}

function frame(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/**
 * A `data` handler for the attach socket's frames (one type byte, a 32-bit big-endian length, the
 * payload): calls `onFrame` once per whole frame, in order, however the stream was cut.
 */
export function frameDecoder(onFrame: (type: string, payload: Buffer) => void): (d: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      const type = String.fromCharCode(buf[0] ?? 0);
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      onFrame(type, payload);
    }
  };
}

export function attach(socketPath: string): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const sock = connectUnix(socketPath);
    const out: ((d: Buffer) => void)[] = [];
    const err: ((d: Buffer) => void)[] = [];
    let settleExit: (code: number) => void = () => {};
    let failExit: (e: Error) => void = () => {};
    let gotExit = false;
    const exited = new Promise<number>((res, rej) => {
      settleExit = res;
      failExit = rej;
    });
    exited.catch(() => {});
    sock.on(
      'data',
      frameDecoder((type, payload) => {
        if (type === '1') for (const f of out) f(payload);
        else if (type === '2') for (const f of err) f(payload);
        else if (type === 'x') {
          gotExit = true;
          settleExit(payload.readInt32BE(0));
        }
      }),
    );
    sock.on('close', () => {
      if (!gotExit)
        failExit(
          new TsrunError('ERR_RUNTIME', 'attaching: the container monitor went away before the container exited'),
        );
    });
    sock.once('error', (e) => {
      reject(new TsrunError('ERR_RUNTIME', `attaching to ${socketPath}: ${e.message}`, { cause: e }));
      failExit(e);
    });
    const send = (type: string, payload: Buffer) => {
      if (!sock.destroyed) sock.write(frame(type, payload));
    };
    sock.on('connect', () =>
      resolve({
        onStdout: (fn) => out.push(fn),
        onStderr: (fn) => err.push(fn),
        exited,
        stdin: (d) => {
          // The monitor reads frames of at most 8 KiB.
          for (let i = 0; i < d.length; i += 8192) send('i', d.subarray(i, i + 8192));
        },
        closeStdin: () => send('c', Buffer.alloc(0)),
        resize: (rows, cols) => {
          const p = Buffer.alloc(4);
          p.writeUInt16BE(rows, 0);
          p.writeUInt16BE(cols, 2);
          send('r', p);
        },
        signal: (sig) => send('k', Buffer.from([sig])),
        pause: () => sock.pause(),
        resume: () => sock.resume(),
        close: () => sock.end(),
      }),
    );
  });
}
