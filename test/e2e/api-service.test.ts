/**
 * `tsrun system service` itself: the socket's mode, Docker's error bodies and status codes,
 * versioned paths, two services on two stores (raw requests and the docker CLI through each),
 * idle exit (`--time 1`: ~1 s after the last client left, never under a `logs -f` or `wait` in
 * flight), and `--exec` sessions: what CMD made (containers, networks, volumes) is removed when
 * CMD exits or is SIGKILLed; when the service itself is SIGKILLed, the next service start and
 * `system prune` remove it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { sleep } from '../../src/util/concurrency.js';
import type { TestRegistry } from '../helpers/registry.js';
import {
  DOCKER,
  busyboxRegistry,
  docker,
  dockerClient,
  request,
  startService,
  type RunningService,
} from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-svc-'));
const rootA = path.join(tmp, 'a');
const rootB = path.join(tmp, 'b');
let reg: TestRegistry;
let IMAGE = '';
/** Networks are the host's, not a store's: a name of this run's own. */
const NET = `svc-sess-${process.pid}`;

const S = suite('e2e api: the service');

S.before(async () => {
  await dockerClient();
  ({ reg, image: IMAGE } = await busyboxRegistry());
  for (const r of [rootA, rootB]) assert.is((await tsrun(['pull', '-q', IMAGE], { root: r })).code, 0);
});
S.after(async () => {
  for (const root of [rootA, rootB]) {
    const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
    for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
    rmSync(runDir(root), { recursive: true, force: true });
  }
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

S('socket 0600; Docker errors, status codes and versioned paths; two stores do not see each other', async () => {
  const a = await startService(rootA, path.join(tmp, 'a.sock'));
  const b = await startService(rootB, path.join(tmp, 'b.sock'));
  try {
    assert.is(statSync(a.socket).mode & 0o777, 0o600);
    const ping = await request(a.socket, 'HEAD', '/v1.24/_ping');
    assert.is(ping.status, 200);
    assert.is(ping.headers['api-version'], '1.43');
    const nc = await request(a.socket, 'GET', '/v1.41/containers/nosuch/json');
    assert.is(nc.status, 404);
    assert.equal(nc.json(), { message: 'No such container: nosuch' });
    const ni = await request(a.socket, 'GET', '/images/no-such-image:1/json');
    assert.is(ni.status, 404);
    assert.equal(ni.json(), { message: 'No such image: no-such-image:1' });
    const missingImage = await request(a.socket, 'POST', '/containers/create', { Image: 'no-such-image:1' });
    assert.is(missingImage.status, 404);
    assert.equal(missingImage.json(), { message: 'No such image: no-such-image:1' });
    const bad = await request(a.socket, 'POST', '/v1.43/containers/create', { Image: IMAGE, Env: 5 });
    assert.is(bad.status, 400);
    assert.match(bad.json().message, /\bEnv\b/);
    const badPort = await request(a.socket, 'POST', '/containers/create', {
      Image: IMAGE,
      HostConfig: { PortBindings: { '80/tcp': 'x' } },
    });
    assert.is(badPort.status, 400);
    assert.match(badPort.json().message, /HostConfig\.PortBindings/);
    // Unknown fields and query parameters are ignored.
    const made = await request(a.socket, 'POST', '/v1.41/containers/create?name=onlya&whatever=1', {
      Image: IMAGE,
      Cmd: ['sleep', '30'],
      FromTheFuture: { x: 1 },
    });
    assert.is(made.status, 201, made.body);
    const dup = await request(a.socket, 'POST', '/containers/create?name=onlya', { Image: IMAGE });
    assert.is(dup.status, 409);
    const stopCreated = await request(a.socket, 'POST', '/containers/onlya/stop');
    assert.is(stopCreated.status, 304);
    const listA = (await request(a.socket, 'GET', '/containers/json?all=1&filters={"name":["onlya"]}')).json();
    assert.equal(
      listA.map((c: any) => c.Names),
      [['/onlya']],
    );
    assert.equal((await request(b.socket, 'GET', '/containers/json?all=1')).json(), []);
    assert.is((await request(b.socket, 'GET', '/containers/onlya/json')).status, 404);
    assert.is((await tsrun(['ps', '-a', '--format', '{{.Names}}'], { root: rootA })).stdout, 'onlya\n');
    // The docker CLI through each socket: each sees its own store only.
    const inB = await docker(b.socket, ['run', '-d', '--name', 'onlyb', IMAGE, 'sleep', '30']);
    assert.is(inB.code, 0, inB.stderr);
    const names = async (sock: string) => (await docker(sock, ['ps', '-a', '--format', '{{.Names}}'])).stdout;
    assert.is(await names(a.socket), 'onlya\n');
    assert.is(await names(b.socket), 'onlyb\n');
    const fromA = await docker(a.socket, ['inspect', 'onlyb']);
    assert.is(fromA.code, 1);
    assert.match(fromA.stderr, 'No such object: onlyb');
    assert.is((await docker(b.socket, ['rm', '-f', 'onlyb'])).code, 0);
    assert.is((await request(a.socket, 'DELETE', '/containers/onlya')).status, 204);
  } finally {
    await a.stop();
    await b.stop();
    // What a failed assertion left is not the next test's.
    await tsrun(['rm', '-f', 'onlya'], { root: rootA });
    await tsrun(['rm', '-f', 'onlyb'], { root: rootB });
  }
  assert.not.ok(existsSync(path.join(tmp, 'a.sock')));
});

/** Milliseconds from `from` until the service exits, and its exit code. */
async function exitAfter(svc: RunningService, from: number): Promise<{ ms: number; code: number | undefined }> {
  const r = await svc.proc;
  return { ms: Date.now() - from, code: r.exitCode };
}

S('idle exit: --time 1 ends the service ~1 s after the last client left, not while clients come', async () => {
  const sock = path.join(tmp, 'idle.sock');
  const svc = await startService(rootA, sock, ['--time', '1']);
  // Clients one after another, each within a second of the last: the service stays.
  for (let i = 0; i < 4; i++) {
    const ps = await docker(sock, ['ps', '-q']);
    assert.is(ps.code, 0, `client ${i}: ${ps.stderr}`);
    await sleep(600);
  }
  const v = await docker(sock, ['version', '--format', '{{.Server.Version}}']);
  assert.is(v.code, 0, v.stderr);
  const last = Date.now();
  const { ms, code } = await exitAfter(svc, last);
  assert.is(code, 0);
  // Not before --time; soon after (~1.1 s on a quiet machine; beside CPU hogs a Node exit took seconds).
  assert.ok(ms >= 900 && ms < 15_000, `exited ${ms} ms after the last client`);
  assert.not.ok(existsSync(sock));
});

S('idle exit: a logs -f, then a wait, in flight holds the service past --time', async () => {
  const cases = [
    { args: (id: string) => ['logs', '-f', id], cmd: 'sleep 5; echo bye', out: 'bye\n' },
    { args: (id: string) => ['wait', id], cmd: 'sleep 5; exit 4', out: '4\n' },
  ];
  for (const c of cases) {
    // Made by the CLI (one store): its output comes seconds after the service is idle-armed.
    const run = await tsrun(['run', '-d', '--network', 'none', IMAGE, 'sh', '-c', c.cmd], { root: rootA });
    assert.is(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    const sock = path.join(tmp, 'held.sock');
    const svc = await startService(rootA, sock, ['--time', '1']);
    const t0 = Date.now();
    const r = await docker(sock, c.args(id));
    const held = Date.now() - t0;
    assert.is(r.stdout, c.out, `${c.args(id)[0]}: ${r.stderr}`);
    assert.ok(held > 1500, `${c.args(id)[0]} took ${held} ms only: not past --time`);
    const { ms, code } = await exitAfter(svc, Date.now());
    assert.is(code, 0);
    assert.ok(ms >= 800 && ms < 15_000, `exited ${ms} ms after ${c.args(id)[0]} ended`);
    assert.is((await tsrun(['rm', id], { root: rootA })).code, 0);
  }
});

S('--exec: CMD gets DOCKER_HOST; what it made is removed, also when CMD is SIGKILLed; others kept', async () => {
  assert.is((await tsrun(['create', '--name', 'mine', IMAGE, 'true'], { root: rootA })).code, 0);
  const script = [
    `${DOCKER} run -d --name s1 ${IMAGE} sleep 60 >/dev/null`,
    `${DOCKER} create --name s2 -v sessvol:/data ${IMAGE} true >/dev/null`,
    'echo "$DOCKER_HOST $TESTCONTAINERS_RYUK_DISABLED $TESTCONTAINERS_HOST_OVERRIDE"',
    `${DOCKER} ps -a --format '{{.Names}}' | sort | tr '\\n' ' '`,
    'exit 3',
  ].join('; ');
  const sock = path.join(tmp, 'exec.sock');
  const r = await execa(BIN, ['--root', rootA, 'system', 'service', '--exec', sock, '--', 'sh', '-c', script], {
    reject: false,
    env: { DOCKER_CONFIG: '/nonexistent' },
  });
  assert.is(r.exitCode, 3, String(r.stderr));
  assert.is(String(r.stdout), `unix://${sock} true 127.0.0.1\nmine s1 s2 `);
  assert.is((await tsrun(['ps', '-a', '--format', '{{.Names}}'], { root: rootA })).stdout, 'mine\n');
  assert.is((await tsrun(['volume', 'ls', '-q'], { root: rootA })).stdout, '', "the session's volume is removed");
  // CMD SIGKILLed after making a running container, a network and a volume.
  const killed = await execa(
    BIN,
    [
      '--root',
      rootA,
      'system',
      'service',
      '--exec',
      path.join(tmp, 'k.sock'),
      '--',
      'sh',
      '-c',
      [
        `${DOCKER} run -d ${IMAGE} sleep 1000 >/dev/null`,
        `${DOCKER} network create ${NET} >/dev/null`,
        `${DOCKER} volume create killedvol >/dev/null`,
        `${DOCKER} ps -q | wc -l`,
        'kill -9 $$',
      ].join(' && '),
    ],
    { reject: false, env: { DOCKER_CONFIG: '/nonexistent' } },
  );
  assert.is(killed.exitCode, 137, String(killed.stderr));
  assert.is(String(killed.stdout).trim(), '1');
  assert.equal(await storeObjects(rootA), { containers: 'mine\n', volumes: '', network: false, sessions: [] });
  assert.is((await tsrun(['rm', 'mine'], { root: rootA })).code, 0);
});

/** What a session can leave in `root`: container names, volume names, our network, session records. */
async function storeObjects(root: string) {
  return {
    containers: (await tsrun(['ps', '-a', '--format', '{{.Names}}'], { root })).stdout,
    volumes: (await tsrun(['volume', 'ls', '-q'], { root })).stdout,
    network: (await tsrun(['network', 'ls', '--format', '{{.Name}}'], { root })).stdout.split('\n').includes(NET),
    sessions: existsSync(path.join(root, 'service-sessions')) ? readdirSync(path.join(root, 'service-sessions')) : [],
  };
}

/**
 * An --exec service SIGKILLed while what its CMD made runs: CMD (its own process, still running)
 * made a container, a network and a volume, printed its pid and went to sleep.
 */
async function killedService(sock: string): Promise<void> {
  const svc = execa(
    BIN,
    [
      '--root',
      rootA,
      'system',
      'service',
      '--exec',
      sock,
      '--',
      'sh',
      '-c',
      [
        `${DOCKER} run -d --name orphan ${IMAGE} sleep 1000 >/dev/null`,
        `${DOCKER} network create ${NET} >/dev/null`,
        `${DOCKER} volume create orphanvol >/dev/null`,
        'echo $$',
        'exec sleep 1000',
      ].join(' && '),
    ],
    // CMD inherits the service's stdout: it is read line by line, not to its end (CMD outlives it).
    { reject: false, env: { DOCKER_CONFIG: '/nonexistent' }, stdin: 'ignore', buffer: false },
  );
  const cmdPid = await new Promise<number>((resolve, reject) => {
    let text = '';
    svc.stdout?.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.endsWith('\n')) resolve(Number(text.trim()));
    });
    void svc.then((r) => reject(new Error(`the service ended first: ${r.exitCode} ${String(r.stderr)}`)));
  });
  process.kill(svc.pid as number, 'SIGKILL');
  // CMD first: it holds the service's stdout, and execa resolves once that is closed (waiting for
  // the service alone would last as long as CMD's sleep, and a container's short sleep with it).
  process.kill(cmdPid, 'SIGKILL');
  const dead = await svc;
  assert.is(dead.signal, 'SIGKILL');
  // The service is gone; what it made is not: its container runs on (its monitor owns it).
  const left = await storeObjects(rootA);
  assert.equal(left.containers, 'orphan\n');
  assert.is((await tsrun(['inspect', '-f', '{{.State.Status}}', 'orphan'], { root: rootA })).stdout, 'running\n');
  assert.is(left.volumes, 'orphanvol\n');
  assert.ok(left.network, 'the network is left');
  assert.is(left.sessions.length, 1);
}

S('a SIGKILLed --exec service: the next service start removes what its session made', async () => {
  await killedService(path.join(tmp, 'dead.sock'));
  const sock = path.join(tmp, 'next.sock');
  const next = await startService(rootA, sock, ['--time', '1']);
  // Removed before the socket answered.
  assert.equal(await storeObjects(rootA), { containers: '', volumes: '', network: false, sessions: [] });
  assert.is((await next.proc).exitCode, 0);
  assert.equal(await leftovers(rootA), []);
});

S('a SIGKILLed --exec service: system prune removes what its session made', async () => {
  await killedService(path.join(tmp, 'dead2.sock'));
  const prune = await tsrun(['system', 'prune', '-f'], { root: rootA });
  assert.is(prune.code, 0, prune.stderr);
  assert.equal(await storeObjects(rootA), { containers: '', volumes: '', network: false, sessions: [] });
  assert.equal(await leftovers(rootA), []);
});

S.run();
