/**
 * The worker-thread side of layer-thread.ts: one layer's decompression, tar reading, file
 * creation and diff id, off the main thread. Started by `unpackInWorker` with the destination,
 * the compression and the unpack options as workerData; then fed the compressed bytes by message.
 *
 * Protocol (all messages are plain objects):
 *   parent → worker: { chunk: Uint8Array } (the next compressed bytes), { end: true }
 *   worker → parent: { ack: n } (n bytes consumed: credit back), { warning: text },
 *                    { done: ThreadResult }, { error: SerializedError }
 * The worker never exits by itself; the parent terminates it after `done` or `error`.
 */
import { Readable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
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

function main(): void {
  const port = parentPort;
  if (!port) return;
  const init = workerData as WorkerInit;
  // Credit goes back when the decompressor takes the bytes, not when they arrive: a full
  // buffer here holds the parent's writes (and through them the network) back.
  let unacked = 0;
  const input = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (unacked > 0) {
        port.postMessage({ ack: unacked });
        unacked = 0;
      }
    },
  });
  port.on('message', (m: { chunk?: Uint8Array; end?: boolean }) => {
    if (m.chunk) {
      const b = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      if (input.push(b)) port.postMessage({ ack: b.length });
      else unacked += b.length;
    } else if (m.end) input.push(null);
  });
  const tar = decompress(input, init.compression);
  unpackTar(tar, init.dest, { ...init.opts, onWarning: (warning) => port.postMessage({ warning }) })
    .then(async (r): Promise<ThreadResult> => ({ ...r, fingerprint: await fingerprintOf(init.dest) }))
    .then(
      (done) => port.postMessage({ done }),
      (err: unknown) => port.postMessage({ error: serializeError(err) }),
    );
}

main();
