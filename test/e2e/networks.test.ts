/**
 * End to end: user networks (`tsrun network …`, `run --network NAME`) with the real CLI, runc,
 * the CNI plugins and aardvark-dns. Part 7 of Docker's getting-started tutorial with stand-ins
 * (busybox httpd as "mysql", busybox wget/nslookup as the app): the app finds the server by its
 * network alias through a real DNS server; a container on another network or on the default one
 * cannot reach it; `--internal` has no way out; connect/disconnect change a running container;
 * every error exits with Docker's code and message and changes nothing; nothing is left after
 * (records, endpoints, bridges, rules, leases, DNS process: test/e2e/containers.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { busyboxLayer } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { hostAddress } from '../helpers/net.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-nets-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const N = suite('e2e user networks');

const site = layerBlob(
  makeTar([
    { name: 'www/', type: 'dir' },
    { name: 'www/index.html', content: 'hello from mysql\n' },
  ]),
);

N.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/netbox', 'latest', {
    layers: [busyboxLayer(), site],
    config: {
      config: { Cmd: ['httpd', '-f', '-p', '80', '-h', '/www'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
    },
  });
  IMAGE = `${reg.host}/e2e/netbox`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
N.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  for (const n of ['todo-app', 'elsewhere', 'sealed', 'open', 'front', 'back', 'fixed', 'first', 'crashy'])
    await tsrun(['network', 'rm', n], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const cli = (args: string[]) => tsrun(args, { root });

/** A command in a throw-away container; busybox's own `timeout` bounds what may hang (a dropped packet). */
const inContainer = (netName: string, script: string) =>
  cli(['run', '--rm', '--network', netName, IMAGE, 'sh', '-c', script]);

async function ipOn(container: string, netName: string): Promise<string> {
  const r = await cli(['inspect', '-f', `{{(index .NetworkSettings.Networks "${netName}").IPAddress}}`, container]);
  assert.is(r.code, 0, r.stderr);
  const ip = r.stdout.trim();
  assert.ok(net.isIPv4(ip), ip);
  return ip;
}

N('getting-started part 7: the app finds "mysql" by its network alias; other networks cannot reach it', async () => {
  const made = await cli(['network', 'create', 'todo-app']);
  assert.is(made.code, 0, made.stderr);
  assert.match(made.stdout, /^[0-9a-f]{64}\n$/);
  const srv = await cli([
    'run',
    '-d',
    '--name',
    'mysql-db',
    '--network',
    'todo-app',
    '--network-alias',
    'mysql',
    IMAGE,
  ]);
  assert.is(srv.code, 0, srv.stderr);
  const ip = await ipOn('mysql-db', 'todo-app');

  // By alias, by container name and by short id, through the network's DNS server.
  const shortId = srv.stdout.trim().slice(0, 12);
  const app = await inContainer(
    'todo-app',
    `for n in mysql mysql-db ${shortId}; do wget -q -O - http://$n/ || echo "failed $n"; done; nslookup mysql`,
  );
  assert.is(app.code, 0, app.stderr);
  assert.is(app.stdout.split('\n').filter((l) => l.startsWith('hello from mysql')).length, 3, app.stdout);
  assert.match(app.stdout, new RegExp(`Name:\\s+mysql\\nAddress:? ${ip.replace(/\./g, '\\.')}`));

  // inspect shows the container on the network.
  const ins = await cli(['network', 'inspect', 'todo-app']);
  const view = (JSON.parse(ins.stdout) as Record<string, unknown>[])[0] as {
    Name: string;
    Driver: string;
    Scope: string;
    IPAM: { Config: { Subnet: string; Gateway: string }[] };
    Containers: Record<string, { Name: string; IPv4Address: string }>;
  };
  assert.is(view.Name, 'todo-app');
  assert.is(view.Driver, 'bridge');
  assert.is(view.Scope, 'local');
  assert.equal(Object.values(view.Containers), [
    {
      ...Object.values(view.Containers)[0],
      Name: 'mysql-db',
      IPv4Address: `${ip}/${view.IPAM.Config[0]?.Subnet.split('/')[1]}`,
    },
  ]);

  // Another network: no name, and the address is unreachable (isolation). The default network too.
  assert.is((await cli(['network', 'create', 'elsewhere'])).code, 0);
  const other = await inContainer(
    'elsewhere',
    `nslookup mysql >/dev/null 2>&1 && echo resolved; timeout 2 wget -q -O - http://${ip}/ || echo unreachable`,
  );
  assert.is(other.stdout, 'unreachable\n', other.stderr);
  const dflt = await inContainer('bridge', `timeout 2 wget -q -O - http://${ip}/ || echo unreachable`);
  assert.is(dflt.stdout, 'unreachable\n', dflt.stderr);

  // In use: not removed, Docker's message, exit 1.
  const busy = await cli(['network', 'rm', 'todo-app']);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, 'has active endpoints');
  // Removing the last container leaves the network.
  assert.is((await cli(['rm', '-f', 'mysql-db'])).code, 0);
  assert.match((await cli(['network', 'ls', '--format', '{{.Name}}'])).stdout, /^todo-app$/m);
  const rm = await cli(['network', 'rm', 'todo-app', 'elsewhere']);
  assert.is(rm.code, 0, rm.stderr);
  assert.is(rm.stdout, 'todo-app\nelsewhere\n');
  assert.equal(await leftovers(root), []);
});

N("--internal has no way out; a normal network reaches the host's outside address", async () => {
  const server = http.createServer((_q, s) => s.end('host says hi\n'));
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const url = `http://${hostAddress()}:${(server.address() as net.AddressInfo).port}/`;
  try {
    assert.is((await cli(['network', 'create', 'open'])).code, 0);
    assert.is((await cli(['network', 'create', '--internal', 'sealed'])).code, 0);
    const out = await inContainer('open', `timeout 5 wget -q -O - ${url}`);
    assert.is(out.stdout, 'host says hi\n', out.stderr);
    const sealed = await inContainer('sealed', `timeout 2 wget -q -O - ${url} || echo no way out`);
    assert.match(sealed.stdout, 'no way out');
    assert.not.match(sealed.stdout, 'host says hi');
    const ins = await cli(['network', 'inspect', '-f', '{{.Internal}}', 'sealed', 'open']);
    assert.is(ins.stdout, 'true\nfalse\n');
  } finally {
    server.close();
  }
  assert.is((await cli(['network', 'rm', 'open', 'sealed'])).code, 0);
  assert.equal(await leftovers(root), []);
});

N('connect and disconnect a running container: its names and routes follow', async () => {
  assert.is((await cli(['network', 'create', 'front'])).code, 0);
  assert.is((await cli(['network', 'create', 'back'])).code, 0);
  assert.is((await cli(['run', '-d', '--name', 'db', '--network', 'back', IMAGE])).code, 0);
  assert.is((await cli(['run', '-d', '--name', 'app', '--network', 'front', IMAGE, 'sleep', '300'])).code, 0);
  const reach = () => cli(['exec', 'app', 'sh', '-c', 'timeout 3 wget -q -O - http://db/ || echo no']);
  assert.is((await reach()).stdout, 'no\n');

  const c = await cli(['network', 'connect', '--alias', 'web', 'back', 'app']);
  assert.is(c.code, 0, c.stderr);
  assert.is((await reach()).stdout, 'hello from mysql\n');
  const appIp = await ipOn('app', 'back');
  const fromDb = await cli(['exec', 'db', 'nslookup', 'web']);
  assert.match(fromDb.stdout, appIp);
  const nets = await cli(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'app']);
  assert.is(nets.stdout, 'back front \n');
  const onBack = (await cli(['ps', '--filter', 'network=back', '--format', '{{.Names}}'])).stdout;
  assert.equal(onBack.split('\n').filter(Boolean).sort(), ['app', 'db']);
  const again = await cli(['network', 'connect', 'back', 'app']);
  assert.is(again.code, 1);
  assert.match(again.stderr, 'endpoint with name app already exists in network back');

  assert.is((await cli(['network', 'disconnect', 'back', 'app'])).code, 0);
  assert.is((await reach()).stdout, 'no\n');
  const twice = await cli(['network', 'disconnect', 'back', 'app']);
  assert.is(twice.code, 1);
  assert.match(twice.stderr, 'is not connected to network back');

  // Stopped and started again: still on the networks its record names.
  assert.is((await cli(['network', 'connect', 'back', 'app'])).code, 0);
  assert.is((await cli(['restart', '-t', '0', 'app'])).code, 0);
  assert.is((await reach()).stdout, 'hello from mysql\n');

  assert.is((await cli(['rm', '-f', 'app', 'db'])).code, 0);
  assert.is((await cli(['network', 'rm', 'front', 'back'])).code, 0);
  assert.equal(await leftovers(root), []);
});

N('--subnet, --gateway, --ip, labels, ls filters and prune', async () => {
  const made = await cli([
    'network',
    'create',
    '--subnet',
    '10.123.4.0/24',
    '--gateway',
    '10.123.4.254',
    '--label',
    'tier=db',
    'fixed',
  ]);
  assert.is(made.code, 0, made.stderr);
  const cfg = await cli(['network', 'inspect', '-f', '{{json .IPAM.Config}} {{.Labels}}', 'fixed']);
  assert.is(cfg.stdout, '[{"Subnet":"10.123.4.0/24","Gateway":"10.123.4.254"}] map[tier:db]\n');
  const ip = await inContainer('fixed', 'ip -4 -o addr show eth0; ip route');
  assert.is(ip.code, 0, ip.stderr);
  assert.match(ip.stdout, /inet 10\.123\.4\.\d+\/24/);
  assert.match(ip.stdout, 'default via 10.123.4.254');
  const fixedIp = await cli([
    'run',
    '--rm',
    '--network',
    'fixed',
    '--ip',
    '10.123.4.77',
    IMAGE,
    'ip',
    '-4',
    '-o',
    'addr',
    'show',
    'eth0',
  ]);
  assert.match(fixedIp.stdout, 'inet 10.123.4.77/24');
  assert.is((await cli(['network', 'ls', '-q', '--filter', 'label=tier=db'])).stdout, `${made.stdout.slice(0, 12)}\n`);
  assert.is(
    (await cli(['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}} {{.Driver}}'])).stdout,
    'fixed bridge\n',
  );
  assert.is((await cli(['network', 'create', '--label', 'tier=web', 'kept'])).code, 0);
  const badFilter = await cli(['network', 'prune', '-f', '--filter', 'until=1h']);
  assert.is(badFilter.code, 1);
  assert.match(badFilter.stderr, "invalid filter 'until=1h'");
  const pruned = await cli(['network', 'prune', '-f', '--filter', 'label=tier=db']);
  assert.is(pruned.stdout, 'Deleted Networks:\nfixed\n');
  assert.is((await cli(['network', 'prune', '-f', '--filter', 'label!=tier'])).stdout, '');
  assert.is((await cli(['network', 'prune', '-f'])).stdout, 'Deleted Networks:\nkept\n');
  assert.equal(await leftovers(root), []);
});

N('a killed monitor leaves endpoints that system prune tears down; the network can then be removed', async () => {
  assert.is((await cli(['network', 'create', 'crashy'])).code, 0);
  const r = await cli(['run', '-d', '--name', 'orphan', '--network', 'crashy', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const monitorPid = Number(readFileSync(path.join(runDir(root), id, 'monitor.pid'), 'utf8'));
  process.kill(monitorPid, 'SIGKILL');
  await eventually('the monitor is gone', async () => {
    try {
      process.kill(monitorPid, 0);
      return false;
    } catch {
      return true;
    }
  });
  const held = await cli(['network', 'rm', 'crashy']);
  assert.is(held.code, 1, 'the endpoint is still there');
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, id);
  // As Docker's: system prune also removes the user networks no container is on any more.
  assert.match(prune.stdout, 'Deleted Networks:\ncrashy\n');
  assert.is((await cli(['network', 'ls', '-q', '--filter', 'name=crashy'])).stdout, '');
  assert.equal(await leftovers(root), []);
});

N("errors: Docker's exit codes and messages, and nothing changes", async () => {
  assert.is((await cli(['network', 'create', '--subnet', '10.124.0.0/16', 'first'])).code, 0);
  const before = (await cli(['network', 'ls', '-q'])).stdout;
  const cases: [string[], number, string][] = [
    [['network', 'create', '--subnet', '10.0.0/8', 'bad'], 1, 'invalid CIDR address: 10.0.0/8'],
    [
      ['network', 'create', '--subnet', '10.124.8.0/24', 'overlap'],
      1,
      'Pool overlaps with other one on this address space',
    ],
    [['network', 'create', 'first'], 1, 'network with name first already exists'],
    [
      ['network', 'create', '--subnet', '10.125.0.0/24', '--gateway', '10.126.0.1', 'gw'],
      1,
      'no matching subnet for gateway 10.126.0.1',
    ],
    [['network', 'rm', 'nope'], 1, 'network nope not found'],
    [['network', 'inspect', 'nope'], 1, 'No such network: nope'],
    [['network', 'connect', 'nope', 'whatever'], 1, 'network nope not found'],
    [['network', 'rm', 'bridge'], 1, 'bridge is a pre-defined network and cannot be removed'],
    [['run', '--rm', '--network', 'nope', IMAGE, 'true'], 125, 'network nope not found'],
    [['create', '--network', 'first', '--ip', '10.99.0.5', IMAGE], 125, 'no available IPv4 address 10.99.0.5'],
    [
      ['run', '--rm', '--network-alias', 'x', IMAGE, 'true'],
      125,
      'network-scoped alias is supported only for containers in user defined networks',
    ],
  ];
  for (const [args, code, msg] of cases) {
    const r = await cli(args);
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  assert.is((await cli(['network', 'ls', '-q'])).stdout, before);
  assert.is((await cli(['ps', '-aq'])).stdout, '');
  assert.is((await cli(['network', 'rm', 'first'])).code, 0);
  assert.equal(await leftovers(root), []);
});

N.run();
