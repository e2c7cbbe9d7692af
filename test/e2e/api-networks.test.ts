/**
 * The Engine API's networks as clients use them against `tsrun system service`: Docker's CLI
 * (network create/ls/inspect/rm/prune, `run --network NAME --network-alias A`, a second container
 * reaching the first by its alias) and testcontainers (`new Network()`, `withNetworkAliases`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { runDir } from './containers.js';
import type { TestRegistry } from '../helpers/registry.js';
import { busyboxRegistry, docker as dockerAt, dockerClient, startService, type RunningService } from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-net-'));
const root = path.join(tmp, 'root');
const socket = path.join(tmp, 'docker.sock');
let reg: TestRegistry;
let IMAGE = '';
let svc: RunningService;

const N = suite('e2e api: networks');
const docker = (args: string[]) => dockerAt(socket, args);
const cli = (args: string[]) => tsrun(args, { root });
const HTTPD = 'mkdir -p /www && echo "hello from $HOSTNAME" > /www/index.html && exec httpd -f -p 8080 -h /www';

N.before(async () => {
  await dockerClient();
  ({ reg, image: IMAGE } = await busyboxRegistry());
  svc = await startService(root, socket);
  assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
});
N.after(async () => {
  const ps = await cli(['ps', '-aq', '--no-trunc']);
  for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id]);
  await cli(['network', 'prune', '-f']);
  await svc?.stop();
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

N('docker CLI: network create, run --network --network-alias, reach by alias, ls, inspect, rm, prune', async () => {
  const made = await docker(['network', 'create', '--label', 'app=todo', 'todo-app']);
  assert.is(made.code, 0, made.stderr);
  const id = made.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const dup = await docker(['network', 'create', 'todo-app']);
  assert.is(dup.code, 1);
  assert.match(dup.stderr, 'network with name todo-app already exists');

  const ls = await docker(['network', 'ls', '--filter', 'label=app=todo', '--format', '{{.ID}} {{.Name}} {{.Driver}}']);
  assert.is(ls.stdout, `${id.slice(0, 12)} todo-app bridge\n`, ls.stderr);
  const all = await docker(['network', 'ls', '--format', '{{.Name}}']);
  // The docker CLI sorts by name; the set is the tsrun CLI's.
  const ours = (await cli(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean);
  assert.is(all.stdout, `${ours.sort().join('\n')}\n`);
  assert.match(all.stdout, /^bridge\nhost\nnone\n/);

  const srv = await docker([
    'run',
    '-d',
    '--name',
    'db',
    '--network',
    'todo-app',
    '--network-alias',
    'mysql',
    IMAGE,
    'sh',
    '-c',
    HTTPD,
  ]);
  assert.is(srv.code, 0, srv.stderr);
  const app = await docker([
    'run',
    '--rm',
    '--network',
    'todo-app',
    IMAGE,
    'sh',
    '-c',
    'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://mysql:8080/ && exit 0; sleep 0.3; done; exit 1',
  ]);
  assert.is(app.code, 0, app.stderr);
  assert.match(app.stdout, /^hello from /);

  // inspect (the API's JSON) shows the container on the network, as the tsrun CLI does.
  const ins = await docker(['network', 'inspect', '-f', '{{.Id}} {{range .Containers}}{{.Name}}{{end}}', 'todo-app']);
  assert.is(ins.stdout, `${id} db\n`, ins.stderr);
  const cins = await docker(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}', 'db']);
  assert.is(cins.stdout, 'todo-app\n', cins.stderr);

  // In use: Docker's error, and the network stays.
  const busy = await docker(['network', 'rm', 'todo-app']);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, `network todo-app id ${id} has active endpoints`);
  const missing = await docker(['network', 'rm', 'no-such-net']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'No such network: no-such-net'); // the Go client's wording for the Engine's 404
  const builtin = await docker(['network', 'rm', 'bridge']);
  assert.is(builtin.code, 1);
  assert.match(builtin.stderr, 'bridge is a pre-defined network and cannot be removed');

  assert.is((await docker(['rm', '-f', 'db'])).code, 0);
  assert.is((await docker(['network', 'create', 'spare'])).code, 0);
  const pruned = await docker(['network', 'prune', '-f']);
  assert.is(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /Deleted Networks:\n(todo-app\nspare|spare\ntodo-app)\n/);
  assert.is((await cli(['network', 'ls', '-q', '--filter', 'type=custom'])).stdout, '');
});

N.run();
