/**
 * The worker-thread side of layer-thread.ts: the decompression, tar reading, file creation, diff
 * id and fingerprint of layers, off the main thread. One worker runs any number of layers at once
 * (each is a job with an id); it is fed their compressed bytes by message.
 *
 * Protocol (all messages are plain objects, every one names its job):
 *   parent → worker: { job, start: WorkerInit }, { job, chunk: Uint8Array } (the next compressed
 *                    bytes), { job, end: true }, { job, abort: { message } } (stop this layer)
 *   worker → parent: { job, ack: n } (n bytes consumed: credit back), { job, warning: text },
 *                    then exactly one of { job, done: ThreadResult } or { job, error: SerializedError },
 *                    sent only once the layer's unpack has returned (nothing writes to its
 *                    directory after it)
 * The worker never exits by itself; the parent terminates it when it is idle.
 */
import { Readable } from 'node:stream';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { TsrunError } from '../errors.js';
import { decompress, type ArchiveCompression } from '../layers/compression.js';
import { unpackTar, type UnpackOptions, type UnpackResult } from '../layers/unpack.js';
import { fingerprintOf } from '../store/verify.js';

/** The unpack's result, and the store's fingerprint of the finished tree (store/verify.ts), made here too. */
export interface ThreadResult extends UnpackResult {
  fingerprint: { fingerprint: string; entries: number };
}

export interface WorkerInit {
  dest: string;
  compression: ArchiveCompression;
  opts: Omit<UnpackOptions, 'onWarning' | 'linkFrom'>;
}

/** An error as it crosses the thread boundary (layer-thread.ts rebuilds it). */
export interface SerializedError {
  tsrun: boolean;
  name: string;
  message: string;
  code?: string;
  hint?: string;
  retryable?: boolean;
  syscall?: string;
  path?: string;
  errno?: number;
}

export function serializeError(err: unknown): SerializedError {
  const e = (err ?? {}) as Partial<TsrunError> & NodeJS.ErrnoException;
  const out: SerializedError = {
    tsrun: err instanceof TsrunError,
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
  };
  if (typeof e.code === 'string') out.code = e.code;
  if (typeof e.hint === 'string') out.hint = e.hint;
  if (typeof e.retryable === 'boolean') out.retryable = e.retryable;
  if (typeof e.syscall === 'string') out.syscall = e.syscall;
  if (typeof e.path === 'string') out.path = e.path;
  if (typeof e.errno === 'number') out.errno = e.errno;
  return out;
}

export type ToWorker =
  | { job: number; start: WorkerInit }
  | { job: number; chunk: Uint8Array }
  | { job: number; end: true }
  | { job: number; abort: { message: string } };

export interface FromWorker {
  job: number;
  ack?: number;
  warning?: string;
  done?: ThreadResult;
  error?: SerializedError;
}

/** One layer in this worker: its input, fed by the parent's messages, and its credit owed. */
interface Feed {
  input: Readable;
  /** The decompressor's output, which the unpack reads: destroying it stops the unpack. */
  tar: Readable;
  unacked: number;
}

function startJob(port: MessagePort, job: number, init: WorkerInit, settled: () => void): Feed {
  // Credit goes back when the decompressor takes the bytes, not when they arrive: a full
  // buffer here holds the parent's writes (and through them the network) back.
  let owed = 0;
  const input = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (owed > 0) {
        port.postMessage({ job, ack: owed } satisfies FromWorker);
        owed = 0;
      }
    },
  });
  const tar = decompress(input, init.compression);
  unpackTar(tar, init.dest, {
    ...init.opts,
    onWarning: (warning) => port.postMessage({ job, warning } satisfies FromWorker),
  })
    .then(async (r): Promise<ThreadResult> => ({ ...r, fingerprint: await fingerprintOf(init.dest) }))
    .then(
      (done) => port.postMessage({ job, done } satisfies FromWorker),
      (err: unknown) => port.postMessage({ job, error: serializeError(err) } satisfies FromWorker),
    )
    .finally(settled);
  return {
    input,
    tar,
    get unacked() {
      return owed;
    },
    set unacked(n: number) {
      owed = n;
    },
  };
}

function main(): void {
  const port = parentPort;
  if (!port) return;
  const feeds = new Map<number, Feed>();
  port.on('message', (m: ToWorker) => {
    if ('start' in m) {
      const job = m.job;
      feeds.set(
        job,
        startJob(port, job, m.start, () => feeds.delete(job)),
      );
      return;
    }
    const feed = feeds.get(m.job);
    if (!feed) return;
    if ('chunk' in m) {
      const b = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      if (feed.input.push(b)) port.postMessage({ job: m.job, ack: b.length } satisfies FromWorker);
      else feed.unacked += b.length;
    } else if ('end' in m) {
      feed.input.push(null);
    } else {
      // The unpack then fails at its next read (or, past its last one, soon returns anyway),
      // and its answer says it has returned.
      const err = new TsrunError('ERR_INTERNAL', `stopped: ${m.abort.message}`);
      feed.input.destroy(err);
      feed.tar.destroy(err);
    }
  });
}

main();
