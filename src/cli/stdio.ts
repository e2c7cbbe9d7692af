/**
 * The CLI's own stdout and stderr, written so that no byte is lost (issue 23, bug 1).
 *
 * On Linux, Node writes to a pipe asynchronously: `write` queues what the reader has not taken
 * yet, and `process.exit` drops that queue. So every writer that moves a lot (attached
 * containers, `logs`, `exec`) waits when `write` says the queue is full (backpressure, which in
 * turn slows the container through the monitor's blocking socket writes), and main.ts waits for
 * both queues to be empty before it exits.
 *
 * A reader of stdout that went away (`tsrun logs c | head -1`) is EPIPE: as a Go program such
 * as Docker's CLI dies of SIGPIPE there, tsrun then exits at once with 141 (128 + SIGPIPE),
 * saying nothing (a started container goes on under its monitor, which removes it for --rm, as
 * Docker's daemon does). A reader of stderr that went away only silences stderr: what tsrun
 * writes there is progress and explanation, and between a container's create and start (where
 * `--explain` writes most) an exit would leave a created container, its mount and netns behind.
 *
 * Node makes process.stdout and process.stderr on first use, and making one costs 0.5–2 ms (a
 * SyncWriteStream for a file, a net.Socket for a pipe, node:tty for a terminal), which a command
 * that never writes there (`run --rm IMAGE true`) need not pay. So the rule is installed by
 * replacing Node's getter: the first read of process.stdout (or stderr) makes the stream and adds
 * the rule before handing it out, so no write can happen unguarded. Code that may never write
 * holds the `CliIo` (whose out/err read process.stdout/stderr when used), not the stream.
 */

import { writeSync } from 'node:fs';

type StdName = 'stdout' | 'stderr';

/** The streams made so far, once guardStdio has run: flushStdio waits for these only. */
let opened: Set<NodeJS.WriteStream> | undefined;
/** While Node's stdout stream is unmade (printOut may then write fd 1 itself): the broken-pipe rule. */
let rawOut: (() => void) | undefined;

/** Install the broken-pipe rule on stdout and stderr, each when first used (once, from main). */
export function guardStdio(onBroken: () => void): void {
  opened ??= new Set();
  for (const name of ['stdout', 'stderr'] as const) {
    const own = Object.getOwnPropertyDescriptor(process, name);
    const make = own?.get;
    if (!own?.configurable || !make) {
      guard(name, process[name], onBroken);
      continue;
    }
    if (name === 'stdout') rawOut = onBroken;
    let s: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: own.enumerable,
      get: () => {
        if (s === undefined) {
          if (name === 'stdout') rawOut = undefined;
          s = make.call(process) as NodeJS.WriteStream;
          guard(name, s, onBroken);
        }
        return s;
      },
    });
  }
}

/**
 * Write a command's whole output (a listing) to stdout. While Node's stdout stream is unmade,
 * nothing was written before, so `text` goes straight to fd 1 by write(2): making the stream
 * loads node:stream (and node:net for a pipe, node:tty for a terminal), ~5–10 ms of a ~70 ms
 * `tsrun images` here (docs/benchmarks.md). What a non-blocking descriptor cannot take now
 * (EAGAIN: a slow reader of a pipe shared with a Node parent) goes to the stream, which queues
 * it and flushStdio waits for it, in order; a reader that went away (EPIPE) is the broken-pipe
 * rule, as for the stream. Once the stream exists, it is used.
 */
export function printOut(text: string): void {
  if (text === '') return;
  const onBroken = rawOut;
  if (!onBroken) {
    process.stdout.write(text);
    return;
  }
  const data = Buffer.from(text);
  let done = 0;
  try {
    while (done < data.length) done += writeSync(1, data, done, data.length - done);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return onBroken();
    if (code !== 'EAGAIN') throw e;
    process.stdout.write(data.subarray(done));
  }
}

function guard(name: StdName, s: NodeJS.WriteStream, onBroken: () => void): void {
  opened?.add(s);
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    if (name === 'stderr') mute(s);
    else onBroken();
  });
}

/** Every later write is dropped and reported done, so no writer waits for a drain that never comes. */
function mute(s: NodeJS.WriteStream): void {
  s.write = ((_chunk: unknown, a?: unknown, b?: unknown) => {
    const cb = typeof a === 'function' ? a : typeof b === 'function' ? b : undefined;
    if (cb) process.nextTick(cb as () => void);
    return true;
  }) as typeof s.write;
}

/**
 * Write and resolve once the stream can take more (at once when its queue is not full).
 * Callers that produce data in a loop await it; that is the whole of backpressure.
 */
export function writeOut(s: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> | undefined {
  if (s.write(data)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.once('drain', done);
    s.once('close', done);
  });
}

/**
 * Calls `pause` when stdout or stderr is full and `resume` once both have drained: for a push
 * source (the attach socket) that cannot be awaited.
 */
export function pushWriter(pause: () => void, resume: () => void): (s: NodeJS.WriteStream, data: Buffer) => void {
  let blocked = 0;
  const waiting = new Set<NodeJS.WritableStream>();
  return (s, data) => {
    if (s.write(data) || waiting.has(s)) return;
    waiting.add(s);
    if (blocked++ === 0) pause();
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      waiting.delete(s);
      if (--blocked === 0) resume();
    };
    s.once('drain', done);
    s.once('close', done);
  };
}

function flushed(s: NodeJS.WriteStream): Promise<void> {
  if (s.destroyed || (s.writableLength === 0 && !s.writableNeedDrain)) return Promise.resolve();
  // Writes complete in order: the callback of an empty one runs when everything before it is out.
  return new Promise((resolve) => s.write(Buffer.alloc(0), () => resolve()));
}

/** Resolves when everything written to stdout and stderr has reached the reader (or it went away). */
export async function flushStdio(): Promise<void> {
  await Promise.all([...(opened ?? [process.stdout, process.stderr])].map(flushed));
}
