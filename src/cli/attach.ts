/**
 * The terminal side of an attached container (`run` without -d): the container's output to our
 * stdout/stderr, our stdin to it with -i, our terminal in raw mode and its size with -t, and
 * signals we receive forwarded to it (Docker's --sig-proxy, on by default).
 *
 * Contract: `wire` installs everything before the container starts; the returned function
 * restores the terminal and removes every listener, so the CLI can exit normally.
 */
import { constants } from 'node:os';
import type { Attachment } from '../runtime/monitor.js';
import { pushWriter } from './stdio.js';

const PROXIED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

export function wire(a: Attachment, o: { tty: boolean; interactive: boolean; sigProxy: boolean }): () => void {
  const undo: (() => void)[] = [];
  // A slow reader of our stdout/stderr pauses the socket, and through it the container.
  const write = pushWriter(() => a.pause(), () => a.resume());
  a.onStdout((d) => write(process.stdout, d));
  a.onStderr((d) => write(process.stderr, d));

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
      undo.push(() => stdin.setRawMode(false));
    }
    const onData = (d: Buffer) => a.stdin(d);
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
  return () => { for (const f of undo.reverse()) f(); };
}
