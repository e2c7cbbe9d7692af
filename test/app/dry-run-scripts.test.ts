/**
 * The scripts `run --dry-run` writes, as text: valid POSIX sh (checked by `sh -n` and by
 * evaluating their variables) for a directory with spaces and quotes in its name, every rule
 * replay adds deleted by undo with the very same arguments, and nothing network-related for a
 * container without a network.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { replayScript, undoScript, type ReplayPlan } from '../../src/app/dry-run-scripts.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-dry-scripts-'));
const plan: ReplayPlan = {
  id: 'abcdef0123456789'.repeat(4),
  dir: "/tmp/it's a dir/lesson",
  name: 'web',
  layersDir: '/var/lib/tsrun/layers',
  mountOptions: ['lowerdir=aa/diff:bb/diff', 'upperdir=/c/upper', 'workdir=/c/work', 'index=off'],
  upperDirs: ['srv', 'srv/my app'],
  runtime: '/usr/sbin/runc',
  netns: 'dryrun-abcdef012345',
  veth: 'drabcdef0123',
  tag: 'tsrun-dry-run abcdef012345',
  net: { subnet: '10.66.0.0/16', prefixLen: 16, gateway: '10.66.0.1', ip: '10.66.255.200' },
  ports: [
    { hostIP: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostIP: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
  ],
  bridge: 'tsrun0',
};

const check = (name: string, text: string) => {
  const file = path.join(tmp, name);
  writeFileSync(file, text);
  const r = spawnSync('sh', ['-n', file], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  // DIR is what the plan says, quotes and spaces included.
  const dirLine = text.split('\n').find((l) => l.startsWith('DIR=')) as string;
  assert.is(execFileSync('sh', ['-c', `${dirLine}; printf %s "$DIR"`], { encoding: 'utf8' }), plan.dir);
};

test('replay.sh and undo.sh are valid sh; every rule replay adds, undo deletes', () => {
  const replay = replayScript(plan);
  const undo = undoScript(plan);
  check('replay.sh', replay);
  check('undo.sh', undo);
  const added = replay.split('\n').filter((l) => l.startsWith('iptables ') && l.includes(' -A '));
  const deleted = undo.split('\n').filter((l) => l.startsWith('iptables ') && l.includes(' -D '));
  assert.is(added.length, 3 + 3 * plan.ports.length);
  assert.equal(
    deleted.map((l) => l.replace(' -D ', ' -A ').replace(/ 2>\/dev\/null$/, '')),
    added,
  );
  assert.ok(
    added.every((l) => l.includes(`--comment '${plan.tag}'`)),
    'every rule is tagged',
  );
  assert.ok(replay.includes('-d 127.0.0.1 -p udp --dport 5353'), 'a host address limits the DNAT rule');
  assert.match(replay, /upperdir=\/tmp\/it'\\''s a dir\/lesson\/upper,workdir=/);
  assert.ok(!replay.includes('/c/upper'), "run's own upper dir is not used");
  // Every line that does something has a comment beside it or just above it.
  const lines = replay.split('\n');
  lines.forEach((l, n) => {
    if (/^\(?(ip|iptables|mount|mkdir|chmod|sysctl|cd) /.test(l))
      assert.ok(l.includes(' # ') || (lines[n - 1] ?? '').startsWith('#'), `uncommented: ${l}`);
  });
});

test('without a network: no netns, veth or rule', () => {
  const none = { ...plan, net: undefined, ports: [] };
  const replay = replayScript(none);
  const undo = undoScript(none);
  check('replay-none.sh', replay);
  check('undo-none.sh', undo);
  for (const t of [replay, undo]) assert.ok(!/^(ip|iptables) /m.test(t), t);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
