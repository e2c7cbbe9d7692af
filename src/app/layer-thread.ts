/**
 * `unpackTar` of one compressed layer in a worker thread (layer-worker.ts), so that a pull of
 * several layers uses more than one core: the main thread keeps the network, the blob digest and
 * the ingest file; each layer's worker decompresses, reads the tar, creates the files and hashes
 * the diff id. Measured on the 5-layer bench image (docs/benchmarks.md, "Cold pull"): the main
 * thread doing all of it for every layer was busy ~85 % of the pull, the other core mostly idle.
 *
 * Contract: as `decompress` + `unpackTar` (same result, same errors: TsrunErrors keep their
 * code, hint and retryability; errno errors their code, syscall and path). Backpressure: at most
 * `INFLIGHT` bytes are posted and not yet taken by the worker's decompressor; `source` is paused
 * beyond that. `abort(err)` (or an error of `source`) stops the worker; the promise settles only
 * after the worker has exited, so the caller may remove `dest` right away.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { TsrunError, type ErrorCode } from '../errors.js';
import type { ArchiveCompression } from '../layers/compression.js';
import type { UnpackOptions } from '../layers/unpack.js';
import type { SerializedError, ThreadResult, WorkerInit } from './layer-worker.js';

/** Compressed bytes in flight to the worker before the source is paused. */
const INFLIGHT = 4 << 20;

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

export interface ThreadUnpack {
  result: Promise<ThreadResult>;
  /** Stop: the result rejects with `err` once the worker has exited. */
  abort(err: Error): void;
}

export function unpackInWorker(
  source: Readable,
  compression: ArchiveCompression,
  dest: string,
  opts: UnpackOptions,
): ThreadUnpack {
  const { onWarning, linkFrom: _unused, ...plain } = opts;
  const init: WorkerInit = { dest, compression, opts: { ...plain, umask: plain.umask ?? currentUmask() } };
  const worker = new Worker(workerUrl(), { workerData: init });
  let settled = false;
  let resolve!: (r: ThreadResult) => void;
  let reject!: (e: Error) => void;
  const result = new Promise<ThreadResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });

  let inflight = 0;
  let waiting: (() => void) | undefined;
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      inflight += chunk.length;
      // A copy of its own, moved (not cloned) across: a chunk may be a view into a larger buffer.
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      worker.postMessage({ chunk: copy }, [copy.buffer]);
      if (inflight < INFLIGHT) cb();
      else waiting = cb;
    },
    final(cb) {
      worker.postMessage({ end: true });
      cb();
    },
  });

  const finish = (err: Error | undefined, r?: ThreadResult) => {
    if (settled) return;
    settled = true;
    source.unpipe(sink);
    const cb = waiting;
    waiting = undefined;
    cb?.();
    void worker.terminate().then(
      () => (err ? reject(err) : resolve(r as ThreadResult)),
      () => (err ? reject(err) : resolve(r as ThreadResult)),
    );
  };

  worker.on('message', (m: { ack?: number; warning?: string; done?: ThreadResult; error?: SerializedError }) => {
    if (m.ack !== undefined) {
      inflight -= m.ack;
      if (waiting && inflight < INFLIGHT) {
        const cb = waiting;
        waiting = undefined;
        cb();
      }
    } else if (m.warning !== undefined) onWarning?.(m.warning);
    else if (m.done) finish(undefined, m.done);
    else if (m.error) finish(rebuild(m.error));
  });
  worker.on('error', (err) => finish(err));
  worker.on('exit', (code) => {
    if (!settled)
      finish(new TsrunError('ERR_INTERNAL', `the layer unpack thread exited (code ${code}) before it finished`));
  });
  source.on('error', (err) => finish(err));
  source.pipe(sink);

  return { result, abort: (err) => finish(err) };
}
