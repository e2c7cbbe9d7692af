/**
 * Rootless slirp4netns off the critical path (network/slirp.ts): the runtime creates the
 * container while slirp4netns comes up, yet the container's process starts only once its network
 * is complete — tap0 has its address and every `-p` port is forwarded at the first instruction
 * (the container reaches its own published port through the host, which fails if add_hostfwd has
 * not happened yet). After `run --rm` no slirp4netns, namespace, socket or record is left, though
 * nothing waits for slirp4netns's exit; and a detached container's slirp4netns ends by itself when
 * its monitor dies (its `--exit-fd`), without any tsrun command. Without -p the monitor waits for
 * slirp4netns's ready fd itself (one `runtime run`): the host is reachable at the first
 * instruction all the same, and a slirp4netns that fails before it is ready fails the run with its
 * own message, leaving nothing behind.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { BIN } from './cli.js';
import { eventually } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { freePort, hostAddress } from '../helpers/net.js';
import { endRootlessSession, ensureUser } from '../helpers/users.js';

const R = suite('e2e rootless slirp4netns');
const USER = 'tsrun-rl';
let reg: TestRegistry;
let IMAGE = '';
let uid = 0;
let gid = 0;
let home = '';
let root = '';

async function cli(args: string[], pathPrefix = '') {
  const r = await execa(BIN, ['--root', root, ...args], {
    reject: false,
    uid,
    gid,
    cwd: home,
    extendEnv: false,
    input: '',
    env: { HOME: home, PATH: pathPrefix + (process.env.PATH ?? '/usr/bin:/bin'), USER: String(uid) },
    timeout: 120_000,
    stripFinalNewline: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The user's live processes named `name` (a zombie, exited but not yet reaped by init, is not one). */
const pgrep = (name: string) =>
  procs()
    .filter((p) => p.comm === name && !p.stat.startsWith('Z'))
    .map((p) => p.pid);

/** The user's processes: pid, state, parent and name (for the assertions' messages too). */
const procs = () =>
  execFileSync('ps', ['-u', String(uid), '-o', 'pid=,stat=,ppid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map(([pid = '', stat = '', ppid = '', comm = '']) => ({ pid, stat, ppid, comm }));
const psText = () =>
  procs()
    .map((p) => `${p.pid} ${p.stat} ${p.ppid} ${p.comm}`)
    .join('\n');

/** What the user's slirp4netns attachments keep under the run dirs (namespaces, sockets, records). */
const slirpFiles = () =>
  readdirSync(`/tmp/tsrun-${uid}`).flatMap((d) => {
    const dir = path.join(`/tmp/tsrun-${uid}`, d, 'slirp');
    return existsSync(dir) ? readdirSync(dir) : [];
  });

R.before(async () => {
  ({ uid, gid, home } = ensureUser(USER, true));
  root = path.join(home, 'tsrun-slirp-store');
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'rl/busybox', '1');
  IMAGE = `${reg.host}/rl/busybox:1`;
  const pulled = await cli(['pull', '-q', IMAGE]);
  assert.is(pulled.code, 0, pulled.stderr);
});
R.after(async () => {
  await reg?.stop();
  endRootlessSession(uid);
  rmSync(root, { recursive: true, force: true });
});

R('run --rm: address and published port ready at the first instruction; nothing left afterwards', async () => {
  const port = await freePort();
  const host = hostAddress();
  for (let i = 0; i < 3; i++) {
    const r = await cli([
      'run',
      '--rm',
      '-p',
      `${port}:80`,
      IMAGE,
      'sh',
      '-c',
      `ip -o -4 addr show tap0; mkdir /www && echo first > /www/index.html && httpd -p 80 -h /www && wget -qO- http://${host}:${port}/`,
    ]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /tap0\s+inet 10\.0\.2\.100\/24/);
    assert.match(r.stdout, /^first$/m, r.stdout);
    assert.equal(slirpFiles(), [], 'no namespace, socket or record once run --rm returns');
  }
  const none = await cli(['run', '--rm', IMAGE, 'true']);
  assert.is(none.code, 0, none.stderr);
  assert.equal(slirpFiles(), []);
  await eventually('slirp4netns to be gone', async () => pgrep('slirp4netns').length === 0);
});

R('run --rm without -p: the host is reachable at the first instruction', async () => {
  const server = http.createServer((_, res) => res.end('host says hi\n'));
  const host = hostAddress();
  await new Promise<void>((r) => server.listen(0, host, r));
  try {
    const url = `http://${host}:${(server.address() as AddressInfo).port}/`;
    for (let i = 0; i < 3; i++) {
      const r = await cli(['run', '--rm', IMAGE, 'wget', '-qO-', url]);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout, 'host says hi\n');
      assert.equal(slirpFiles(), [], 'no namespace, socket, log or record once run --rm returns');
    }
  } finally {
    server.close();
  }
  await eventually('slirp4netns to be gone', async () => pgrep('slirp4netns').length === 0);
});

R('a slirp4netns that fails before it is ready fails the run with its message; nothing is left', async () => {
  // A stand-in first on PATH: it says why on stderr and exits, never writing its ready fd.
  const bin = path.join(home, 'fake-slirp');
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'slirp4netns'), '#!/bin/sh\necho "tap0 is on fire" >&2\nexit 3\n');
  chmodSync(path.join(bin, 'slirp4netns'), 0o755);
  chmodSync(bin, 0o755);
  try {
    for (const flags of [[], ['-p', `${await freePort()}:80`]]) {
      const r = await cli(['run', '--rm', ...flags, IMAGE, 'echo', 'never'], `${bin}:`);
      assert.is(r.code, 125, r.stderr);
      assert.not.match(r.stdout, 'never');
      assert.match(r.stderr, /slirp4netns exited \(3\): tap0 is on fire/);
      assert.equal(slirpFiles(), []);
    }
    assert.is(pgrep('tsrun-monitor').length, 0, psText());
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

R('a detached container: its slirp4netns ends by itself when its monitor dies', async () => {
  const r = await cli(['run', '-d', '--name', 'lifeline', IMAGE, 'sleep', '60']);
  assert.is(r.code, 0, r.stderr);
  try {
    assert.is(pgrep('slirp4netns').length, 1, `one slirp4netns runs after the CLI is gone:\n${psText()}`);
    const monitors = pgrep('tsrun-monitor');
    assert.is(monitors.length, 1, psText());
    process.kill(Number(monitors[0]), 'SIGKILL');
    await eventually('slirp4netns to end with its monitor', async () => pgrep('slirp4netns').length === 0);
  } finally {
    assert.is((await cli(['rm', '-f', 'lifeline'])).code, 0);
  }
  assert.equal(slirpFiles(), []);
});

R.run();
