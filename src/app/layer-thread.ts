/**
 * `unpackTar` of compressed layers in worker threads (layer-worker.ts), so that a pull of several
 * layers uses more than one core: the main thread keeps the network, the blob digest and the
 * ingest file; a worker decompresses, reads the tar, creates the files, hashes the diff id and
 * fingerprints the finished tree. Measured on the 5-layer bench image (docs/benchmarks.md, "Cold
 * pull"): the main thread doing all of it for every layer was busy ~85 % of the pull, the other
 * core mostly idle.
 *
 * The workers are a small pool shared by every layer of the process (at most `MAX_WORKERS`, one
 * per core up to the pull's default concurrency), each running several layers at once. One
 * worker per layer (the first version) paid per layer for an isolate: its start, its heap
 * (~40 MB RSS each), and above all V8 optimising the same unpacker again (TurboFan's threads
 * were 13 % of a 5-layer pull's CPU, and each new worker ran its first thousands of entries in
 * unoptimised code). An idle worker is unref'd (it never keeps the process alive) and ended
 * after `IDLE_MS`.
 *
 * Contract: as `decompress` + `unpackTar` (same result, same errors: TsrunErrors keep their
 * code, hint and retryability; errno errors their code, syscall and path). Backpressure: at most
 * `INFLIGHT` bytes of a layer are posted and not yet taken by its decompressor; `source` is
 * paused beyond that. `abort(err)` (or an error of `source`) stops the layer in its worker; the
 * promise settles only once the worker says that layer's unpack has returned (or the worker has
 * exited), so the caller may remove `dest` right away: nothing writes into it after.
 */
import os from 'node:os';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { TsrunError, type ErrorCode } from '../errors.js';
import type { ArchiveCompression } from '../layers/compression.js';
import type { UnpackOptions } from '../layers/unpack.js';
import type { FromWorker, SerializedError, ThreadResult, ToWorker, WorkerInit } from './layer-worker.js';

/** Compressed bytes of one layer in flight to its worker before the source is paused. */
const INFLIGHT = 4 << 20;
/** Workers at most: one per core, and no more than the layers a pull fetches at once (3). */
const MAX_WORKERS = Math.max(1, Math.min(3, os.availableParallelism()));
/** An idle worker is ended after this long (the next layer of a pull usually starts at once). */
const IDLE_MS = 2000;

/** The worker script: beside the CLI bundle (dist/layer-worker.cjs) or beside this module (tsc output). */
function workerUrl(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith('.cjs') ? './layer-worker.cjs' : './layer-worker.js', here);
}

function currentUmask(): number {
  const m = process.umask(0o022);
  process.umask(m);
  return m;
}

function rebuild(s: SerializedError): Error {
  if (s.tsrun) {
    return new TsrunError(s.code as ErrorCode, s.message, {
      ...(s.hint !== undefined ? { hint: s.hint } : {}),
      ...(s.retryable !== undefined ? { retryable: s.retryable } : {}),
    });
  }
  const e = new Error(s.message) as NodeJS.ErrnoException;
  e.name = s.name;
  if (s.code !== undefined) e.code = s.code;
  if (s.syscall !== undefined) e.syscall = s.syscall;
  if (s.path !== undefined) e.path = s.path;
  if (s.errno !== undefined) e.errno = s.errno;
  return e;
}

/** One layer's side of the protocol, as its worker's message handler sees it. */
interface Job {
  /** The layer's compressed size: what the worker is given to do, for choosing the least busy. */
  weight: number;
  ack(n: number): void;
  warning(text: string): void;
  /** The worker says this layer's unpack has returned (or the worker is gone): settle. */
  end(err: Error | undefined, r?: ThreadResult): void;
}

class PooledWorker {
  readonly worker: Worker;
  readonly jobs = new Map<number, Job>();
  /** The sum of the jobs' weights. */
  load = 0;
  private idle: NodeJS.Timeout | undefined;
  dead = false;

  constructor(private readonly onGone: (w: PooledWorker) => void) {
    this.worker = new Worker(workerUrl());
    this.worker.on('message', (m: FromWorker) => {
      const job = this.jobs.get(m.job);
      if (!job) return;
      if (m.ack !== undefined) job.ack(m.ack);
      else if (m.warning !== undefined) job.warning(m.warning);
      else if (m.done) this.finish(m.job, undefined, m.done);
      else if (m.error) this.finish(m.job, rebuild(m.error));
    });
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) =>
      this.die(new TsrunError('ERR_INTERNAL', `the layer unpack thread exited (code ${code}) before it finished`)),
    );
  }

  post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.dead) this.worker.postMessage(m, transfer);
  }

  add(id: number, job: Job): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    if (this.jobs.size === 0) this.worker.ref();
    this.jobs.set(id, job);
    this.load += job.weight;
  }

  private finish(id: number, err: Error | undefined, r?: ThreadResult): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    this.load -= job.weight;
    if (this.jobs.size === 0 && !this.dead) {
      this.worker.unref();
      this.idle = setTimeout(() => this.stop(), IDLE_MS);
      this.idle.unref();
    }
    job.end(err, r);
  }

  /** End the thread: its layers (none, when idle) fail with `err` once it has exited. */
  private die(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.onGone(this);
    if (this.idle) clearTimeout(this.idle);
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    const settle = () => {
      for (const j of jobs) j.end(err);
    };
    void this.worker.terminate().then(settle, settle);
  }

  private stop(): void {
    if (this.jobs.size === 0) this.die(new TsrunError('ERR_INTERNAL', 'the layer unpack thread was stopped'));
  }
}

const pool: PooledWorker[] = [];
let nextJob = 1;

/**
 * The least loaded worker (by the compressed bytes of its layers: with a pull's layers started
 * largest first, the next one goes beside the smaller work; by count, the bench image's two
 * largest layers shared one worker, busy 86 % of the pull while the other idled at 57 %); a new
 * one while there are fewer than MAX_WORKERS and all have layers.
 */
function pickWorker(): PooledWorker {
  const free = pool.reduce<PooledWorker | undefined>((a, w) => (!a || w.load < a.load ? w : a), undefined);
  if (free && (free.jobs.size === 0 || pool.length >= MAX_WORKERS)) return free;
  const w = new PooledWorker((gone) => {
    const i = pool.indexOf(gone);
    if (i >= 0) pool.splice(i, 1);
  });
  pool.push(w);
  return w;
}

export interface ThreadUnpack {
  result: Promise<ThreadResult>;
  /** Stop: the result rejects with `err` once the worker has stopped this layer. */
  abort(err: Error): void;
}

export function unpackInWorker(
  source: Readable,
  compression: ArchiveCompression,
  dest: string,
  opts: UnpackOptions,
  /** The layer's compressed size, if known (which worker takes it: see pickWorker). */
  size = 1 << 20,
): ThreadUnpack {
  const { onWarning, linkFrom: _unused, ...plain } = opts;
  const init: WorkerInit = { dest, compression, opts: { ...plain, umask: plain.umask ?? currentUmask() } };
  const id = nextJob++;
  const w = pickWorker();
  let resolve!: (r: ThreadResult) => void;
  let reject!: (e: Error) => void;
  const result = new Promise<ThreadResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });

  let inflight = 0;
  let waiting: (() => void) | undefined;
  let stopped = false;
  let settled = false;
  /** The first error wins, whether it came from the source, an abort or the worker. */
  let failure: Error | undefined;
  const release = () => {
    const cb = waiting;
    waiting = undefined;
    cb?.();
  };

  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (stopped) return cb();
      inflight += chunk.length;
      // A copy of its own, moved (not cloned) across: a chunk may be a view into a larger buffer.
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      w.post({ job: id, chunk: copy }, [copy.buffer]);
      if (inflight < INFLIGHT) cb();
      else waiting = cb;
    },
    final(cb) {
      if (!stopped) w.post({ job: id, end: true });
      cb();
    },
  });

  /** Stop feeding the worker and tell it to stop this layer; settling waits for its answer. */
  const stop = (err: Error) => {
    failure ??= err;
    if (stopped) return;
    stopped = true;
    source.unpipe(sink);
    release();
    w.post({ job: id, abort: { message: err.message } });
  };

  w.add(id, {
    weight: Math.max(1, size),
    ack(n) {
      inflight -= n;
      if (waiting && inflight < INFLIGHT) release();
    },
    warning: (text) => onWarning?.(text),
    end(err, r) {
      if (settled) return;
      settled = true;
      if (!stopped) {
        stopped = true;
        source.unpipe(sink);
        release();
      }
      const e = failure ?? err;
      if (e) reject(e);
      else resolve(r as ThreadResult);
    },
  });
  w.post({ job: id, start: init });
  source.on('error', (err) => stop(err));
  source.pipe(sink);

  return { result, abort: (err) => stop(err) };
}
