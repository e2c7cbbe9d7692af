/**
 * Node built-ins that `run` imports but seldom uses, loaded on first use. node:child_process
 * loads dgram, the socket list and the child-process machinery (~2–3 ms of CPU on this kind of
 * machine), node:dgram the UDP sockets; `run --rm --network none` as root imports every module
 * that spawns something (runc helpers, slirp4netns, fuse-overlayfs, the rootless namespace) or
 * probes a UDP port, and does neither from Node: the monitor is started by the native addon
 * (docs/benchmarks.md, "run").
 *
 * Contract: each function returns the built-in itself; modules on `run`'s import path call it
 * where they spawn or bind instead of importing the built-in at the top. (node:crypto has its own
 * module, util/crypto.ts.)
 */
import { createRequire } from 'node:module';

type NodeChildProcess = typeof import('node:child_process');
type NodeDgram = typeof import('node:dgram');

let cp: NodeChildProcess | undefined;
let dg: NodeDgram | undefined;

export function childProcess(): NodeChildProcess {
  return (cp ??= createRequire(import.meta.url)('node:child_process') as NodeChildProcess);
}

export function dgram(): NodeDgram {
  return (dg ??= createRequire(import.meta.url)('node:dgram') as NodeDgram);
}
