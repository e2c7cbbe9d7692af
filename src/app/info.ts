/**
 * `tsrun info`: where things are and what this host gives tsrun, as `docker info` does, plus
 * (for a non-root user) each rootless prerequisite with the command that fixes what is missing.
 * Read-only; never fails for a missing piece (that is what it reports).
 */
import os from 'node:os';
import { storePaths } from '../runtime/paths.js';
import { locateRuntime } from '../runtime/oci-runtime.js';
import { rootlessChecks, type Check } from '../rootless/checks.js';
import { runningPause, storageProbe } from '../rootless/namespace.js';
import type { AppContext } from './context.js';

export interface Info {
  version: string;
  user: { uid: number; name: string };
  rootless: boolean;
  rootDir: string;
  runDir: string;
  runtime: { name: string; path?: string; version?: string; error?: string };
  storage: string;
  network: string;
  /** Rootless prerequisites (non-root users only). */
  checks?: Check[];
  /** The rootless namespace's pause process, when it is running. */
  pause?: number;
}

function rootlessStorage(uid: number, env: NodeJS.ProcessEnv, running: boolean): string {
  const p = storageProbe(uid, env);
  if (!p) return 'overlay with userxattr in the rootless user namespace (probed when the namespace starts)';
  const name = p.driver === 'overlay-userxattr' ? 'overlay' : p.driver;
  // The probe file outlives its namespace; the next one probes again (TSRUN_STORAGE_DRIVER may differ).
  const stale = running ? '' : '; that namespace has ended: the next command probes again';
  return p.ok ? `${name} (${p.detail}; probed ${p.at}${stale})` : `NONE: ${p.detail}${stale}`;
}

export async function systemInfo(ctx: AppContext, version: string): Promise<Info> {
  const uid = ctx.uid;
  const rootless = uid !== 0;
  const sp = storePaths(ctx.root, uid, ctx.env);
  let runtime: Info['runtime'];
  try {
    const r = await locateRuntime('runc', ctx.env, sp.run);
    runtime = { name: r.name, path: r.path, version: r.version };
  } catch (e) {
    runtime = { name: 'runc', error: (e as Error).message };
  }
  const pause = rootless ? runningPause(uid, ctx.env) : undefined;
  const info: Info = {
    version,
    user: { uid, name: os.userInfo().username },
    rootless,
    rootDir: ctx.root,
    runDir: sp.run,
    runtime,
    storage: rootless ? rootlessStorage(uid, ctx.env, pause !== undefined) : 'overlay',
    network: rootless
      ? 'slirp4netns (the default; -p through its port forwarder), none, host'
      : 'bridge (CNI: bridge, host-local; NAT and -p: iptables-restore), none, host',
  };
  if (rootless) {
    info.checks = await rootlessChecks({ uid, gid: process.getgid?.() ?? 0, name: info.user.name }, ctx.env);
    info.pause = pause;
  }
  return info;
}
