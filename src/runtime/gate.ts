/**
 * The network gate: as root, a container's network plugins run beside the runtime's create, and
 * the container's process must still never run before its network is up. The runtime holds it
 * back itself: the spec gets one createRuntime hook (runtime-spec config.md, "createRuntime
 * Hooks": run in the runtime's namespaces once the container's namespaces exist, before
 * pivot_root; a failing hook fails the container), `tsrun-monitor --network-gate FIFO`
 * (native-helpers/src/ready.c), which waits for one byte on a FIFO in the container's state
 * directory. So one runtime process (`run`, or `run --detach`) creates and starts the container,
 * instead of `create` here, `start` once the network is up and `delete` after the exit.
 *
 * Contract:
 * - `openGate` makes the FIFO and holds it open (read and write, close-on-exec: no program
 *   inherits it) before the runtime runs; `ready()` writes "1" (the hook then returns 0),
 *   `close()` drops it: a hook still waiting then reads end of file and fails, so a network that
 *   failed, or a tsrun that died, leaves a container that never ran. The caller closes the gate
 *   only once the runtime has returned (before that, closing would lose a byte not yet read).
 *   Where no FIFO exists (the bundle run by hand, without tsrun) the hook lets the container run.
 * - `gateHook` is the hook for a spec; `syncGateHook` puts it into a bundle's config.json (the
 *   monitor's path is taken at each start, so a moved installation never leaves a stale hook).
 * - Only runtimes known to run createRuntime hooks (runc ≥ 1.0, crun) get the gate; for others the
 *   caller keeps `create`, then `start` once the network is up.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { quickFs } from '../util/fs-quick.js';
import { parseSpec, serializeSpec } from '../spec/defaults.js';
import type { Hook, Spec } from '../spec/types.js';
import { monitorBinary } from './monitor.js';

const FLAG = '--network-gate';
const S_IFIFO = 0o010000;
/** Seconds a runtime lets the hook wait (the hook's own alarm says the same). */
const TIMEOUT_S = 120;

export interface Gate {
  /** The FIFO the hook reads. */
  fifo: string;
  ready(): void;
  close(): void;
}

/** Runtimes that run createRuntime hooks (the gate would be ignored elsewhere). */
export function runtimeGates(runtimeName: string): boolean {
  return runtimeName === 'runc' || runtimeName === 'crun';
}

export function gateFifo(stateDir: string): string {
  return path.join(stateDir, 'network-gate');
}

export function gateHook(stateDir: string): Hook {
  return { path: monitorBinary(), args: ['tsrun-monitor', FLAG, gateFifo(stateDir)], timeout: TIMEOUT_S };
}

/** Make the gate's FIFO in `stateDir` (which exists) and hold it open. */
export function openGate(stateDir: string): Gate {
  const fifo = gateFifo(stateDir);
  rmSync(fifo, { force: true });
  native().mknod(fifo, S_IFIFO | 0o600, 0, 0);
  // Read and write: never blocks, and keeps a writer for the hook's open and read.
  let fd: number | undefined = openSync(fifo, 'r+');
  return {
    fifo,
    ready() {
      if (fd !== undefined) writeSync(fd, '1');
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** Set (or with `hook` undefined, remove) tsrun's gate among the spec's createRuntime hooks. */
export function withGateHook(spec: Spec, hook: Hook | undefined): void {
  const others = (spec.hooks?.createRuntime ?? []).filter((h) => h.args?.[1] !== FLAG);
  const createRuntime = hook ? [...others, hook] : others;
  const hooks: NonNullable<Spec['hooks']> = { ...spec.hooks };
  if (createRuntime.length) hooks.createRuntime = createRuntime;
  else delete hooks.createRuntime;
  if (Object.keys(hooks).length) spec.hooks = hooks;
  else delete spec.hooks;
}

/**
 * The gate for one start, or undefined where the runtime would not run it: the FIFO made and held
 * in `stateDir` (made here), config.json's hook brought to it, and `ready()` or `close()` wired
 * to the network's outcome (`attaching`). The caller closes it once the runtime has returned.
 */
export async function startGate(o: {
  stateDir: string;
  configFile: string;
  runtimeName: string;
  attaching: Promise<unknown>;
}): Promise<Gate | undefined> {
  if (!runtimeGates(o.runtimeName)) return undefined;
  await quickFs.mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  await syncGateHook(o.configFile, gateHook(o.stateDir));
  const gate = openGate(o.stateDir);
  o.attaching.then(
    () => gate.ready(),
    () => gate.close(),
  );
  return gate;
}

/** Bring config.json's gate hook to `hook` (undefined: none); writes only on a change. */
export async function syncGateHook(configFile: string, hook: Hook | undefined): Promise<void> {
  const text = await quickFs.readFile(configFile, 'utf8');
  const spec = parseSpec(text);
  withGateHook(spec, hook);
  const out = serializeSpec(spec);
  if (out !== text) await quickFs.writeFile(configFile, out);
}
