/**
 * The Engine's streams: attach and exec start (a hijacked connection after `101 UPGRADED`, or a
 * plain streamed response for clients that do not upgrade), logs, and resize.
 *
 * Framing (Docker's stdcopy): without a TTY every chunk is an 8-byte header (stream 1 stdout or
 * 2 stderr, three zero bytes, a big-endian u32 length) and the bytes; with a TTY the bytes go raw.
 * Backpressure: when the client's socket is full the monitor's attachment is paused, so a slow
 * reader slows the container, as with the CLI, and nothing is dropped.
 *
 * Attach before start (what `docker run` and `docker start -a` do): the attach waits in the
 * service's state until start, which hands the attachment to it before the runtime starts the
 * process, so the first byte is seen.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { attach, type Attachment } from '../runtime/monitor.js';
import { execInContainer } from '../app/exec.js';
import { readLogs } from '../app/logs.js';
import { parseLogTime } from '../app/log-times.js';
import { ApiError } from './errors.js';
import { queryBool, readJson, sendJson, type ApiRequest, type Router } from './router.js';
import type { ApiState, ExecEntry } from './state.js';

export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(data.length, 4);
  return Buffer.concat([head, data]);
}

interface Stream {
  /** false: the client is full (wait for `drain`). */
  write(stream: 1 | 2, data: Buffer): boolean;
  onDrain(fn: () => void): void;
  /** Client → container bytes (hijacked connections only). */
  onInput(fn: (d: Buffer) => void, end: () => void): void;
  end(): void;
  closed: Promise<void>;
}

/** Answer `r` as a stream: 101 on an upgraded connection, else a 200 streamed response. */
export function openStream(r: ApiRequest, tty: boolean): Stream {
  const type = tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  const encode = (s: 1 | 2, d: Buffer) => (tty ? d : frame(s, d));
  if (r.upgrade) {
    const sock: Duplex = r.upgrade.socket;
    const head = r.upgrade.head;
    sock.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.on('error', () => {});
    return {
      write: (s, d) => !sock.destroyed && sock.write(encode(s, d)),
      onDrain: (fn) => sock.on('drain', fn),
      onInput: (fn, end) => {
        // A request body (dockerode sends its options as JSON) precedes the client's stdin.
        let skip = Number(r.req.headers['content-length'] ?? 0) || 0;
        const take = (d: Buffer) => {
          if (skip > 0) {
            const n = Math.min(skip, d.length);
            skip -= n;
            d = d.subarray(n);
          }
          if (d.length > 0) fn(d);
        };
        take(head);
        sock.on('data', take);
        sock.once('end', end);
      },
      end: () => sock.end(),
      closed,
    };
  }
  const res: ServerResponse = r.res;
  res.writeHead(200, { 'Content-Type': type });
  res.flushHeaders();
  const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
  return {
    write: (s, d) => !res.destroyed && res.write(encode(s, d)),
    onDrain: (fn) => res.on('drain', fn),
    onInput: () => {},
    end: () => res.end(),
    closed,
  };
}

/** Connect an attachment to a client's stream, with backpressure both ways. */
function wire(
  a: Attachment,
  s: Stream,
  o: { stdin: boolean; stdout: boolean; stderr: boolean },
  onExit?: (code: number) => void,
): void {
  const send = (n: 1 | 2) => (d: Buffer) => {
    if (!s.write(n, d)) a.pause();
  };
  s.onDrain(() => a.resume());
  if (o.stdout) a.onStdout(send(1));
  if (o.stderr) a.onStderr(send(2));
  if (o.stdin)
    s.onInput(
      (d) => a.stdin(d),
      () => a.closeStdin(),
    );
  void s.closed.then(() => a.close());
  a.exited.then(
    (code) => {
      onExit?.(code);
      s.end();
    },
    () => {
      onExit?.(-1);
      s.end();
    },
  );
}

export function registerStreamRoutes(router: Router, state: ApiState): void {
  router.add('POST', '/containers/{id}/attach', async (r) => {
    const c = await state.find(r.params.id ?? '');
    const want = {
      stdin: queryBool(r.query, 'stdin'),
      stdout: queryBool(r.query, 'stdout'),
      stderr: queryBool(r.query, 'stderr'),
    };
    const s = openStream(r, c.record.config.tty);
    const hook = (a: Attachment) => wire(a, s, want);
    if (c.observed.status === 'running') {
      hook(await attach(c.paths.attachSocket));
    } else {
      const list = state.pendingAttach.get(c.record.id) ?? [];
      list.push(hook);
      state.pendingAttach.set(c.record.id, list);
      void s.closed.then(() => {
        const l = state.pendingAttach.get(c.record.id);
        if (l)
          state.pendingAttach.set(
            c.record.id,
            l.filter((h) => h !== hook),
          );
      });
    }
    await s.closed;
  });

  router.add('GET', '/containers/{id}/logs', async (r) => {
    const c = await state.find(r.params.id ?? '');
    const q = r.query;
    const stdout = queryBool(q, 'stdout');
    const stderr = queryBool(q, 'stderr');
    if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream');
    const tailText = q.get('tail') ?? 'all';
    const tail = tailText === 'all' || tailText === '' ? undefined : Number(tailText);
    if (tail !== undefined && !Number.isInteger(tail)) throw new ApiError(400, `invalid tail: ${tailText}`);
    const time = (k: string) => {
      const v = q.get(k);
      return v && v !== '0' ? parseLogTime(k, v) : undefined;
    };
    const s = openStream(r, c.record.config.tty);
    const stamps = queryBool(q, 'timestamps');
    let gone = false;
    void s.closed.then(() => (gone = true));
    const lines = readLogs(state.env, c.record.id, {
      follow: queryBool(q, 'follow'),
      tail: tail !== undefined && tail >= 0 ? tail : undefined,
      since: time('since'),
      until: time('until'),
    });
    for await (const l of lines) {
      if (gone) break;
      if (l.stream === 'stdout' ? !stdout : !stderr) continue;
      const text = Buffer.concat([Buffer.from(stamps ? `${l.time} ` : ''), l.text, Buffer.from(l.newline ? '\n' : '')]);
      if (!s.write(l.stream === 'stdout' ? 1 : 2, text)) await new Promise<void>((res) => s.onDrain(() => res()));
    }
    s.end();
  });

  router.add('POST', '/containers/{id}/resize', async ({ res, params, query }) => {
    const c = await state.find(params.id ?? '');
    if (c.observed.status === 'running' && c.record.config.tty) {
      const a = await attach(c.paths.attachSocket);
      a.resize(Number(query.get('h') ?? 24), Number(query.get('w') ?? 80));
      a.close();
    }
    sendJson(res, 200, {});
  });

  router.add('POST', '/containers/{id}/exec', async ({ req, res, params }) => {
    const c = await state.find(params.id ?? '');
    const b = await readJson(req);
    const cmd = b.Cmd;
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((x) => typeof x !== 'string'))
      throw new ApiError(400, 'invalid Cmd: a non-empty list of strings is required');
    if (c.observed.status !== 'running') throw new ApiError(409, `Container ${c.record.id} is not running`);
    const id = state.newExecId();
    const strList = (v: unknown, f: string) => {
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
        throw new ApiError(400, `invalid ${f}: expected a list of strings`);
      return v as string[];
    };
    state.execs.set(id, {
      id,
      containerId: c.record.id,
      cmd: cmd as string[],
      tty: b.Tty === true,
      stdin: b.AttachStdin === true,
      stdout: b.AttachStdout !== false,
      stderr: b.AttachStderr !== false,
      env: strList(b.Env, 'Env'),
      user: typeof b.User === 'string' ? b.User : '',
      workdir: typeof b.WorkingDir === 'string' ? b.WorkingDir : '',
      privileged: b.Privileged === true,
      running: false,
      exitCode: null,
      pid: 0,
    });
    sendJson(res, 201, { Id: id });
  });

  router.add('POST', '/exec/{id}/start', async (r) => {
    const e = execEntry(state, r.params.id ?? '');
    const b = await readJson(r.req);
    if (e.running || e.exitCode !== null) throw new ApiError(409, `Exec ${e.id} has already run`);
    const detach = b.Detach === true;
    const tty = typeof b.Tty === 'boolean' ? b.Tty : e.tty;
    e.running = true;
    const finish = (code: number) => {
      e.exitCode = code;
      e.running = false;
      e.attachment = undefined;
    };
    let s: Stream | undefined;
    if (!detach) s = openStream(r, tty);
    try {
      const session = await execInContainer(
        state.ctx,
        e.containerId,
        e.cmd,
        {
          interactive: e.stdin && !detach,
          tty,
          env: e.env,
          user: e.user || undefined,
          workdir: e.workdir || undefined,
        },
        (a) => {
          e.attachment = a;
          // Detached: still attached here, to learn the exit code (inspect reports it).
          if (s) wire(a, s, { stdin: e.stdin, stdout: e.stdout, stderr: e.stderr }, finish);
          else a.exited.then(finish, () => finish(-1));
        },
      );
      e.pid = session.pid;
      const a = session.attachment;
      void a?.exited.finally(() => void session.done()).catch(() => {});
    } catch (err) {
      finish(126);
      if (!s) throw err;
      s.write(2, Buffer.from(`${(err as Error).message}\n`));
      s.end();
      return;
    }
    if (detach) sendJson(r.res, 200, {});
    else await s?.closed;
  });

  router.add('GET', '/exec/{id}/json', ({ res, params }) => {
    const e = execEntry(state, params.id ?? '');
    sendJson(res, 200, {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: {
        tty: e.tty,
        entrypoint: e.cmd[0],
        arguments: e.cmd.slice(1),
        privileged: e.privileged,
        user: e.user,
      },
      OpenStdin: e.stdin,
      OpenStderr: e.stderr,
      OpenStdout: e.stdout,
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: '',
      Pid: e.pid,
    });
    return Promise.resolve();
  });

  router.add('POST', '/exec/{id}/resize', ({ res, params, query }) => {
    const e = execEntry(state, params.id ?? '');
    e.attachment?.resize(Number(query.get('h') ?? 24), Number(query.get('w') ?? 80));
    sendJson(res, 200, {});
    return Promise.resolve();
  });
}

function execEntry(state: ApiState, id: string): ExecEntry {
  const e = state.execs.get(id);
  if (!e) throw new ApiError(404, `No such exec instance: ${id}`);
  return e;
}
