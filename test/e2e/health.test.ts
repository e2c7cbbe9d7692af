/**
 * End to end: health checks as Docker runs them, by the container's monitor (no daemon): the
 * image's HEALTHCHECK built with `tsrun build`, the --health-* flags over it, the states
 * (starting → healthy, unhealthy after the retries, the start period, the timeout), what
 * inspect, ps (column, --filter health=, --format) and events show, `tsrun healthcheck run`,
 * Docker's flag errors, and that no probe outlives its container. Short intervals throughout.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const H = suite('e2e health checks');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-health-'));
const root = path.join(tmp, 'root');
let reg: TestRegistry;
let BASE = '';

const cli = (args: string[]) => tsrun(args, { root });
const inspect = async (name: string, f: string) => (await cli(['inspect', '-f', f, name])).stdout.trim();
const health = async (name: string) =>
  JSON.parse((await inspect(name, '{{json .State.Health}}')) || 'null') as {
    Status: string;
    FailingStreak: number;
    Log: { Start: string; End: string; ExitCode: number; Output: string }[];
  } | null;
const psNames = async (...filters: string[]) =>
  (await cli(['ps', '-a', '--format', '{{.Names}}', ...filters.flatMap((f) => ['--filter', f])])).stdout
    .split('\n')
    .filter(Boolean)
    .sort();

/** Host processes whose command line contains `text` (NUL-separated args joined by spaces). */
function processes(text: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmd.includes(text)) out.push(`${pid} ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

H.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/health', 'latest', { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
  BASE = `${reg.host}/e2e/health`;
  const ctx = path.join(tmp, 'ctx');
  mkdirSync(ctx);
  writeFileSync(
    path.join(ctx, 'Dockerfile'),
    `FROM ${BASE}\nHEALTHCHECK --interval=400ms --timeout=2s --retries=30 CMD cat /tmp/ok\nCMD ["sleep", "60"]\n`,
  );
  const b = await cli(['build', '-q', '-t', 'healthy-app', ctx]);
  assert.is(b.code, 0, b.stderr + b.stdout);
});
H.after(async () => {
  const ps = await cli(['ps', '-aq', '--no-trunc']);
  for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id]);
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

H('image HEALTHCHECK: starting, then healthy; inspect, ps column, --format, filter, events', async () => {
  const cfg = JSON.parse(
    await (async () => (await cli(['image', 'inspect', '-f', '{{json .Config.Healthcheck}}', 'healthy-app'])).stdout)(),
  );
  assert.equal(cfg, { Test: ['CMD-SHELL', 'cat /tmp/ok'], Interval: 400e6, Timeout: 2e9, Retries: 30 });
  const r = await cli(['run', '-d', '--network', 'none', '--name', 'web', 'healthy-app']);
  assert.is(r.code, 0, r.stderr);
  assert.is((await health('web'))?.Status, 'starting');
  assert.match(
    (await cli(['ps', '--format', '{{.Status}}', '--filter', 'name=web'])).stdout,
    /^Up .* \(health: starting\)\n$/,
  );
  assert.equal(await psNames('health=starting'), ['web']);
  assert.equal(await inspect('web', '{{json .Config.Healthcheck}}'), JSON.stringify(cfg));
  // Healthy once the file is there: made by the test after it has seen "starting" and a failed
  // probe (made by the container after 1.5 s, it came before `ps` beside CPU hogs).
  await eventually('a failed probe', async () => ((await health('web'))?.Log.length ?? 0) > 0, 30_000);
  assert.is((await cli(['exec', 'web', 'sh', '-c', 'echo ok > /tmp/ok'])).code, 0);
  await eventually('healthy', async () => (await health('web'))?.Status === 'healthy', 30_000);
  const h = await health('web');
  assert.is(h?.FailingStreak, 0);
  const last = h?.Log.at(-1);
  assert.is(last?.ExitCode, 0);
  assert.is(last?.Output, 'ok\n');
  assert.ok(Date.parse(last?.End ?? '') >= Date.parse(last?.Start ?? ''), 'End is after Start');
  // Failures before the file existed were counted, but fewer than the retries.
  assert.ok(
    h?.Log.some((l) => l.ExitCode === 1 && /No such file/.test(l.Output)),
    JSON.stringify(h?.Log),
  );
  const ps = await cli(['ps', '--filter', 'name=web']);
  assert.match(ps.stdout, /Up \d+ seconds? \(healthy\)/);
  assert.match((await cli(['ps', '--format', '{{.Status}}', '--filter', 'name=web'])).stdout, /^Up .* \(healthy\)\n$/);
  assert.equal(await psNames('health=healthy'), ['web']);
  assert.equal(await psNames('health=unhealthy'), []);
  const ev = await cli([
    'events',
    '--since',
    '5m',
    '--until',
    '0s',
    '--filter',
    'container=web',
    '--format',
    '{{.Action}}',
  ]);
  assert.match(ev.stdout, /^health_status: healthy$/m);
  // By hand: healthy is exit 0 and silent.
  const hc = await cli(['healthcheck', 'run', 'web']);
  assert.equal([hc.code, hc.stdout, hc.stderr], [0, '', '']);
});

H(
  'a failing check: unhealthy after --health-retries, FailingStreak, the last 5 results; healthcheck run says so',
  async () => {
    const r = await cli([
      'run',
      '-d',
      '--network',
      'none',
      '--name',
      'sick',
      '--health-cmd',
      'echo bad; echo worse >&2; exit 3',
      '--health-interval',
      '100ms',
      '--health-retries',
      '2',
      BASE,
      'sleep',
      '60',
    ]);
    assert.is(r.code, 0, r.stderr);
    await eventually('unhealthy', async () => (await health('sick'))?.Status === 'unhealthy', 30_000);
    assert.ok(((await health('sick'))?.FailingStreak ?? 0) >= 2);
    await eventually('6 failures', async () => ((await health('sick'))?.FailingStreak ?? 0) >= 6, 30_000);
    const h = await health('sick');
    assert.is(h?.Log.length, 5);
    // stdout and stderr in one pipe, in the order written.
    assert.equal(h?.Log[0] && { code: h.Log[0].ExitCode, out: h.Log[0].Output }, { code: 3, out: 'bad\nworse\n' });
    assert.match(
      (await cli(['ps', '--format', '{{.Status}}', '--filter', 'name=sick'])).stdout,
      /^Up .* \(unhealthy\)\n$/,
    );
    assert.equal(await psNames('health=unhealthy'), ['sick']);
    const hc = await cli(['healthcheck', 'run', 'sick']);
    assert.equal([hc.code, hc.stdout], [1, 'unhealthy\n']);
    await cli(['rm', '-f', 'sick']);
  },
);

H('output is kept to 4096 bytes; a check that floods it does not hold the monitor up', async () => {
  const r = await cli([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    'flood',
    '--health-cmd',
    'yes abcdefgh | head -c 10000000; exit 0',
    '--health-interval',
    '200ms',
    '--health-timeout',
    '5s',
    BASE,
    'sleep',
    '60',
  ]);
  assert.is(r.code, 0, r.stderr);
  await eventually('healthy', async () => (await health('flood'))?.Status === 'healthy', 15_000);
  const out = (await health('flood'))?.Log.at(-1)?.Output ?? '';
  assert.is(out.length, 4096 + 3);
  assert.ok(out.endsWith('abcdefgh\nabc...') || out.endsWith('...'), out.slice(-20));
  // The container's own output still flows (the monitor is not stuck in the probe).
  const ex = await cli(['exec', 'flood', 'echo', 'alive']);
  assert.is(ex.stdout, 'alive\n');
  await cli(['rm', '-f', 'flood']);
  // A check that leaves a child writing to its output: the probe ends with the runtime's exit,
  // the pipe is closed, and the child dies of EPIPE instead of piling up.
  const fork = await cli([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    'forker',
    '--health-cmd',
    'yes forked-flood & exit 0',
    '--health-interval',
    '100ms',
    BASE,
    'sleep',
    '60',
  ]);
  assert.is(fork.code, 0, fork.stderr);
  await eventually('healthy', async () => (await health('forker'))?.Status === 'healthy', 30_000);
  await eventually('3 probes', async () => ((await health('forker'))?.Log.length ?? 0) >= 3, 30_000);
  assert.ok(processes('yes forked-flood').length <= 1, processes('yes forked-flood').join('\n'));
  await cli(['rm', '-f', 'forker']);
});

H("timeout: a hanging check is killed at --health-timeout, ExitCode -1 and Docker's message", async () => {
  const r = await cli([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    'hang',
    '--health-cmd',
    'sleep 3131',
    '--health-interval',
    '100ms',
    '--health-timeout',
    '300ms',
    '--health-retries',
    '1',
    BASE,
    'sleep',
    '60',
  ]);
  assert.is(r.code, 0, r.stderr);
  await eventually('unhealthy', async () => (await health('hang'))?.Status === 'unhealthy', 30_000);
  const last = (await health('hang'))?.Log.at(-1);
  assert.equal([last?.ExitCode, last?.Output], [-1, 'Health check exceeded timeout (300ms)']);
  const ms = Date.parse(last?.End ?? '') - Date.parse(last?.Start ?? '');
  // Killed at its timeout, not run to its end (an hour): the bound leaves room for CPU hogs.
  assert.ok(ms >= 290 && ms < 10_000, `the probe ran ${ms} ms`);
  // Killed probes do not pile up: the one running now, at most one more on its way out (a loaded
  // machine reaps a killed probe a little late), sampled over a second.
  const seen: string[][] = [];
  for (let i = 0; i < 5; i++, await new Promise((r) => setTimeout(r, 200))) seen.push(processes('sleep 3131'));
  assert.ok(Math.max(...seen.map((p) => p.length)) <= 2, seen.map((p) => p.join(' ')).join('\n'));
  assert.ok(Math.min(...seen.map((p) => p.length)) <= 1, seen.map((p) => p.join(' ')).join('\n'));
});

H('start period: failures do not count while starting within it, then they do', async () => {
  const r = await cli([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    'slow',
    '--health-cmd',
    'exit 1',
    '--health-interval',
    '100ms',
    '--health-retries',
    '1',
    '--health-start-period',
    '6s',
    '--health-start-interval',
    '100ms',
    BASE,
    'sleep',
    '60',
  ]);
  assert.is(r.code, 0, r.stderr);
  await eventually('probes ran', async () => ((await health('slow'))?.Log.length ?? 0) >= 3, 30_000);
  const early = await health('slow');
  assert.equal([early?.Status, early?.FailingStreak], ['starting', 0]);
  await eventually('unhealthy', async () => (await health('slow'))?.Status === 'unhealthy', 30_000);
  await cli(['rm', '-f', 'slow']);
});

H('--no-healthcheck and flags over the image: merge as Docker does', async () => {
  const none = await cli(['run', '-d', '--network', 'none', '--name', 'nocheck', '--no-healthcheck', 'healthy-app']);
  assert.is(none.code, 0, none.stderr);
  assert.is(
    await inspect('nocheck', '{{if .State.Health}}has{{else}}none{{end}} {{json .Config.Healthcheck.Test}}'),
    'none ["NONE"]',
  );
  assert.match((await cli(['ps', '--format', '{{.Status}}', '--filter', 'name=nocheck'])).stdout, /^Up [^(]*\n$/);
  assert.ok((await psNames('health=none')).includes('nocheck'));
  // No probe runs: no health state, no process file in the monitor's state.
  const id = await inspect('nocheck', '{{.Id}}');
  assert.equal(
    readdirSync(path.join(runDir(root), id)).filter((n) => n.startsWith('health')),
    [],
  );
  const hc = await cli(['healthcheck', 'run', 'nocheck']);
  assert.is(hc.code, 125);
  assert.match(hc.stderr, /has no defined healthcheck/);
  // --health-retries alone keeps the image's command; --health-cmd replaces it.
  const over = await cli([
    'create',
    '--name',
    'over',
    '--health-retries',
    '7',
    '--health-interval',
    '1m30s',
    'healthy-app',
  ]);
  assert.is(over.code, 0, over.stderr);
  assert.equal(JSON.parse(await inspect('over', '{{json .Config.Healthcheck}}')), {
    Test: ['CMD-SHELL', 'cat /tmp/ok'],
    Interval: 90e9,
    Timeout: 2e9,
    Retries: 7,
  });
  assert.is(await inspect('over', '{{if .State.Health}}has{{else}}none{{end}}'), 'none', 'created, never started');
  const cmd = await cli(['create', '--name', 'cmd', '--health-cmd', 'true', 'healthy-app']);
  assert.is(cmd.code, 0, cmd.stderr);
  assert.equal(JSON.parse(await inspect('cmd', '{{json .Config.Healthcheck.Test}}')), ['CMD-SHELL', 'true']);
  for (const n of ['nocheck', 'over', 'cmd']) await cli(['rm', '-f', n]);
});

H("flag errors are Docker's, exit 125, and make nothing", async () => {
  const cases: [string[], RegExp][] = [
    [['--health-interval', '-1s'], /--health-interval cannot be negative/],
    [['--health-timeout', '500us'], /Timeout in Healthcheck cannot be less than 1ms/],
    [['--health-retries', '-2'], /--health-retries cannot be negative/],
    [['--no-healthcheck', '--health-cmd', 'true'], /--no-healthcheck conflicts with --health-\* options/],
    [
      ['--health-interval', '5'],
      /invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"/,
    ],
    [['--health-retries', 'x'], /invalid argument "x" for "--health-retries" flag: strconv.ParseInt/],
  ];
  for (const [flags, msg] of cases) {
    const r = await cli(['run', '--rm', ...flags, BASE, 'true']);
    assert.is(r.code, 125, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  assert.is((await cli(['ps', '-aq', '--filter', 'name=never'])).stdout, '');
});

H('healthcheck run: missing, stopped; a stopped container keeps its Log, unhealthy (Docker)', async () => {
  const missing = await cli(['healthcheck', 'run', 'nosuch']);
  assert.is(missing.code, 125);
  assert.match(missing.stderr, /no such container: nosuch/i);
  await cli(['stop', '-t', '0', 'web']);
  const stopped = await cli(['healthcheck', 'run', 'web']);
  assert.is(stopped.code, 125);
  assert.match(stopped.stderr, /Container [0-9a-f]{12} is not running/);
  const h = await health('web');
  assert.is(h?.Status, 'unhealthy');
  assert.ok((h?.Log.length ?? 0) > 0);
  assert.equal(await psNames('health=unhealthy'), ['hang', 'web']);
});

H('leftovers: rm -f while a probe runs leaves no probe, runtime exec or state', async () => {
  const r = await cli([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    'busy',
    '--health-cmd',
    'sleep 3132',
    '--health-interval',
    '50ms',
    '--health-timeout',
    '30s',
    BASE,
    'sleep',
    '60',
  ]);
  assert.is(r.code, 0, r.stderr);
  await eventually('a probe runs', async () => processes('sleep 3132').length > 0, 30_000);
  const rm = await cli(['rm', '-f', 'busy', 'hang', 'web']);
  assert.is(rm.code, 0, rm.stderr);
  await eventually(
    'no probe left',
    async () => processes('sleep 313').length === 0 && processes('health-process.json').length === 0,
    30_000,
  );
  assert.equal(await leftovers(root), []);
});

H.run();
