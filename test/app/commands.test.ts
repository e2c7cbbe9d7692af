/**
 * The pure parts of commit/import (-c changes), diff (an upper dir against its layers, built
 * here in overlayfs form), top (ps output), update (config.json's uint64s) and events (times
 * and filters), without containers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyChanges } from '../../src/app/changes.js';
import { changesOf } from '../../src/app/diff.js';
import { parsePs } from '../../src/app/top.js';
import { eventFilter, parseEventTime, type TsrunEventRecord } from '../../src/app/events.js';
import { parseSpec, serializeSpec } from '../../src/spec/defaults.js';
import { native } from '../../src/native/index.js';

test('applyChanges: Dockerfile instructions in order, ENV seen by later changes, ENTRYPOINT clears CMD; others refused', async () => {
  const c = await applyChanges({ Env: ['PATH=/bin'], Cmd: ['sh'] }, [
    'ENV A=1 B=two',
    'WORKDIR /srv',
    'WORKDIR app',
    'USER 1000:1000',
    'EXPOSE 80 53/udp',
    'LABEL k=v',
    'VOLUME /data',
    'STOPSIGNAL SIGINT',
    'ENTRYPOINT ["/bin/app"]',
    'ENV C=$A-x',
  ]);
  assert.equal(c.Env, ['PATH=/bin', 'A=1', 'B=two', 'C=1-x']);
  assert.is(c.WorkingDir, '/srv/app');
  assert.is(c.User, '1000:1000');
  assert.equal(c.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  assert.equal(c.Labels, { k: 'v' });
  assert.equal(c.Volumes, { '/data': {} });
  assert.is(c.StopSignal, 'SIGINT');
  assert.equal(c.Entrypoint, ['/bin/app']);
  assert.is(c.Cmd, null);
  assert.equal((await applyChanges({}, ['cmd echo hi'])).Cmd, ['/bin/sh', '-c', 'echo hi']);
  await applyChanges({}, ['RUN rm -rf /']).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, 'RUN is not a valid change command'),
  );
});

test('changesOf: whiteouts are D, entries the image has are C, new ones A; opaque directories delete what was below', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-diff-'));
  try {
    const lower = path.join(tmp, 'lower');
    const upper = path.join(tmp, 'upper');
    for (const d of ['etc', 'opt/keep', 'var/cache']) mkdirSync(path.join(lower, d), { recursive: true });
    writeFileSync(path.join(lower, 'etc/passwd'), 'x');
    writeFileSync(path.join(lower, 'etc/group'), 'x');
    writeFileSync(path.join(lower, 'var/cache/a'), 'a');
    writeFileSync(path.join(lower, 'var/cache/b'), 'b');
    for (const d of ['etc', 'var/cache', 'new/dir']) mkdirSync(path.join(upper, d), { recursive: true });
    writeFileSync(path.join(upper, 'etc/passwd'), 'changed');
    native().mknod(path.join(upper, 'etc/group'), 0o20000 | 0o600, 0, 0);
    native().lsetxattr(path.join(upper, 'var/cache'), 'trusted.overlay.opaque', Buffer.from('y'));
    writeFileSync(path.join(upper, 'var/cache/b'), 'new b');
    writeFileSync(path.join(upper, 'new/dir/f'), 'f');
    const lines = changesOf({
      upper,
      lowers: [lower],
      xattrPrefix: 'trusted.overlay.',
      excluded: new Set(['new/dir/f']),
    }).map((c) => `${c.kind} ${c.path}`);
    assert.equal(lines, [
      'C /etc',
      'D /etc/group',
      'C /etc/passwd',
      'A /new',
      'A /new/dir',
      'C /var',
      'C /var/cache',
      'D /var/cache/a',
      'C /var/cache/b',
    ]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('parsePs: the PID column found by its header, the command keeps its spaces, only the given pids', () => {
  const out =
    'UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 10:00 ?        00:00:01 /sbin/init splash\nroot        4242       1  0 10:01 ?        00:00:00 sh -c sleep 1000\n';
  const r = parsePs(out, new Set([4242]));
  assert.equal(r.titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
  assert.equal(r.processes, [['root', '4242', '1', '0', '10:01', '?', '00:00:00', 'sh -c sleep 1000']]);
  assert.throws(() => parsePs('COMMAND\nsh\n', new Set([1])), /Couldn't find PID field/);
});

test('parseSpec: uint64 values survive a read and a rewrite of config.json; strings that look like numbers stay strings', () => {
  const text =
    '{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}],"env":["X=12345678901234567890","Y=a: 12345678901234567890}","Z=\\"12345678901234567890"]},"n":-1.5e3}';
  const v = parseSpec(text);
  assert.is(typeof (v.process.rlimits?.[0]?.hard as unknown), 'bigint');
  assert.is(serializeSpec(v).replace(/\s+/g, ''), text.replace('-1.5e3', '-1500').replace(/\s+/g, ''));
  assert.is(typeof (parseSpec('{"f":0.12345678901234567}') as unknown as { f: unknown }).f, 'number');
  // As config.json is written (indented): the same.
  assert.is(serializeSpec(parseSpec(serializeSpec(v))), serializeSpec(v));
});

test('events: times as docker takes them, and filters (same key ORs, keys AND)', () => {
  const now = Date.parse('2024-01-02T03:04:05Z');
  assert.is(parseEventTime('10m', now), now - 600_000);
  assert.is(parseEventTime('1700000000', now), 1_700_000_000_000);
  assert.is(parseEventTime('2024-01-01T00:00:00Z', now), Date.parse('2024-01-01T00:00:00Z'));
  assert.throws(() => parseEventTime('yesterday', now), /invalid time/);
  const ev = (Action: string, name: string): TsrunEventRecord => ({
    Type: 'container',
    Action,
    Actor: { ID: 'abc', Attributes: { name, image: 'busybox', team: 'a' } },
    scope: 'local',
    time: 0,
    timeNano: 0,
  });
  const f = eventFilter(['event=start', 'event=die', 'container=web', 'label=team=a']);
  assert.ok(f(ev('die', 'web')));
  assert.not.ok(f(ev('create', 'web')));
  assert.not.ok(f(ev('die', 'db')));
  assert.throws(() => eventFilter(['colour=red']), /invalid filter/);
});

test.run();
