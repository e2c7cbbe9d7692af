/**
 * The Engine API as Docker's own CLI uses it (docker.io's client binary, scripts/test-tools.sh)
 * against `tsrun system service`, each step compared with what the tsrun CLI shows for the same
 * store: one store, one truth.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import type { TestRegistry } from '../helpers/registry.js';
import {
  DOCKER,
  busyboxRegistry,
  docker as dockerAt,
  dockerClient,
  startService,
  type RunningService,
} from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-docker-'));
const root = path.join(tmp, 'root');
const socket = path.join(tmp, 'docker.sock');
let reg: TestRegistry;
let IMAGE = '';
let svc: RunningService;

const D = suite('e2e api: the docker CLI');
const docker = (args: string[], o: { input?: string; cwd?: string } = {}) => dockerAt(socket, args, o);
const cli = (args: string[]) => tsrun(args, { root });

D.before(async () => {
  await dockerClient();
  ({ reg, image: IMAGE } = await busyboxRegistry());
  svc = await startService(root, socket);
});
D.after(async () => {
  const ps = await cli(['ps', '-aq', '--no-trunc']);
  for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id]);
  await svc?.stop();
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

D("version, pull, images: the server is tsrun, the image is the CLI's", async () => {
  const v = await docker(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}']);
  assert.is(v.code, 0, v.stderr);
  const mine = await cli(['version', '--format', '{{.Server.Version}}']);
  assert.is(v.stdout, `${mine.stdout.trim()} 1.43\n`);
  const p = await docker(['pull', IMAGE]);
  assert.is(p.code, 0, p.stderr);
  assert.match(p.stdout, /Pull complete/);
  assert.match(p.stdout, /Status: Downloaded newer image for /);
  const theirs = await docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  const ours = await cli(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.is(theirs.stdout, ours.stdout);
  assert.match(ours.stdout, `${IMAGE}:latest `);
  const missing = await docker(['pull', `${reg.host}/e2e/nothing-here`]);
  assert.is(missing.code, 1);
});

D('run --rm: output, stderr, exit code and stdin as tsrun run; nothing left', async () => {
  const cmd = ['sh', '-c', 'echo out; echo err >&2; read x; echo "in=$x"; exit 7'];
  const theirs = await docker(['run', '--rm', '-i', IMAGE, ...cmd], { input: 'typed\n' });
  const ours = await tsrun(['run', '--rm', '-i', IMAGE, ...cmd], { root, input: 'typed\n' });
  assert.is(theirs.stdout, 'out\nin=typed\n');
  assert.is(theirs.stdout, ours.stdout);
  assert.is(theirs.stderr, ours.stderr);
  assert.is(theirs.code, 7);
  assert.is(ours.code, 7);
  const nf = await docker(['run', '--rm', IMAGE, 'no-such-command']);
  assert.is(nf.code, 127, nf.stderr);
  assert.equal(await leftovers(root), []);
});

D('run -it through script(1): a terminal, and its exit code', async () => {
  const r = await execa(
    'script',
    ['-qec', `${DOCKER} run --rm -it ${IMAGE} sh -c 'tty; read x; echo got-$x; exit 5'`, '/dev/null'],
    {
      reject: false,
      input: 'abc\n',
      env: { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: '/nonexistent' },
      timeout: 30_000,
    },
  );
  assert.match(String(r.stdout), /\/dev\/pts\/\d+/);
  assert.match(String(r.stdout), /got-abc/);
  assert.is(r.exitCode, 5);
});

D('run -d -p (curl the port), ps, logs -f, exec, inspect, stop, wait, rm -f — as the tsrun CLI sees them', async () => {
  const d = await docker([
    'run',
    '-d',
    '--name',
    'web',
    '-p',
    '127.0.0.1::8080',
    '-e',
    'WHO=docker',
    IMAGE,
    'sh',
    '-c',
    'mkdir /www; echo "hi $WHO" > /www/index.html; echo started; httpd -f -p 8080 -h /www',
  ]);
  assert.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const port = (await cli(['port', 'web', '8080'])).stdout.trim().split(':').pop();
  await eventually(
    'httpd answers',
    async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok === true,
  );
  assert.is(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hi docker\n');
  const fmt = '{{.ID}} {{.Names}} {{.Ports}} {{.Command}}';
  assert.is((await docker(['ps', '--format', fmt])).stdout, (await cli(['ps', '--format', fmt])).stdout);
  assert.match(
    (await docker(['ps', '--format', '{{.Names}}', '--filter', 'name=web', '--filter', 'status=running'])).stdout,
    /^web\n$/,
  );
  const ifmt = '{{.Id}} {{.Name}} {{.Config.Image}} {{.State.Status}} {{.State.Pid}} {{json .Config.Env}}';
  assert.is((await docker(['inspect', '-f', ifmt, 'web'])).stdout, (await cli(['inspect', '-f', ifmt, 'web'])).stdout);
  const ex = await docker(['exec', '-e', 'X=1', 'web', 'sh', '-c', 'echo "$X $WHO"; cat /www/index.html; exit 3']);
  assert.is(ex.stdout, '1 docker\nhi docker\n');
  assert.is(ex.code, 3);
  // logs -f follows until the container stops.
  const follow = execa(DOCKER, ['logs', '-f', 'web'], { reject: false, env: { DOCKER_HOST: `unix://${socket}` } });
  const waited = execa(DOCKER, ['wait', 'web'], { reject: false, env: { DOCKER_HOST: `unix://${socket}` } });
  await new Promise((r) => setTimeout(r, 300));
  const stop = await docker(['stop', '-t', '1', 'web']);
  assert.is(stop.stdout, 'web\n');
  assert.is(String((await follow).stdout), 'started');
  assert.is((await follow).exitCode, 0);
  assert.is(String((await waited).stdout), '137');
  assert.is((await cli(['ps', '-a', '--format', '{{.Names}} {{.State}}'])).stdout, 'web exited\n');
  assert.is((await docker(['logs', 'web'])).stdout, (await cli(['logs', 'web'])).stdout);
  // Stopping a stopped container is no error (the Engine answers 304).
  assert.is((await docker(['stop', 'web'])).code, 0);
  assert.is((await docker(['rm', '-f', 'web'])).stdout, 'web\n');
  assert.is((await cli(['ps', '-aq'])).stdout, '');
  const gone = await docker(['inspect', 'web']);
  assert.is(gone.code, 1);
  assert.match(gone.stderr, /No such object: web/);
});

D('cp both ways, before the first start too; tsrun cp reads what docker cp wrote', async () => {
  const host = path.join(tmp, 'cp');
  mkdirSync(host);
  writeFileSync(path.join(host, 'in.txt'), 'from the host\n');
  assert.is((await docker(['create', '--name', 'box', IMAGE, 'sleep', '30'])).code, 0);
  const cpIn = await docker(['cp', path.join(host, 'in.txt'), 'box:/in.txt']);
  assert.is(cpIn.code, 0, cpIn.stderr);
  assert.is((await docker(['start', 'box'])).code, 0);
  assert.is((await cli(['exec', 'box', 'cat', '/in.txt'])).stdout, 'from the host\n');
  assert.is((await cli(['exec', 'box', 'sh', '-c', 'mkdir -p /out/d && echo made > /out/d/f'])).code, 0);
  const cpOut = await docker(['cp', 'box:/out', path.join(host, 'out')]);
  assert.is(cpOut.code, 0, cpOut.stderr);
  assert.is(readFileSync(path.join(host, 'out/d/f'), 'utf8'), 'made\n');
  const missing = await docker(['cp', 'box:/no/such', host]);
  assert.is(missing.code, 1);
  // Docker's CLI words a 404 on the path this way.
  assert.match(missing.stderr, /No such container:path: box:\/no\/such/);
  assert.is((await docker(['rm', '-f', 'box'])).code, 0);
});

D('build -t from a tar context, run the image, push it, and pull it back with tsrun', async () => {
  const ctxDir = path.join(tmp, 'ctx');
  mkdirSync(ctxDir);
  writeFileSync(
    path.join(ctxDir, 'Dockerfile'),
    `FROM ${IMAGE}\nCOPY msg.txt /msg.txt\nRUN echo built >> /msg.txt\nCMD ["cat", "/msg.txt"]\n`,
  );
  writeFileSync(path.join(ctxDir, 'msg.txt'), 'copied\n');
  const b = await docker(['build', '-t', 'api-built:1', '.'], { cwd: ctxDir });
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stdout, /Step 3\/4 : RUN echo built >> \/msg.txt/);
  assert.match(b.stdout, /Successfully tagged api-built:1/);
  assert.is((await cli(['run', '--rm', 'api-built:1'])).stdout, 'copied\nbuilt\n');
  const bad = await docker(['build', '-'], { input: 'FROM scratch\nRUN nothing-here\n' });
  assert.is(bad.code, 1);
  const target = `${reg.host}/e2e/api-built:1`;
  assert.is((await docker(['tag', 'api-built:1', target])).code, 0);
  const push = await docker(['push', target]);
  assert.is(push.code, 0, push.stderr);
  assert.match(push.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
  const other = path.join(tmp, 'other-root');
  try {
    assert.is((await tsrun(['pull', '-q', target], { root: other })).code, 0);
    assert.is((await tsrun(['run', '--rm', target], { root: other })).stdout, 'copied\nbuilt\n');
  } finally {
    rmSync(runDir(other), { recursive: true, force: true });
  }
  const rmi = await docker(['rmi', 'api-built:1']);
  assert.match(rmi.stdout, /Untagged: api-built:1/);
  const again = await docker(['rmi', 'api-built:1']);
  assert.is(again.code, 1);
  assert.match(again.stderr, /No such image: api-built:1/);
});

D('start -a, kill, restart, and the Docker wording of errors', async () => {
  assert.is((await docker(['create', '--name', 'kk', IMAGE, 'sh', '-c', 'echo once; sleep 30'])).code, 0);
  const attached = spawn(DOCKER, ['start', '-a', 'kk'], { env: { DOCKER_HOST: `unix://${socket}` } });
  let out = '';
  attached.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise((r) => attached.once('close', r));
  await eventually('it runs', async () => (await cli(['ps', '-q'])).stdout !== '');
  assert.is((await docker(['restart', '-t', '0', 'kk'])).code, 0);
  assert.match((await cli(['ps', '--format', '{{.Names}} {{.State}}'])).stdout, /^kk running\n$/);
  assert.is((await docker(['kill', 'kk'])).code, 0);
  const notRunning = await docker(['kill', 'kk']);
  assert.is(notRunning.code, 1);
  assert.match(notRunning.stderr, /is not running/);
  const dup = await docker(['create', '--name', 'kk', IMAGE]);
  assert.is(dup.code, 1);
  assert.match(dup.stderr, /Conflict|already in use/);
  assert.is((await docker(['rm', 'kk'])).code, 0);
  const none = await docker(['stop', 'nosuch']);
  assert.match(none.stderr, /No such container: nosuch/);
  assert.is(await closed, 137);
  assert.match(out, /^once\n/);
});

D('volume create, run -v NAME:/path, volume ls, inspect and rm — as tsrun volume sees them', async () => {
  assert.is((await docker(['volume', 'create', '--label', 'k=v', 'apivol'])).stdout, 'apivol\n');
  const w = await docker(['run', '--rm', '-v', 'apivol:/data', IMAGE, 'sh', '-c', 'echo kept > /data/f']);
  assert.is(w.code, 0, w.stderr);
  assert.is((await cli(['run', '--rm', '-v', 'apivol:/data', IMAGE, 'cat', '/data/f'])).stdout, 'kept\n');
  const fmt = '{{.Name}} {{.Driver}} {{.Mountpoint}}';
  assert.is(
    (await docker(['volume', 'ls', '--format', fmt])).stdout,
    (await cli(['volume', 'ls', '--format', fmt])).stdout,
  );
  assert.is((await docker(['volume', 'inspect', '-f', '{{.Labels.k}}', 'apivol'])).stdout, 'v\n');
  assert.is((await docker(['volume', 'rm', 'apivol'])).code, 0);
  const gone = await docker(['volume', 'inspect', 'apivol']);
  assert.is(gone.code, 1);
  assert.is((await cli(['volume', 'ls', '-q'])).stdout, '');
});

D.run();
