/**
 * The Engine API's networks as clients use them against `tsrun system service`: Docker's CLI
 * (network create/ls/inspect/rm/prune, `run --network NAME --network-alias A`, a second container
 * reaching the first by its alias, `network connect`/`disconnect` of default-bridge containers,
 * running or never started, and inspect's addresses against what the container sees); `tsrun
 * inspect` finding networks and volumes. (testcontainers' networks are in api-clients.test.ts.)
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
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
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

/** The IPv4 address of `dev` as the container sees it (`ip addr` inside). */
async function addressIn(name: string, dev: string): Promise<string> {
  const r = await docker(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'dev', dev]);
  assert.is(r.code, 0, r.stderr);
  const m = / inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m?.[1] ?? '';
}

N(
  'docker CLI: network connect/disconnect of bridge containers, running and never started; inspect addresses',
  async () => {
    assert.is((await docker(['network', 'create', 'shop'])).code, 0);
    // A running container on the default bridge gets a second interface (Docker's behaviour).
    const web = await docker(['run', '-d', '--name', 'web', IMAGE, 'sh', '-c', HTTPD]);
    assert.is(web.code, 0, web.stderr);
    const conn = await docker(['network', 'connect', '--alias', 'www', 'shop', 'web']);
    assert.is(conn.code, 0, conn.stderr);
    const eth0 = await addressIn('web', 'eth0');
    const eth1 = await addressIn('web', 'eth1');
    const f = (t: string, c: string) => docker(['inspect', '-f', t, c]).then((r) => r.stdout.trim());
    assert.is(await f('{{.NetworkSettings.Networks.shop.IPAddress}}', 'web'), eth1);
    assert.is(await f('{{.NetworkSettings.Networks.bridge.IPAddress}}', 'web'), eth0);
    assert.is(await f('{{.NetworkSettings.IPAddress}}', 'web'), eth0);
    const shopId = (await docker(['network', 'inspect', '-f', '{{.Id}}', 'shop'])).stdout.trim();
    assert.is(
      await f(
        '{{with .NetworkSettings.Networks.shop}}{{.NetworkID}} {{.Aliases}} {{.IPPrefixLen}} {{len .EndpointID}} {{len .MacAddress}}{{end}}',
        'web',
      ),
      `${shopId} [www] 24 64 17`,
    );
    // The tsrun CLI's inspect says the same.
    const mine = await cli([
      'inspect',
      '-f',
      '{{.NetworkSettings.Networks.shop.IPAddress}} {{.NetworkSettings.Networks.shop.Gateway}}',
      'web',
    ]);
    assert.is(mine.stdout.trim(), `${eth1} ${await f('{{.NetworkSettings.Networks.shop.Gateway}}', 'web')}`);
    assert.is(await f('{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'web'), 'bridge shop');
    // Another container on the network reaches it by the alias given at connect.
    const reach = (name: string) => [
      'sh',
      '-c',
      `for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://${name}:8080/ && exit 0; sleep 0.3; done; exit 1`,
    ];
    const viaNet = await docker(['run', '--rm', '--network', 'shop', IMAGE, ...reach('www')]);
    assert.is(viaNet.code, 0, viaNet.stderr);
    assert.match(viaNet.stdout, /^hello from /);

    // Never started: connect, disconnect, connect again only change the record; start attaches.
    assert.is((await docker(['create', '--name', 'late', IMAGE, 'sleep', '30'])).code, 0);
    assert.is((await docker(['network', 'connect', 'shop', 'late'])).code, 0);
    assert.is((await docker(['network', 'connect', 'shop', 'late'])).code, 0); // Docker: nothing to do
    assert.is((await docker(['network', 'disconnect', 'shop', 'late'])).code, 0);
    assert.is(await f('{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'late'), 'bridge');
    assert.is((await docker(['network', 'connect', '--alias', 'later', 'shop', 'late'])).code, 0);
    assert.is(await f('{{.NetworkSettings.Networks.shop.IPAddress}}', 'late'), ''); // not running: no address
    assert.is((await docker(['start', 'late'])).code, 0);
    assert.is(await f('{{.NetworkSettings.Networks.shop.IPAddress}}', 'late'), await addressIn('late', 'eth1'));
    // Its names resolve through the network's DNS server, and it reaches the other by alias.
    const fromLate = await docker(['exec', 'late', ...reach('www')]);
    assert.is(fromLate.code, 0, fromLate.stderr);
    // A restart attaches both again (the user endpoint in the bridge's namespace goes first, then comes back).
    assert.is((await docker(['restart', '-t', '0', 'late'])).code, 0);
    assert.is(await f('{{.NetworkSettings.Networks.shop.IPAddress}}', 'late'), await addressIn('late', 'eth1'));
    assert.is(await f('{{.NetworkSettings.Networks.bridge.IPAddress}}', 'late'), await addressIn('late', 'eth0'));
    const ps = await docker(['ps', '--filter', 'network=shop', '--format', '{{.Names}} {{.Networks}}']);
    // (docker 20.10's CLI joins the map's keys unsorted.)
    const rows = ps.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[0] + ' ' + (l.split(' ')[1] ?? '').split(',').sort().join(','));
    assert.is(rows.sort().join('\n'), 'late bridge,shop\nweb bridge,shop');

    // A running container leaves the network: its interface goes, the name stops answering.
    assert.is((await docker(['network', 'disconnect', 'shop', 'web'])).code, 0);
    const links = await docker(['exec', 'web', 'ip', '-o', 'link']);
    assert.not.match(links.stdout, 'eth1');
    const gone = await docker(['exec', 'late', 'nslookup', 'www']);
    assert.is.not(gone.code, 0, gone.stdout);

    // Docker's refusals for the host and none networks.
    assert.is((await docker(['create', '--name', 'onhost', '--network', 'host', IMAGE, 'true'])).code, 0);
    const host = await docker(['network', 'connect', 'shop', 'onhost']);
    assert.is(host.code, 1);
    assert.match(
      host.stderr,
      'container sharing network namespace with another container or host cannot be connected to any other network',
    );
    assert.is((await docker(['rm', '-f', 'web', 'late', 'onhost'])).code, 0);
    assert.is((await docker(['network', 'rm', 'shop'])).code, 0);
  },
);

N('tsrun inspect NAME finds networks and volumes too (Docker: containers, images, networks, volumes)', async () => {
  assert.is((await cli(['network', 'create', 'lookup-net'])).code, 0);
  assert.is((await cli(['volume', 'create', 'lookup-vol'])).code, 0);
  const net = await cli(['inspect', '-f', '{{.Name}} {{.Driver}}', 'lookup-net']);
  assert.is(net.stdout, 'lookup-net bridge\n', net.stderr);
  const vol = await cli(['inspect', '-f', '{{.Name}} {{.Driver}}', 'lookup-vol']);
  assert.is(vol.stdout, 'lookup-vol local\n', vol.stderr);
  // As the docker CLI's does.
  assert.is((await docker(['inspect', '-f', '{{.Name}} {{.Driver}}', 'lookup-vol'])).stdout, vol.stdout);
  assert.is((await docker(['inspect', '-f', '{{.Name}} {{.Driver}}', 'lookup-net'])).stdout, net.stdout);
  const typed = await cli(['inspect', '--type', 'volume', '-f', '{{.Mountpoint}}', 'lookup-vol']);
  assert.match(typed.stdout, /lookup-vol/);
  const wrongType = await cli(['inspect', '--type', 'volume', 'lookup-net']);
  assert.is(wrongType.code, 1);
  assert.match(wrongType.stderr, 'No such volume: lookup-net');
  // The tsrun CLI's `network connect` of a running default-bridge container (and the network then in use).
  assert.is((await cli(['run', '-d', '--name', 'cli-box', IMAGE, 'sleep', '30'])).code, 0);
  const con = await cli(['network', 'connect', 'lookup-net', 'cli-box']);
  assert.is(con.code, 0, con.stderr);
  const seen = await cli(['exec', 'cli-box', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth1']);
  const ip = await cli(['inspect', '-f', '{{(index .NetworkSettings.Networks "lookup-net").IPAddress}}', 'cli-box']);
  assert.ok(ip.stdout.trim() !== '', ip.stderr);
  assert.match(seen.stdout, ` inet ${ip.stdout.trim()}/`);
  const busy = await cli(['network', 'rm', 'lookup-net']);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, 'has active endpoints');
  assert.is((await cli(['network', 'disconnect', 'lookup-net', 'cli-box'])).code, 0);
  assert.is((await cli(['rm', '-f', 'cli-box'])).code, 0);
  const none = await cli(['inspect', 'nothing-by-that-name']);
  assert.is(none.code, 1);
  assert.match(none.stderr, 'no such object: nothing-by-that-name');
  assert.is((await cli(['network', 'rm', 'lookup-net'])).code, 0);
  assert.is((await cli(['volume', 'rm', 'lookup-vol'])).code, 0);
});

N.run();
