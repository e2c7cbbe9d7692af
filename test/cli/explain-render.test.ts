/**
 * src/cli/explain: the layout keeps every line within 100 columns and a wrapped command still
 * means the same to sh (run through the real sh); an event type the renderer does not know is
 * one generic line and breaks nothing; stages are told in order, skipped ones say why; json is
 * one object per event. (The real runs: test/e2e/explain-flag.test.ts.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import type { TsrunEvent } from '../../src/events.js';
import { layoutStage, wrapShell } from '../../src/cli/explain/layout.js';
import { explainReporter } from '../../src/cli/explain/reporter.js';

const sh = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout;

test('a wrapped command is the same command to sh, and fits 100 columns', () => {
  const long = `/var/lib/tsrun/layers/${'ab12'.repeat(16)}/diff`;
  const cmds = [
    `echo ${Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ')}`,
    `echo L1=${long}:${long}:${long} 'a quoted   argument'`,
    `echo "lowerdir=${long}:${long},upperdir=${long}" done`,
    `echo ${long} ${long}   # a comment is never continued with a backslash`,
    // A word that just fits a continuation line alone, with more after it: room for its ` \`.
    `echo --comment ${'x'.repeat(82)} -j NEXT`,
  ];
  for (const cmd of cmds) {
    const lines = wrapShell(cmd, ' '.repeat(15), ' '.repeat(17));
    for (const l of lines) assert.ok(l.length <= 100, `${l.length}: ${l}`);
    assert.ok(lines.length > 1, 'wrapped');
    assert.is(sh(lines.join('\n')), sh(cmd), lines.join('\n'));
  }
});

test('a stage fits 100 columns with long paths, lists and prose', () => {
  const out = layoutStage(
    '[2/8] Root filesystem',
    {
      summary: `overlay: 3 layers at /very/${'long/'.repeat(30)}rootfs`,
      lines: [
        { kind: 'text', label: 'caps', text: Array.from({ length: 40 }, () => 'NET_BIND_SERVICE').join(' ') },
        { kind: 'raw', label: 'input', text: JSON.stringify({ a: 'x'.repeat(300) }) },
        { kind: 'why', label: 'why', text: 'words '.repeat(60) },
      ],
    },
    true,
  );
  // Colour codes do not count as columns.
  for (const l of out) assert.ok(l.replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '').length <= 100, l);
  assert.ok(out[0]?.startsWith('\x1b[1m[2/8] Root filesystem'));
});

function capture(): NodeJS.WritableStream & { text: string } {
  const s = { text: '', write: (c: string) => ((s.text += c), true) };
  return s as unknown as NodeJS.WritableStream & { text: string };
}

const id = 'a'.repeat(64);

test('stages in order; skipped ones say why; an unknown event is one generic line', () => {
  const err = capture();
  const r = explainReporter({ verb: 'run', mode: 'brief', err, color: false });
  const events = [
    {
      type: 'rootfs-mount',
      id,
      target: '/r/rootfs',
      driver: 'overlay',
      lowerdirs: ['/s/layers/x/diff'],
      upperdir: '/u',
      workdir: '/w',
    },
    { type: 'future-event', method: 'GET', url: 'http://h/v2/', status: 200, nested: { no: 1 } },
    {
      type: 'container-create',
      id,
      name: 'n',
      image: 'img',
      bundle: '/b',
      config: '/b/config.json',
      args: ['true'],
      cwd: '/',
      user: { uid: 0, gid: 0 },
      network: 'none',
      envNames: ['PATH'],
      namespaces: [{ type: 'pid' }],
      capabilities: ['CAP_CHOWN'],
      mounts: [{ destination: '/proc' }],
      maskedPaths: [],
      readonlyPaths: [],
      rlimits: [],
    },
  ] as unknown as TsrunEvent[];
  for (const e of events) r.emit(e);
  // Told as soon as its closing event came: the spec is out before the runtime starts.
  assert.match(err.text, /^\[3\/8\] Spec/m);
  r.finish(false);
  const heads = err.text.split('\n').filter((l) => l.startsWith('['));
  assert.equal(
    heads.map((h) => h.split('  ')[0]),
    [
      '[1/8] Image',
      '[2/8] Root filesystem',
      '[3/8] Spec',
      '[4/8] Network',
      '[5/8] Create',
      '[6/8] Start',
      '[7/8] Exit',
      '[8/8] Cleanup',
    ],
  );
  assert.match(err.text, /\[1\/8\] Image {2}already in the store/);
  assert.match(err.text, /\[4\/8\] Network {2}--network none/);
  assert.match(err.text, / {6}future-event method=GET url=http:\/\/h\/v2\/ status=200\n/);
});

test('the network-wide rules of the first container since boot: told in Network, never at column 0', () => {
  // Seen on a fresh machine: the multi-line iptables-restore input broke the Network stage in two.
  const input =
    '*nat\n:TSRUN-POSTROUTING - [0:0]\n-A TSRUN-POSTROUTING -s 10.66.0.0/16 ! -o tsrun0 -j MASQUERADE\nCOMMIT\n*filter\n:TSRUN-FORWARD - [0:0]\nCOMMIT\n';
  const attach = {
    type: 'network-attach',
    id,
    driver: 'bridge',
    netns: '/run/netns/tsrun-aaaa',
    ip: '10.66.0.2',
    prefixLen: 16,
    gateway: '10.66.0.1',
    mac: '',
    ports: [],
  };
  for (const mode of ['brief', 'full'] as const) {
    const err = capture();
    const r = explainReporter({ verb: 'run', mode, err, color: false });
    for (const e of [
      { type: 'network-rules', input, ms: 3 },
      attach,
      { type: 'later-event', text: 'one\ntwo' },
    ] as unknown as TsrunEvent[])
      r.emit(e);
    r.finish(false);
    for (const l of err.text.split('\n').filter(Boolean)) assert.match(l, /^(\[\d\/8\] | {6})/, err.text);
    assert.match(err.text, / {6}chains +TSRUN-POSTROUTING, TSRUN-FORWARD: /);
    assert.match(err.text, / {6}later-event text=one ⏎ two\n/);
    if (mode === 'full') assert.match(err.text, /restore +-A TSRUN-POSTROUTING -s 10\.66\.0\.0\/16 ! -o tsrun0/);
    else assert.not.match(err.text, /MASQUERADE/);
  }
});

test('json: one object per event with its stage; a failed command tells what was not reached', () => {
  const err = capture();
  const r = explainReporter({ verb: 'stop', mode: 'json', err, color: false });
  r.emit({ type: 'container-stop', id, signal: 'SIGTERM', timeoutSec: 10, killed: false });
  r.emit({ type: 'warning', message: 'w' });
  r.finish(true);
  const lines = err.text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(
    lines.map((l) => [l.schema, l.command, l.stage, l.n, l.N]),
    [
      ['tsrun.explain/v1', 'stop', 'stop', 1, 3],
      ['tsrun.explain/v1', 'stop', 'stop', 1, 3],
    ],
  );
  const text = capture();
  const t = explainReporter({ verb: 'pull', mode: 'brief', err: text, color: false });
  t.finish(true);
  assert.match(text.text, /\[2\/4\] Manifest {2}not reached/);
});

test.run();
