/**
 * Calling CNI plugins the way the CNI specification (1.0.0, SPEC.md "Execution Protocol" and
 * "Network configuration lists") says a runtime does: the plugin binary is found by its `type`
 * in CNI_PATH, gets its parameters in CNI_* environment variables and its configuration as JSON
 * on stdin, and answers with a result (or an error object) on stdout.
 *
 * Contract:
 * - `addList` runs a configuration list's plugins in order, giving each the previous result as
 *   `prevResult` and only the `runtimeConfig` keys it declared in `capabilities`; if one fails,
 *   the list is deleted again (the spec's advice) so a failed ADD leaves nothing.
 * - `delList` runs the plugins in reverse order with the cached ADD result; it keeps going past
 *   failures (every plugin gets its chance to clean up) and throws the first one at the end.
 *   Plugins treat a DEL of something already gone as success, so it is idempotent.
 * - Failures are TsrunError('ERR_CNI') naming the plugin, the command and the plugin's message.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { runProgram } from '../util/exec.js';

export const CNI_VERSION = '1.0.0';

/** Where distributions install the reference plugins (Debian: /usr/lib/cni). */
export const DEFAULT_CNI_PATH = ['/usr/lib/cni', '/usr/libexec/cni', '/opt/cni/bin'];

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
}

export interface Invocation {
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_PATH directories. */
  paths: string[];
  /** The caller's PATH (the plugins' own PATH gets the sbin directories added). */
  pathEnv?: string;
  /** Told of each plugin call: its input, exit status and result. */
  reporter?: Reporter;
}

export function cniPath(env: NodeJS.ProcessEnv): string[] {
  return env.CNI_PATH ? env.CNI_PATH.split(':').filter(Boolean) : DEFAULT_CNI_PATH;
}

/** The plugin's path (a metadata check, done at once: util/fs-quick.ts says why). */
function findPlugin(type: string, dirs: string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) throw new TsrunError('ERR_CNI', `invalid CNI plugin type "${type}"`);
  for (const d of dirs) {
    const p = path.join(d, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new TsrunError('ERR_CNI', `finding the CNI plugin "${type}": not in ${dirs.join(':')}`, {
    hint: 'install the reference plugins: apt-get install containernetworking-plugins (or set CNI_PATH)',
  });
}

async function invoke(
  command: 'ADD' | 'DEL',
  conf: Record<string, unknown>,
  inv: Invocation,
): Promise<CniResult | undefined> {
  const type = String(conf.type);
  const file = findPlugin(type, inv.paths);
  const env: NodeJS.ProcessEnv = {
    // The plugins run iptables and friends: make sure the sbin directories are searched.
    PATH: `${inv.pathEnv ? `${inv.pathEnv}:` : ''}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_PATH: inv.paths.join(':'),
  };
  const started = performance.now();
  const r = await runProgram(file, [], { input: JSON.stringify(conf), env, timeoutMs: 60_000 });
  const ms = Math.round((performance.now() - started) * 10) / 10;
  let parsed: unknown;
  try {
    parsed = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    parsed = undefined;
  }
  inv.reporter?.emit({
    type: 'cni',
    command,
    plugin: type,
    path: file,
    containerId: inv.containerId,
    netns: inv.netns,
    ifName: inv.ifName,
    input: conf,
    exitCode: r.code,
    ...(parsed !== undefined ? { result: parsed } : {}),
    ms,
  });
  if (r.code !== 0) {
    let msg = (r.stderr || r.stdout).trim() || `exit status ${r.code}`;
    try {
      const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
    } catch {
      /* not JSON */
    }
    throw new TsrunError(
      'ERR_CNI',
      `CNI plugin ${type} ${command} for container ${inv.containerId.slice(0, 12)}: ${msg}`,
    );
  }
  if (command === 'DEL' || !r.stdout.trim()) return undefined;
  try {
    return JSON.parse(r.stdout) as CniResult;
  } catch {
    throw new TsrunError('ERR_CNI', `CNI plugin ${type} ADD: its result is not JSON: ${r.stdout.slice(0, 200)}`);
  }
}

/** One plugin's stdin: its own config plus the list's name/version, prevResult and granted runtimeConfig. */
function pluginInput(
  list: ConfList,
  plugin: PluginConf,
  prevResult: CniResult | undefined,
  runtimeConfig: Record<string, unknown>,
): Record<string, unknown> {
  const granted: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && runtimeConfig[cap] !== undefined) granted[cap] = runtimeConfig[cap];
  }
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  delete conf.capabilities;
  if (Object.keys(granted).length > 0) conf.runtimeConfig = granted;
  if (prevResult) conf.prevResult = prevResult;
  return conf;
}

export async function addList(
  list: ConfList,
  inv: Invocation,
  runtimeConfig: Record<string, unknown> = {},
): Promise<CniResult> {
  let result: CniResult | undefined;
  try {
    for (const plugin of list.plugins) {
      result = (await invoke('ADD', pluginInput(list, plugin, result, runtimeConfig), inv)) ?? result;
    }
  } catch (err) {
    await delList(list, inv, result, runtimeConfig).catch(() => {});
    throw err;
  }
  return result ?? { cniVersion: list.cniVersion };
}

export async function delList(
  list: ConfList,
  inv: Invocation,
  prevResult: CniResult | undefined,
  runtimeConfig: Record<string, unknown> = {},
): Promise<void> {
  let first: unknown;
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await invoke('DEL', pluginInput(list, plugin, prevResult, runtimeConfig), inv);
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}
