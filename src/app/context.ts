/**
 * What every use case receives: where the store is, who listens to events, and the process
 * environment (passed in, never read deep inside, so tests can give their own).
 */
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { silentReporter } from '../events.js';

export interface AppContext {
  /** The store root (`--root`, `TSRUN_ROOT`, or the default for this user). */
  root: string;
  reporter: Reporter;
  env: NodeJS.ProcessEnv;
  home: string;
  /** The user's real uid (outside the rootless namespace too). */
  uid: number;
  /** Running inside the rootless namespace (uid 0 there, `uid` outside; src/rootless/). */
  rootless: boolean;
}

/** Default store root: /var/lib/tsrun for root, $XDG_DATA_HOME/tsrun (~/.local/share/tsrun) otherwise. */
export function defaultRoot(env: NodeJS.ProcessEnv, uid: number, home: string): string {
  if (env.TSRUN_ROOT) return env.TSRUN_ROOT;
  if (uid === 0) return '/var/lib/tsrun';
  return path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'tsrun');
}

export function processContext(opts: { root?: string; reporter?: Reporter } = {}): AppContext {
  const env = process.env;
  const inside = process.getuid ? process.getuid() : 0;
  const rootless = Boolean(env.TSRUN_ROOTLESS) && inside === 0;
  const uid = rootless ? Number(env.TSRUN_ROOTLESS) : inside;
  const home = env.HOME || os.homedir();
  return {
    root: path.resolve(opts.root ?? defaultRoot(env, uid, home)),
    reporter: opts.reporter ?? silentReporter,
    env,
    home,
    uid,
    rootless,
  };
}
