/**
 * `tsrun system service` itself: the socket's mode, idle exit, Docker's error bodies and status
 * codes, versioned paths, two services on two stores, and `--exec` sessions removing what they
 * made (also when the command is SIGKILLed). A killed service's leftovers (removed by the next
 * service and by system prune) were checked by hand only: under execa the SIGKILLed service's
 * container did not survive to be checked, which is not understood yet.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { runDir } from './containers.js';
import type { TestRegistry } from '../helpers/registry.js';
import { DOCKER, busyboxRegistry, dockerClient, request, startService } from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-svc-'));
const rootA = path.join(tmp, 'a');
const rootB = path.join(tmp, 'b');
let reg: TestRegistry;
let IMAGE = '';

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
  rmSync(tmp, { recursive: true, force: true });
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
    assert.is((await request(a.socket, 'DELETE', '/containers/onlya')).status, 204);
  } finally {
    await a.stop();
    await b.stop();
  }
  assert.not.ok(existsSync(path.join(tmp, 'a.sock')));
});

S('idle exit after --time with no client; a request in flight holds it', async () => {
  const sock = path.join(tmp, 'idle.sock');
  const t0 = Date.now();
  const svc = await startService(rootA, sock, ['--time', '1']);
  // A long request (wait on a running container) keeps it up past --time.
  const made = (
    await request(sock, 'POST', '/containers/create', {
      Image: IMAGE,
      Cmd: ['sleep', '2'],
      HostConfig: { AutoRemove: true },
    })
  ).json();
  assert.is((await request(sock, 'POST', `/containers/${made.Id}/start`)).status, 204);
  const w = await request(sock, 'POST', `/containers/${made.Id}/wait?condition=removed`);
  assert.is(w.json().StatusCode, 0);
  assert.ok(Date.now() - t0 > 2000);
  const r = await svc.proc;
  assert.is(r.exitCode, 0);
  // On its own, soon after the request: 8 s was passed beside CPU hogs (9.6 s).
  assert.ok(Date.now() - t0 < 30_000, `exited after ${Date.now() - t0} ms`);
  assert.not.ok(existsSync(sock));
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
      `${DOCKER} run -d ${IMAGE} sleep 60 >/dev/null; kill -9 $$`,
    ],
    { reject: false, env: { DOCKER_CONFIG: '/nonexistent' } },
  );
  assert.is(killed.exitCode, 137, String(killed.stderr));
  assert.is((await tsrun(['ps', '-a', '--format', '{{.Names}}'], { root: rootA })).stdout, 'mine\n');
  assert.is((await tsrun(['rm', 'mine'], { root: rootA })).code, 0);
});

S.run();
