/**
 * The Engine API as testcontainers-node (v11) and dockerode use it, against `tsrun system
 * service`: what a CI job's tests do with containers, with no Docker anywhere.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { tsrun } from './cli.js';
import { eventually, runDir } from './containers.js';
import type { TestRegistry } from '../helpers/registry.js';
import { busyboxRegistry, startService, type RunningService } from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-clients-'));
const root = path.join(tmp, 'root');
const socket = path.join(tmp, 'docker.sock');
let reg: TestRegistry;
let IMAGE = '';
let svc: RunningService;

const C = suite('e2e api: testcontainers and dockerode');

C.before(async () => {
  ({ reg, image: IMAGE } = await busyboxRegistry());
  svc = await startService(root, socket);
  // testcontainers reads these when its module loads.
  process.env.DOCKER_HOST = `unix://${socket}`;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  assert.is((await tsrun(['pull', '-q', IMAGE], { root })).code, 0);
});
C.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await svc?.stop();
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const HTTPD =
  'mkdir -p /www && echo "$GREETING" > /www/index.html && echo "server up" && exec httpd -f -p 8080 -h /www';

C('testcontainers: exposed port, Wait.forHttp, environment, command, copied content, exec, stop', async () => {
  const { GenericContainer, Wait } = await import('testcontainers');
  const c = await new GenericContainer(IMAGE)
    .withCommand(['sh', '-c', HTTPD])
    .withExposedPorts(8080)
    .withEnvironment({ GREETING: 'hello from tsrun' })
    .withCopyContentToContainer([{ content: 'copied in', target: '/srv/copied.txt' }])
    .withWaitStrategy(Wait.forHttp('/', 8080))
    .start();
  try {
    const res = await fetch(`http://${c.getHost()}:${c.getMappedPort(8080)}/`);
    assert.is(await res.text(), 'hello from tsrun\n');
    const e = await c.exec(['sh', '-c', 'cat /srv/copied.txt; echo " $GREETING"; echo oops >&2; exit 3']);
    assert.is(e.exitCode, 3);
    assert.is(e.stdout, 'copied in hello from tsrun\n');
    assert.is(e.stderr, 'oops\n');
    // What testcontainers made, the tsrun CLI sees.
    const ps = await tsrun(['ps', '--format', '{{.ID}} {{.Label "org.testcontainers"}}'], { root });
    assert.match(ps.stdout, `${c.getId().slice(0, 12)} true`);
  } finally {
    // httpd as pid 1 ignores SIGTERM: testcontainers' default 10 s would be spent waiting.
    await c.stop({ timeout: 1000 });
  }
  assert.is((await tsrun(['ps', '-aq'], { root })).stdout, '');
});

C('testcontainers: Wait.forLogMessage and the default wait for listening ports', async () => {
  const { GenericContainer, Wait } = await import('testcontainers');
  const logged = await new GenericContainer(IMAGE)
    .withCommand(['sh', '-c', 'sleep 0.3; echo "ready to serve"; sleep 30'])
    .withWaitStrategy(Wait.forLogMessage('ready to serve'))
    .start();
  const ports = await new GenericContainer(IMAGE)
    .withCommand(['sh', '-c', `sleep 0.5; ${HTTPD}`])
    .withEnvironment({ GREETING: 'ports' })
    .withExposedPorts(8080)
    .start();
  try {
    const res = await fetch(`http://${ports.getHost()}:${ports.getMappedPort(8080)}/`);
    assert.is(await res.text(), 'ports\n');
  } finally {
    await Promise.all([logged.stop({ timeout: 1000 }), ports.stop({ timeout: 1000 })]);
  }
});

C('testcontainers: a health check (Config.Healthcheck) and Wait.forHealthCheck, State.Health in inspect', async () => {
  const { GenericContainer, Wait } = await import('testcontainers');
  const c = await new GenericContainer(IMAGE)
    .withCommand(['sh', '-c', 'sleep 0.5; touch /tmp/ok; sleep 30'])
    .withHealthCheck({
      test: ['CMD-SHELL', 'test -f /tmp/ok'],
      interval: 200,
      timeout: 1000,
      retries: 10,
      startPeriod: 100,
    })
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
  try {
    const view = JSON.parse((await tsrun(['inspect', c.getId()], { root })).stdout)[0];
    assert.is(view.State.Health.Status, 'healthy');
  } finally {
    await c.stop({ timeout: 1000 });
  }
});

// (Here, not in api-networks.test.ts: testcontainers keeps one Docker client per process, made from
// DOCKER_HOST when it is first used, and uvu runs every file in one process.)
// withNetworkAliases makes a container on the default bridge and connects it to the network before
// its start (POST /networks/NAME/connect with EndpointConfig.Aliases): it is then on both.
C('testcontainers: new Network(), withNetworkAliases, a second container reaches the first by its alias', async () => {
  const { GenericContainer, Network } = await import('testcontainers');
  const net = await new Network().start();
  try {
    const db = await new GenericContainer(IMAGE)
      .withCommand(['sh', '-c', HTTPD])
      .withEnvironment({ GREETING: 'hello from tc-db' })
      .withNetwork(net)
      .withNetworkAliases('db')
      .start();
    try {
      // The address testcontainers reads from inspect is the one the container has on that network.
      const ip = db.getIpAddress(net.getName());
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
      const addrs = await db.exec(['ip', '-o', '-4', 'addr']);
      assert.match(addrs.output, ` ${ip}/`);
      assert.match(addrs.output, /eth0 .*\n.*eth1 /s); // the bridge's eth0 and the network's eth1
      const client = await new GenericContainer(IMAGE)
        .withCommand(['sleep', '30'])
        .withNetwork(net)
        .withNetworkAliases('app')
        .start();
      try {
        const r = await client.exec([
          'sh',
          '-c',
          'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://db:8080/ && exit 0; sleep 0.3; done; exit 1',
        ]);
        assert.is(r.exitCode, 0, r.output);
        assert.match(r.output, /hello from tc-db/);
        // And the other way round, by the second container's alias.
        const back = await db.exec(['nslookup', 'app']);
        assert.match(back.output, client.getIpAddress(net.getName()));
      } finally {
        await client.stop({ timeout: 0 });
      }
    } finally {
      // httpd as pid 1 ignores SIGTERM.
      await db.stop({ timeout: 0 });
    }
  } finally {
    await net.stop();
  }
  const left = (
    await tsrun(['network', 'ls', '--filter', 'type=custom', '--format', '{{.ID}} {{.Name}} {{.Labels}}'], { root })
  ).stdout;
  assert.is(left, '', left);
});

C("dockerode: exec inspect has the process's host pid while it runs, then its exit code", async () => {
  const d = new Docker({ socketPath: socket });
  const c = await d.createContainer({ Image: IMAGE, Cmd: ['sleep', '30'] });
  await c.start();
  try {
    const e = await c.exec({ Cmd: ['sh', '-c', 'sleep 1; exit 7'] });
    await e.start({ Detach: true });
    const running = await e.inspect();
    assert.is(running.Running, true);
    assert.ok(running.Pid > 0, String(running.Pid));
    // The pid is runc's `exec --pid-file` one: runc init until it has exec'd the command.
    await eventually('the exec process runs sh', async () =>
      readFileSync(`/proc/${running.Pid}/cmdline`, 'utf8').startsWith('sh\0-c\0'),
    );
    let done = await e.inspect();
    for (let i = 0; i < 50 && done.Running; i++) {
      await new Promise((r) => setTimeout(r, 100));
      done = await e.inspect();
    }
    assert.is(done.Running, false);
    assert.is(done.ExitCode, 7);
  } finally {
    await c.remove({ force: true });
  }
});

C('dockerode: follow logs, attach with stdin, wait, archive, inspect', async () => {
  const d = new Docker({ socketPath: socket });
  const c = await d.createContainer({
    Image: IMAGE,
    Cmd: ['sh', '-c', 'echo first; while read l; do echo "got $l"; echo "err $l" >&2; done; exit 4'],
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Labels: { suite: 'dockerode' },
    SomethingNewer: { ignored: true },
  } as Docker.ContainerCreateOptions);
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  const out = new PassThrough();
  const err = new PassThrough();
  let outText = '';
  let errText = '';
  out.on('data', (b: Buffer) => (outText += b.toString()));
  err.on('data', (b: Buffer) => (errText += b.toString()));
  c.modem.demuxStream(stream, out, err);
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  stream.write('one\ntwo\n');
  (stream as unknown as { end(): void }).end();
  const w = (await waited) as { StatusCode: number };
  assert.is(w.StatusCode, 4);
  assert.is(outText, 'first\ngot one\ngot two\n');
  assert.is(errText, 'err one\nerr two\n');
  const logs = (await c.logs({ stdout: true, stderr: false, follow: false, timestamps: true })) as unknown as Buffer;
  assert.match(logs.subarray(8).toString(), /^\d{4}-\d\d-\d\dT[0-9:.]+Z first\n/);
  const info = await c.inspect();
  assert.is(info.State.ExitCode, 4);
  assert.is(info.Config.Labels.suite, 'dockerode');
  const list = await d.listContainers({ all: true, filters: { label: ['suite=dockerode'] } });
  assert.equal(
    list.map((x) => x.Id),
    [c.id],
  );
  assert.equal(await d.listContainers({ all: true, filters: { label: ['suite=other'] } }), []);
  const tar = (await c.getArchive({ path: '/etc/hostname' })) as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  for await (const b of tar) chunks.push(b as Buffer);
  const t = Buffer.concat(chunks);
  assert.is(t.subarray(0, 8).toString(), 'hostname');
  await c.remove();
  const gone = await c.inspect().catch((e: { statusCode: number; json: { message: string } }) => e);
  assert.is((gone as { statusCode: number }).statusCode, 404);
  assert.is((gone as { json: { message: string } }).json.message, `No such container: ${c.id}`);
});

C.run();
