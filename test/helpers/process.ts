/**
 * Test helpers for child processes. `exitedWithin(c, ms)`: true once `c` has exited (at once if
 * it already has), false if it is still running after `ms`.
 */
import type { ChildProcess } from 'node:child_process';

export const exitedWithin = (c: ChildProcess, ms: number): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    c.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
