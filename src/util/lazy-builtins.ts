/**
 * Node built-ins that commands import but seldom use, loaded on first use:
 * - node:crypto (~2 ms of CPU: all of Node's crypto modules, keys, ciphers and X.509 included):
 *   the store code every listing command imports only hashes or names temp files when it
 *   writes (docs/benchmarks.md, "Listing commands");
 * - node:child_process (dgram, the socket list and the child-process machinery, ~2–3 ms) and
 *   node:dgram (the UDP sockets): `run --rm --network none` as root imports every module that
 *   spawns something (runc helpers, slirp4netns, fuse-overlayfs, the rootless namespace) or
 *   probes a UDP port, and does neither from Node: the monitor is started by the native addon
 *   (docs/benchmarks.md, "run");
 * - node:net (~5 ms: streams, the socket machinery): util/exec.ts reads its programs' pipes
 *   through it, and the listing commands import util/exec.ts without running anything.
 *
 * Contract: each function returns the built-in itself; modules on a command's import path call
 * it where they hash, spawn or bind instead of importing the built-in at the top.
 */
import { createRequire } from 'node:module';

type Crypto = typeof import('node:crypto');
type ChildProcess = typeof import('node:child_process');
type Dgram = typeof import('node:dgram');
type Net = typeof import('node:net');

const load = <T>(id: string): T => createRequire(import.meta.url)(id) as T;

let cr: Crypto | undefined;
let cp: ChildProcess | undefined;
let dg: Dgram | undefined;
let nt: Net | undefined;

export function crypto(): Crypto {
  return (cr ??= load<Crypto>('node:crypto'));
}

export function childProcess(): ChildProcess {
  return (cp ??= load<ChildProcess>('node:child_process'));
}

export function dgram(): Dgram {
  return (dg ??= load<Dgram>('node:dgram'));
}

export function net(): Net {
  return (nt ??= load<Net>('node:net'));
}
