/**
 * The terminal side of an attached container or exec session (`run` without -d, `start -a`,
 * `attach`, `exec`): the output to our stdout/stderr (with backpressure, stdio.ts), our stdin
 * to it with -i, our terminal in raw mode and its size with -t, signals we receive forwarded
 * to it (Docker's --sig-proxy, on by default), and Docker's detach keys.
 *
 * Detach keys (Docker's copyEscapable, moby container/stream/attach.go): only with a tty and
 * stdin attached; the sequence (default Ctrl-P Ctrl-Q, `--detach-keys`) is held back while it
 * matches and forwarded when it stops matching; the whole sequence detaches, leaving the
 * container running.
 *
 * Contract: `wire` installs everything before the container starts; `undo` restores the
 * terminal and removes every listener, so the CLI can exit normally (the terminal is also
 * restored if the process exits first, e.g. on a broken pipe).
 */
import { constants } from 'node:os';
import { TsrunError } from '../errors.js';
import type { Attachment } from '../runtime/monitor.js';
import { pushWriter } from './stdio.js';

const PROXIED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** Docker's --detach-keys syntax (moby/term ToBytes): "ctrl-<a-z @ [ \ ] ^ _>" or one character, comma-separated. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const key = raw.trim();
    const ctrl = /^ctrl-(.)$/i.exec(key);
    if (ctrl) {
      const ch = ctrl[1] as string;
      const lower = ch.toLowerCase();
      if (lower >= 'a' && lower <= 'z') out.push(lower.charCodeAt(0) - 96);
      else if ('@[\\]^_'.includes(ch)) out.push('@[\\]^_'.indexOf(ch) === 0 ? 0 : 26 + '@[\\]^_'.indexOf(ch));
      else
        throw new TsrunError('ERR_USAGE', `invalid detach keys "${spec}": unknown character: '${ch}'`, {
          hint: 'use e.g. --detach-keys ctrl-p,ctrl-q',
        });
    } else if (key.length === 1) {
      out.push(key.charCodeAt(0));
    } else {
      throw new TsrunError('ERR_USAGE', `invalid detach keys "${spec}": unknown character: '${key}'`, {
        hint: 'use e.g. --detach-keys ctrl-p,ctrl-q',
      });
    }
  }
  return Buffer.from(out);
}

/** Feeds stdin through the detach sequence: returns what to forward, and whether it matched. */
export function escapeFilter(keys: Buffer): (d: Buffer) => { forward: Buffer; detach: boolean } {
  let matched = 0;
  return (d) => {
    const out: number[] = [];
    for (const b of d) {
      if (keys.length > 0 && b === keys[matched]) {
        matched++;
        if (matched === keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      if (matched > 0) {
        out.push(...keys.subarray(0, matched));
        matched = 0;
        if (b === keys[0]) {
          matched = 1;
          continue;
        }
      }
      out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  };
}

export interface WireOptions {
  tty: boolean;
  interactive: boolean;
  sigProxy: boolean;
  /** Docker's --detach-keys (default ctrl-p,ctrl-q); used with tty and interactive only. */
  detachKeys?: string;
  /** `-a`: the output streams shown (default both). */
  streams?: { stdout: boolean; stderr: boolean };
}

export interface Wired {
  undo(): void;
  /** Resolves when the user typed the detach keys. */
  detached: Promise<void>;
}

export function wire(a: Attachment, o: WireOptions): Wired {
  const undo: (() => void)[] = [];
  let detach: () => void = () => {};
  const detached = new Promise<void>((resolve) => {
    detach = resolve;
  });
  // A slow reader of our stdout/stderr pauses the socket, and through it the container.
  const write = pushWriter(
    () => a.pause(),
    () => a.resume(),
  );
  // `-a`: a stream not attached is read (so the container never blocks) and dropped.
  if (o.streams?.stdout ?? true) a.onStdout((d) => write(process.stdout, d));
  if (o.streams?.stderr ?? true) a.onStderr((d) => write(process.stderr, d));

  if (o.tty && process.stdout.isTTY) {
    const resize = () => a.resize(process.stdout.rows || 24, process.stdout.columns || 80);
    resize();
    process.on('SIGWINCH', resize);
    undo.push(() => process.off('SIGWINCH', resize));
  }
  if (o.interactive) {
    const stdin = process.stdin;
    if (o.tty && stdin.isTTY) {
      stdin.setRawMode(true);
      const restore = () => {
        if (stdin.isTTY) stdin.setRawMode(false);
      };
      process.once('exit', restore);
      undo.push(() => {
        restore();
        process.off('exit', restore);
      });
    }
    const filter = o.tty ? escapeFilter(parseDetachKeys(o.detachKeys || DEFAULT_DETACH_KEYS)) : undefined;
    const onData = (d: Buffer) => {
      if (!filter) return a.stdin(d);
      const r = filter(d);
      if (r.forward.length > 0) a.stdin(r.forward);
      if (r.detach) detach();
    };
    const onEnd = () => a.closeStdin();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    undo.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      stdin.unref?.();
    });
  }
  if (o.sigProxy) {
    for (const name of PROXIED) {
      const fn = () => a.signal(constants.signals[name]);
      process.on(name, fn);
      undo.push(() => process.off(name, fn));
    }
  }
  return {
    undo: () => {
      for (const f of undo.reverse()) f();
      undo.length = 0;
    },
    detached,
  };
}

/**
 * Wait for the exit code, or for the detach keys (then undefined: the container goes on
 * running). Either way the terminal is restored; the caller closes the attachment after its
 * own clean-up.
 */
export async function waitAttached(a: Attachment, w: Wired): Promise<number | undefined> {
  try {
    return await Promise.race([a.exited, w.detached.then(() => undefined)]);
  } finally {
    w.undo();
  }
}
