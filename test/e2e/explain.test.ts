/**
 * End to end: `tsrun explain CONTAINER [--check]` on a real container (real runc, the bridge made
 * by the real CNI plugins, a published port). The facts it prints are checked against what the
 * host says by other means (ps, /proc, ip, iptables); `--check` passes on the healthy container
 * and, after the DNAT rule of its published port is deleted by hand, fails naming that stage.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { freePort } from '../helpers/net.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-explain-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const E = suite('e2e explain');

E.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/explain', 'latest');
  IMAGE = `${reg.host}/e2e/explain`;
  assert.is((await tsrun(['pull', '-q', IMAGE], { root })).code, 0);
});
E.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const cli = (args: string[]) => tsrun(args, { root });

interface Fact {
  Stage: string;
  Text: string;
  OK?: boolean;
  Expected?: string;
  Look?: string;
}

E(
  'explain shows the real pid, namespaces, cgroup, root, netns, veth, DNAT rule and monitor; --check passes, then fails on a deleted rule',
  async () => {
    const port = await freePort();
    const run = await cli([
      'run',
      '-d',
      '--name',
      'lesson',
      '-m',
      '64m',
      '--pids-limit',
      '50',
      '-p',
      `${port}:80`,
      IMAGE,
      'sleep',
      '300',
    ]);
    assert.is(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    const pid = Number((await cli(['inspect', '-f', '{{.State.Pid}}', 'lesson'])).stdout.trim());
    const ip = (await cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'lesson'])).stdout.trim();
    assert.ok(pid > 1 && ip !== '');

    const j = await cli(['explain', '--check', '--format', 'json', 'lesson']);
    assert.is(j.code, 0, j.stdout + j.stderr);
    const facts = (JSON.parse(j.stdout) as { Facts: Fact[] }).Facts;
    const text = (stage: string) => facts.filter((f) => f.Stage === stage).map((f) => f.Text);
    assert.ok(
      facts.every((f) => f.OK !== false),
      JSON.stringify(facts, null, 1),
    );
    assert.ok(facts.filter((f) => f.OK === true).length >= 12, 'most facts are checked');

    // The process: the host pid inspect gives, running sleep.
    assert.match(text('process')[0] as string, `pid 1 inside is host pid ${pid}: sleep 300`);
    // Namespaces: inodes as the host shows them; net is the named netns, and not the host's.
    const netIno = readlinkSync(`/proc/${pid}/ns/net`);
    assert.ok(
      text('namespaces').some((t) => t.startsWith('network') && t.includes(netIno) && t.includes('own (host: ')),
    );
    const netns = `tsrun-${id.slice(0, 12)}`;
    assert.ok(text('network')[0]?.startsWith(`netns ${netns} (/run/netns/${netns}, ${netIno})`), text('network')[0]);
    // Cgroup: the limits asked for, and the pids in use (sleep alone).
    assert.ok(text('cgroup').some((t) => t === `memory: ${t.split(' ')[1]} bytes used, limit ${64 * 1024 * 1024}`));
    assert.ok(
      text('cgroup').some((t) => t === 'pids: 1 now, limit 50'),
      text('cgroup').join('\n'),
    );
    // Root: the overlay with the image's one layer below the container's upper dir.
    assert.match(text('root')[0] as string, `/ is overlay: 1 lowerdir(s)`);
    assert.match(text('root')[0] as string, path.join(root, 'containers', id, 'upper'));
    // Network: the address inspect gives, the veth the host has on tsrun0.
    assert.ok(text('network').some((t) => t.startsWith(`eth0 ${ip}/`)));
    const veth = /↔ (\S+) on the host, attached to tsrun0/.exec(text('network').join('\n'))?.[1] ?? '';
    const master = await execa('ip', ['-o', 'link', 'show', 'master', 'tsrun0'], { reject: false });
    assert.ok(veth !== '' && String(master.stdout).includes(`${veth}@`), `${veth} in ${master.stdout}`);
    // Ports: the DNAT rule really is in iptables.
    const rule = /: (-A \S+ .*)$/.exec(text('ports')[0] ?? '')?.[1] ?? '';
    const nat = String((await execa('iptables', ['-w', '-t', 'nat', '-S'])).stdout).split('\n');
    assert.ok(rule !== '' && nat.includes(rule), rule);
    assert.match(rule, `--to-destination ${ip}:80`);
    // The monitor is alive.
    assert.match(text('monitor')[0] as string, /^monitor pid \d+: /);

    const human = await cli(['explain', '--check', 'lesson']);
    assert.is(human.code, 0);
    assert.match(human.stdout, /\n✓ all \d+ checks passed\n$/);
    assert.match(human.stdout, `$ ip netns exec ${netns} ip addr`);

    // Delete the DNAT rule by hand: --check names the stage and exits 1; the rest still holds.
    await execa('iptables', [
      '-w',
      '-t',
      'nat',
      ...rule
        .replace(/^-A /, '-D ')
        .match(/"[^"]*"|\S+/g)!
        .map((a) => a.replace(/^"|"$/g, '')),
    ]);
    const broken = await cli(['explain', '--check', 'lesson']);
    assert.is(broken.code, 1, broken.stdout);
    assert.match(
      broken.stdout,
      new RegExp(`✗ ports: 0\\.0\\.0\\.0:${port} → ${ip.replace(/\./g, '\\.')}:80/tcp: no DNAT rule`),
    );
    assert.match(broken.stdout, /\n✗ 1 of \d+ checks failed: ports\n$/);
    const plain = await cli(['explain', 'lesson']);
    assert.is(plain.code, 0, 'without --check nothing is judged');
    assert.not.match(plain.stdout, /[✓✗]/);

    assert.is((await cli(['rm', '-f', 'lesson'])).code, 0);
    const stopped = await cli(['explain', 'lesson']);
    assert.is(stopped.code, 1);
    assert.match(stopped.stderr, /no such container|not running/i);
    assert.equal(await leftovers(root), []);
  },
);

E("--network none and host: the network namespace is its own, or the host's, as the spec says", async () => {
  for (const [name, net, own] of [
    ['quiet', 'none', true],
    ['hosted', 'host', false],
  ] as const) {
    const run = await cli(['run', '-d', '--name', name, '--network', net, IMAGE, 'sleep', '300']);
    assert.is(run.code, 0, run.stderr);
    const j = await cli(['explain', '--check', '--format', 'json', name]);
    assert.is(j.code, 0, j.stdout + j.stderr);
    const facts = (JSON.parse(j.stdout) as { Facts: Fact[] }).Facts;
    const netFact = facts.find((f) => f.Stage === 'namespaces' && f.Text.startsWith('network'));
    assert.ok(netFact?.OK, JSON.stringify(netFact));
    assert.is(netFact?.Text.includes('own (host: '), own, netFact?.Text);
    assert.equal(
      facts.filter((f) => f.Stage === 'network').map((f) => f.Text),
      [`--network ${net}`],
    );
    assert.is(facts.filter((f) => f.Stage === 'ports').length, 0);
    assert.is((await cli(['rm', '-f', name])).code, 0);
  }
  assert.equal(await leftovers(root), []);
});

E.run();
