/**
 * Waking whoever waits for a container to change (`wait`, the Engine API's `/wait`, `stop`)
 * when it changes, instead of on a polling tick: inotify (fs.watch) on the directories the
 * monitor and cleanup write to — the container's state directory (the monitor renames its exit
 * file into it), the store's volatile directory (a state directory made again by a restart, or
 * removed) and the containers directory (a record removed by `rm` or an `--rm` cleanup).
 *
 * Contract: `nextChange` resolves at the first event on any of them, or after `fallbackMs` at
 * the latest (a directory that does not exist yet cannot be watched; a change can happen before
 * the watch is set). Callers set the watch up *before* they look at the state, then await it,
 * so a change between the look and the wait is never slept through. `close` must be called.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { ContainerPaths, StorePaths } from './paths.js';

export interface Change {
  changed: Promise<void>;
  close(): void;
}

export function nextChange(dirs: readonly string[], fallbackMs: number): Change {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let wake = () => {};
  const changed = new Promise<void>((resolve) => {
    wake = resolve;
  });
  for (const d of dirs) {
    try {
      const w = watch(d, { persistent: false }, () => wake());
      w.on('error', () => wake());
      watchers.push(w);
    } catch {
      /* missing: the fallback covers it */
    }
  }
  timer = setTimeout(() => wake(), fallbackMs);
  return {
    changed,
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const w of watchers) w.close();
    },
  };
}

/** The directories a container's exit, restart and removal change. */
export function containerDirs(sp: StorePaths, p: ContainerPaths): string[] {
  return [p.state, sp.run, path.dirname(p.dir)];
}
