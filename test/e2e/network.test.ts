/**
 * End to end: the bridge network and published ports with the real CLI, real runc and the real
 * CNI plugins. Traffic goes only to loopback, to the host's own addresses and into the
 * namespaces the containers get. What is checked is what Docker documents: `-p` answers on
 * 127.0.0.1 and on the host's addresses, a taken port exits 125 and makes nothing, containers
 * reach each other and the host through the bridge, and nothing is left after rm, --rm, a killed
 * CLI or a killed monitor (with `system prune`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, spawnTsrun, tsrun } from './cli.js';
import { eventually, leftovers, networkLeftovers, runDir } from './containers.js';
import { busyboxLayer } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import http from 'node:http';
import { freePort, freePorts, hostAddress, httpGet } from '../helpers/net.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-net-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const N = suite('e2e network');

/** A web page and busybox httpd as the image's command, EXPOSE 80. */
const site = layerBlob(
  makeTar([
    { name: 'www/', type: 'dir' },
    { name: 'www/index.html', content: 'hello from the container\n' },
  ]),
);

N.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/web', 'latest', {
    layers: [busyboxLayer(), site],
    config: {
      config: {
        Cmd: ['httpd', '-f', '-p', '80', '-h', '/www'],
        Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
        ExposedPorts: { '80/tcp': {} },
      },
    },
  });
  IMAGE = `${reg.host}/e2e/web`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
N.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const cli = (args: string[], input?: string) => tsrun(args, { root, input });

const get = (host: string, port: number) => httpGet(host, port, '/index.html');

N(
  "-p HOST:80 answers on 127.0.0.1 and on the host's address; port, ps and inspect show it; rm -f leaves nothing",
  async () => {
    const port = await freePort();
    const r = await cli(['run', '-d', '--name', 'web', '-p', `${port}:80`, IMAGE]);
    assert.is(r.code, 0, r.stderr);
    assert.is(await get('127.0.0.1', port), 'hello from the container\n');
    assert.is(await get(hostAddress(), port), 'hello from the container\n');
    assert.is((await cli(['port', 'web'])).stdout, `80/tcp -> 0.0.0.0:${port}\n`);
    assert.is((await cli(['port', 'web', '80/tcp'])).stdout, `0.0.0.0:${port}\n`);
    const no = await cli(['port', 'web', '81']);
    assert.is(no.code, 1);
    assert.match(no.stderr, "no public port '81/tcp' published for web");
    assert.is((await cli(['ps', '--format', '{{.Names}} {{.Ports}}'])).stdout, `web 0.0.0.0:${port}->80/tcp\n`);
    const ip = (await cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
    assert.ok(net.isIPv4(ip), ip);
    // The container itself answers on its address, through the bridge.
    assert.is(await get(ip, 80), 'hello from the container\n');
    // The monitor holds the host port, so nothing else can take it while the container runs.
    const ss = await execa('ss', ['-ltnpH', `sport = :${port}`]);
    assert.match(String(ss.stdout), 'tsrun-monitor');
    assert.is((await cli(['rm', '-f', 'web'])).code, 0);
    assert.equal(await leftovers(root), []);
    // ...and the port is free again at once.
    const again = await cli(['run', '--rm', '-p', `${port}:80`, IMAGE, 'true']);
    assert.is(again.code, 0, again.stderr);
  },
);

N("a host port already taken: exit 125, Docker's message, and no container, name or network left", async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '0.0.0.0', r));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const r = await cli(['run', '-d', '--name', 'clash', '-p', `${port}:80`, IMAGE]);
    assert.is(r.code, 125);
    assert.match(r.stderr, `Bind for 0.0.0.0:${port} failed: port is already allocated`);
    assert.equal(await leftovers(root), []);
    // The name was never taken.
    const ok = await cli(['run', '--rm', '--name', 'clash', IMAGE, 'true']);
    assert.is(ok.code, 0, ok.stderr);
  } finally {
    holder.close();
  }
});

N(
  'the port is checked again at start: a port taken while the container was stopped fails `start`, which undoes the network',
  async () => {
    const port = await freePort();
    assert.is((await cli(['create', '--name', 'later', '-p', `${port}:80`, IMAGE])).code, 0);
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(port, '0.0.0.0', r));
    try {
      const r = await cli(['start', 'later']);
      assert.is(r.code, 125);
      assert.match(r.stderr, 'port is already allocated');
      assert.equal(await networkLeftovers(), []);
    } finally {
      holder.close();
    }
    assert.is((await cli(['start', 'later'])).code, 0);
    assert.is(await get('127.0.0.1', port), 'hello from the container\n');
    assert.is((await cli(['rm', '-f', 'later'])).code, 0);
    assert.equal(await leftovers(root), []);
  },
);

N('-P publishes EXPOSEd ports on free host ports; ranges and udp are held too', async () => {
  const r = await cli(['run', '-d', '--name', 'pub', '-P', '-p', '127.0.0.1::5353/udp', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  const lines = (await cli(['port', 'pub'])).stdout.trim().split('\n');
  assert.is(lines.length, 2, lines.join('|'));
  const tcp = /^80\/tcp -> 0\.0\.0\.0:(\d+)$/.exec(lines.find((l) => l.startsWith('80/')) ?? '');
  assert.ok(tcp, lines.join('|'));
  assert.is(await get('127.0.0.1', Number(tcp[1])), 'hello from the container\n');
  const udp = /^5353\/udp -> 127\.0\.0\.1:(\d+)$/.exec(lines.find((l) => l.startsWith('5353/')) ?? '');
  assert.ok(udp, lines.join('|'));
  assert.match(String((await execa('ss', ['-lunpH', `sport = :${udp[1]}`])).stdout), 'tsrun-monitor');
  assert.is((await cli(['rm', '-f', 'pub'])).code, 0);
  const base = await freePorts(2);
  const range = await cli(['run', '--rm', '-p', `${base}-${base + 1}:80-81`, IMAGE, 'true']);
  assert.is(range.code, 0, range.stderr);
  assert.equal(await leftovers(root), []);
});

N(
  'containers on the bridge reach each other by address and the host through the gateway; /etc/hosts names the container',
  async () => {
    assert.is((await cli(['run', '-d', '--name', 'server', '--hostname', 'srv', IMAGE])).code, 0);
    const ip = (await cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'server'])).stdout.trim();
    const hosts = await cli(['exec', 'server', 'cat', '/etc/hosts']);
    assert.match(hosts.stdout, new RegExp(`^${ip.replace(/\./g, '\\.')}\\tsrv$`, 'm'));
    let r: Awaited<ReturnType<typeof cli>> | undefined;
    for (let i = 0; i < 30; i++) {
      r = await cli(['run', '--rm', IMAGE, 'wget', '-q', '-O', '-', `http://${ip}/index.html`]);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.is(r?.stdout, 'hello from the container\n', r?.stderr);
    // A server on the host, reached at the bridge's gateway address (the host's side of the bridge).
    const gw = (await cli(['inspect', '-f', '{{.NetworkSettings.Gateway}}', 'server'])).stdout.trim();
    const hostServer = http.createServer((_, res) => res.end('hello from the host\n'));
    await new Promise<void>((res) => hostServer.listen(0, gw, res));
    try {
      const port = (hostServer.address() as net.AddressInfo).port;
      const out = await cli(['run', '--rm', IMAGE, 'wget', '-q', '-O', '-', `http://${gw}:${port}/`]);
      assert.is(out.stdout, 'hello from the host\n', out.stderr);
      // By name too: host.containers.internal is the gateway (as podman writes it).
      assert.match(hosts.stdout, `${gw}\thost.containers.internal\n`);
      const named = await cli([
        'run',
        '--rm',
        IMAGE,
        'wget',
        '-q',
        '-O',
        '-',
        `http://host.containers.internal:${port}/`,
      ]);
      assert.is(named.stdout, 'hello from the host\n', named.stderr);
      // The default route goes through the bridge (outbound NAT is exercised by this same path).
      const route = await cli(['run', '--rm', IMAGE, 'ip', 'route']);
      assert.match(route.stdout, `default via ${gw} dev eth0`);
    } finally {
      hostServer.close();
    }
    const resolv = await cli(['run', '--rm', IMAGE, 'cat', '/etc/resolv.conf']);
    assert.match(resolv.stdout, /^nameserver \S+$/m);
    assert.not.match(resolv.stdout, /nameserver 127\./);
    assert.is((await cli(['rm', '-f', 'server'])).code, 0);
    assert.equal(await leftovers(root), []);
  },
);

N(
  "--network host sees the host's interfaces and -p is discarded with Docker's warning; --network none has loopback only",
  async () => {
    const host = await cli(['run', '--rm', '--network', 'host', '-p', '80:80', IMAGE, 'ip', '-o', 'link']);
    assert.is(host.code, 0, host.stderr);
    assert.match(host.stderr, 'Published ports are discarded when using host network mode');
    const hostLinks = String((await execa('ip', ['-o', 'link'])).stdout).split('\n').length;
    assert.is(host.stdout.trim().split('\n').length, hostLinks);
    const none = await cli(['run', '--rm', '--network', 'none', IMAGE, 'ip', '-o', 'link']);
    assert.equal(
      none.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(':')[1]?.trim()),
      ['lo'],
    );
    assert.equal(await leftovers(root), []);
  },
);

N('teardown after a killed CLI (the monitor cleans up) and after a killed monitor (system prune repairs)', async () => {
  const port = await freePort();
  const attached = spawnTsrun(['run', '--rm', '-p', `${port}:80`, IMAGE], { root });
  assert.is(await get('127.0.0.1', port), 'hello from the container\n');
  attached.kill('SIGKILL');
  await attached;
  // The container keeps running (Docker's too): stop it from outside; the monitor's cleanup runs.
  const ps = (await cli(['ps', '-q'])).stdout.trim();
  assert.ok(ps);
  assert.is((await cli(['stop', '-t', '1', ps])).code, 0);
  await eventually('the monitor cleaned up', async () => (await leftovers(root)).length === 0);

  const port2 = await freePort();
  assert.is((await cli(['run', '-d', '--name', 'orphan', '-p', `${port2}:80`, IMAGE])).code, 0);
  const id = (await cli(['inspect', '-f', '{{.Id}}', 'orphan'])).stdout.trim();
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
  assert.ok((await networkLeftovers()).length > 0, 'the killed monitor should have left its network behind');
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, id);
  assert.equal(await leftovers(root), []);
  // The orphaned container process was killed too: nothing answers on its address any more.
  const again = await cli(['run', '--rm', '-p', `${port2}:80`, IMAGE, 'true']);
  assert.is(again.code, 0, again.stderr);
});

N(
  "-p is tsrun's own chain: containers reach each other through the published port (hairpin), and run --rm leaves no rule",
  async () => {
    const port = await freePort();
    assert.is((await cli(['run', '-d', '--name', 'pub', '-p', `${port}:80`, IMAGE])).code, 0);
    const id = (await cli(['inspect', '-f', '{{.Id}}', 'pub'])).stdout.trim();
    const nat = async () => String((await execa('iptables-save', ['-t', 'nat'])).stdout);
    const rules = (await nat()).split('\n');
    assert.ok(
      rules.some((l) => l.startsWith(`-A TSRUN-DN-${id.slice(0, 12)} `) && l.includes('-j DNAT')),
      rules.join('\n'),
    );
    assert.not.ok(
      rules.some((l) => l.includes(id) && l.includes('CNI-')),
      'no portmap rule',
    );
    // Another container, through the host's address, and the container to itself (both masqueraded back).
    for (const who of [
      ['run', '--rm', IMAGE],
      ['exec', 'pub'],
    ]) {
      const r = await cli([...who, 'wget', '-qO-', `http://${hostAddress()}:${port}/index.html`]);
      assert.is(r.code, 0, `${who.join(' ')}: ${r.stderr}`);
      assert.is(r.stdout, 'hello from the container\n');
    }
    assert.is((await cli(['rm', '-f', 'pub'])).code, 0);
    assert.not.match(await nat(), id.slice(0, 12));
    const port2 = await freePort();
    const once = await cli(['run', '--rm', '-p', `${port2}:80`, '-p', `127.0.0.1:${port2}:81/udp`, IMAGE, 'true']);
    assert.is(once.code, 0, once.stderr);
    assert.not.match(await nat(), /TSRUN-DN-|tsrun ports id:/);
    assert.equal(await leftovers(root), []);
  },
);

N('system prune removes a port chain no record names (a record lost after its rules were written)', async () => {
  // Any run makes the network's chains; then a container's chain as a run killed with its record lost leaves it.
  assert.is((await cli(['run', '--rm', IMAGE, 'true'])).code, 0);
  const chain = 'TSRUN-DN-deadbeef0001';
  const made = await execa('iptables-restore', ['-w', '--noflush'], {
    input: `*nat\n:${chain} - [0:0]\n-A ${chain} -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.255.0.1:1\n-A TSRUN-HOSTPORT-DNAT -p tcp -m comment --comment "tsrun ports id: deadbeef0001" -m multiport --dports 1 -j ${chain}\nCOMMIT\n`,
    reject: false,
  });
  assert.is(made.exitCode, 0, String(made.stderr));
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.code, 0, prune.stderr);
  assert.not.match(String((await execa('iptables-save', ['-t', 'nat'])).stdout), 'deadbeef0001');
});

N('system prune tears down an attachment whose store is gone', async () => {
  const other = path.join(tmp, 'other-root');
  assert.is((await tsrun(['pull', '-q', IMAGE], { root: other })).code, 0);
  assert.is((await tsrun(['run', '-d', '--name', 'lost', IMAGE], { root: other })).code, 0);
  const id = (await tsrun(['inspect', '-f', '{{.Id}}', 'lost'], { root: other })).stdout.trim();
  // Simulate the owner vanishing: kill the monitor and the container, delete the store.
  const monitorPid = Number(readFileSync(path.join(runDir(other), id, 'monitor.pid'), 'utf8'));
  process.kill(monitorPid, 'SIGKILL');
  await execa('runc', ['--root', path.join(runDir(other), 'runc'), 'delete', '--force', id], { reject: false });
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
    const mp = line.split(' ')[4];
    if (mp?.startsWith(other)) await execa('umount', [mp], { reject: false });
  }
  rmSync(other, { recursive: true, force: true });
  rmSync(runDir(other), { recursive: true, force: true });
  assert.ok((await networkLeftovers()).length > 0);
  const prune = await cli(['system', 'prune'], 'y\n');
  assert.is(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, `Torn-down network attachments:\n${id}`);
  assert.equal(await networkLeftovers(), []);
});

N('system prune removes the temp files of network-record writers killed before their rename', async () => {
  // A record writer SIGKILLed between writing `.<record>.<pid>-<hex>.tmp` and renaming it (seen
  // in a loaded chaos run): its pid is dead. A live writer's temp file must stay.
  const dead = (await execa('sh', ['-c', 'echo $$'])).stdout.trim();
  const files = ['containers', 'endpoints'].map((d) => {
    mkdirSync(path.join('/run/tsrun/net', d), { recursive: true, mode: 0o700 });
    return path.join('/run/tsrun/net', d, `.${'e'.repeat(64)}.json.${dead}-0123abcd.tmp`);
  });
  const live = path.join('/run/tsrun/net/containers', `.${'f'.repeat(64)}.json.${process.pid}-0123abcd.tmp`);
  for (const f of [...files, live]) writeFileSync(f, '{}');
  try {
    const prune = await cli(['system', 'prune', '-f']);
    assert.is(prune.code, 0, prune.stderr);
    for (const f of files) assert.not.ok(existsSync(f), `${f} was left`);
    assert.ok(existsSync(live), "a live writer's temp file was removed");
  } finally {
    for (const f of [...files, live]) rmSync(f, { force: true });
  }
});

N(
  'a published port answers a client on another machine when the FORWARD policy is DROP (as Docker leaves it)',
  async () => {
    // All of it in a network and mount namespace of its own (scripts/netns-sandbox.sh: its own
    // iptables, /run/tsrun and bridge), with a "remote" namespace on a veth as the other machine.
    const sandbox = path.resolve(BIN, '../../scripts/netns-sandbox.sh');
    const script = [
      'set -e',
      'iptables -P FORWARD DROP',
      'ip netns add remote',
      'ip link set h1 netns remote',
      'ip -n remote addr add 192.0.2.1/24 dev h1',
      'ip -n remote link set h1 up',
      `cid=$("$0" --root "$1" run -d -p 8080:80 "$2")`,
      'ok=""',
      'for i in 1 2 3 4 5 6 7 8 9 10; do',
      '  if out=$(ip netns exec remote curl -sf --max-time 2 http://192.0.2.10:8080/index.html); then ok=1; break; fi',
      '  sleep 0.3',
      'done',
      'echo "remote: ${out:-nothing}"',
      '"$0" --root "$1" rm -f "$cid" >/dev/null',
      '[ -n "$ok" ]',
    ].join('\n');
    const r = await execa(sandbox, ['--host-address', 'sh', '-c', script, BIN, root, IMAGE], { reject: false });
    assert.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, 'remote: hello from the container');
  },
);

N.run();
