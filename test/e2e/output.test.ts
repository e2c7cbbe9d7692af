/**
 * End to end: output that reaches its reader whole, and the attached sessions around it
 * (issue 23 bug 1 and 2, its TTY items; issue 22's exec -d and attach).
 *
 * Every byte a container writes must reach a slow pipe reader before tsrun exits: `run`
 * (stdout, stderr, -t), `logs`, `logs -f` and `exec` write several MB into `| (sleep 2;
 * sha256sum)`, compared with the same data made on the host. `exec -u` gets exactly the named
 * user's groups (/proc/self/status), `exec -d` returns at once and its process is the monitor's
 * child, and the TTY rules and detach keys are checked in real terminals made by script(1).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, spawnTsrun, tsrun } from './cli.js';
import { eventually, leftovers as leftoversIn, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-output-'));
const root = path.join(tmp, 'root');
let IMAGE = '';
const LINES = 500_000; // `seq 1 500000`: 3.9 MB
let SEQ_SUM = '';

const Out = suite('e2e output');

Out.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest', { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
  IMAGE = `${reg.host}/e2e/busybox`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
  SEQ_SUM = (await execa('sh', ['-c', `seq 1 ${LINES} | sha256sum`])).stdout;
});
Out.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const cli = (args: string[]) => [BIN, '--root', root, ...args].map(q).join(' ');

/** `tsrun ARGS | (sleep 2; sha256sum)` (stderr instead with `stream: 'stderr'`); the checksum and tsrun's status. */
async function slowRead(
  args: string[],
  o: { stream?: 'stdout' | 'stderr'; stripCr?: boolean } = {},
): Promise<{ sum: string; code: number }> {
  const redirect = o.stream === 'stderr' ? '2>&1 >/dev/null' : '';
  const filter = o.stripCr ? "tr -d '\\r' | " : '';
  const r = await execa('bash', ['-c', `set -o pipefail; ${cli(args)} ${redirect} | (sleep 2; ${filter}sha256sum)`], {
    reject: false,
  });
  return { sum: String(r.stdout), code: r.exitCode ?? -1 };
}

const seq = `seq 1 ${LINES}`;

Out('run: stdout, stderr and -t reach a slow reader whole', async () => {
  assert.equal(await slowRead(['run', '--rm', IMAGE, 'sh', '-c', seq]), { sum: SEQ_SUM, code: 0 });
  assert.equal(await slowRead(['run', '--rm', IMAGE, 'sh', '-c', `${seq} >&2`], { stream: 'stderr' }), {
    sum: SEQ_SUM,
    code: 0,
  });
  assert.equal(await slowRead(['run', '--rm', '-t', IMAGE, 'sh', '-c', seq], { stripCr: true }), {
    sum: SEQ_SUM,
    code: 0,
  });
  // The exit status still is the container's.
  assert.equal((await slowRead(['run', '--rm', IMAGE, 'sh', '-c', `${seq}; exit 3`])).code, 3);
  assert.equal(await leftoversIn(root), []);
});

Out(
  'a reader that goes away: stdout is 141 and the monitor still removes the container; stderr only goes quiet',
  async () => {
    // `| head -1` on the container's output: tsrun dies as a Go CLI does of SIGPIPE; the started
    // container runs to its end under its monitor, which removes it (--rm), as Docker's daemon would.
    const out = await execa('bash', ['-c', `${cli(['run', '--rm', IMAGE, 'sh', '-c', `${seq}; sleep 1`])} | head -1`], {
      reject: false,
    });
    assert.is(out.stdout, '1');
    await eventually('the monitor removes the container', async () => (await leftoversIn(root)).length === 0);
    // --explain writes most between create and start; its reader leaving there left a created
    // container, its mount and its netns behind (seen as a newcomer piping it into head).
    const args = ['run', '--explain', '--rm', IMAGE, 'echo', 'hi'];
    const err = await execa('bash', ['-c', `set -o pipefail; ${cli(args)} 2>&1 >/dev/null | head -1`], {
      reject: false,
    });
    assert.match(String(err.stdout), /^\[1\/8\] Image/);
    assert.equal(await leftoversIn(root), []);
    const status = await execa('bash', [
      '-c',
      `${cli(args)} 2>&1 >/dev/null | head -1 >/dev/null; echo \${PIPESTATUS[0]}`,
    ]);
    assert.is(status.stdout, '0');
    assert.equal(await leftoversIn(root), []);
  },
);

Out('logs and logs -f reach a slow reader whole', async () => {
  assert.is((await tsrun(['run', '--name', 'lg', IMAGE, 'sh', '-c', seq], { root })).code, 0);
  assert.equal(await slowRead(['logs', 'lg']), { sum: SEQ_SUM, code: 0 });
  assert.equal(await slowRead(['logs', '-f', 'lg']), { sum: SEQ_SUM, code: 0 });
  // -f on a running container: follows it to its end.
  assert.is(
    (await tsrun(['run', '-d', '--name', 'lgf', IMAGE, 'sh', '-c', `sleep 0.5; ${seq}; sleep 0.5`], { root })).code,
    0,
  );
  assert.equal(await slowRead(['logs', '-f', 'lgf']), { sum: SEQ_SUM, code: 0 });
  for (const n of ['lg', 'lgf']) assert.is((await tsrun(['rm', '-f', n], { root })).code, 0);
});

Out('exec: stdout, stderr and -t reach a slow reader whole; exit status; no terminal needed for -t', async () => {
  assert.is((await tsrun(['run', '-d', '--name', 'ex', IMAGE, 'sleep', '1000'], { root })).code, 0);
  assert.equal(await slowRead(['exec', 'ex', 'sh', '-c', seq]), { sum: SEQ_SUM, code: 0 });
  assert.equal(await slowRead(['exec', 'ex', 'sh', '-c', `${seq} >&2`], { stream: 'stderr' }), {
    sum: SEQ_SUM,
    code: 0,
  });
  assert.equal(await slowRead(['exec', '-t', 'ex', 'sh', '-c', seq], { stripCr: true }), { sum: SEQ_SUM, code: 0 });
  const split = await tsrun(['exec', 'ex', 'sh', '-c', 'echo out; echo err >&2; exit 5'], { root });
  assert.equal([split.stdout, split.stderr, split.code], ['out\n', 'err\n', 5]);
  // -t without a controlling terminal (the test runner has none): a pty, and TERM as run -t sets it.
  const t = await tsrun(['exec', '-t', 'ex', 'sh', '-c', 'echo $TERM; tty'], { root });
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stdout, /^xterm\r\n\/dev\/pts\/\d+\r\n$/);
  const i = await tsrun(['exec', '-i', 'ex', 'cat'], { root, input: 'piped\n' });
  assert.is(i.stdout, 'piped\n');
  const nf = await tsrun(['exec', 'ex', 'no-such-command'], { root });
  assert.is(nf.code, 127);
  assert.match(nf.stderr, /no-such-command/);
  assert.is((await tsrun(['rm', '-f', 'ex'], { root })).code, 0);
  await eventually('nothing is left', async () => (await leftoversIn(root)).length === 0);
});

const groups = (status: string) => /^Groups:\s*(.*)$/m.exec(status)?.[1]?.trim();

Out("exec -u gets that user's supplementary groups from the container's /etc/group, not the container's", async () => {
  // The container runs as app, a member of staff (50).
  assert.is((await tsrun(['run', '-d', '--name', 'grp', '-u', 'app', IMAGE, 'sleep', '1000'], { root })).code, 0);
  const status = async (args: string[]) => {
    const r = await tsrun(['exec', ...args, 'grp', 'cat', '/proc/self/status'], { root });
    assert.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  // The kernel lists them sorted; the primary gid is among them, as with run -u.
  assert.is(groups(await status([])), '50 1000');
  assert.is(groups(await status(['-u', 'nobody'])), '65534');
  const asRoot = await status(['-u', 'root']);
  assert.is(groups(asRoot), '0');
  assert.match(asRoot, /^Uid:\s+0\s/m);
  assert.is(groups(await status(['-u', 'app'])), '50 1000');
  // An explicit group means no supplementary ones (as run -u).
  assert.is(groups(await status(['-u', 'app:app'])), '1000');
  // What run -u gives the same users.
  for (const [u, want] of [
    ['nobody', '65534'],
    ['root', '0'],
  ]) {
    assert.is(
      groups((await tsrun(['run', '--rm', '-u', u as string, IMAGE, 'cat', '/proc/self/status'], { root })).stdout),
      want,
    );
  }
  const home = await tsrun(['exec', '-u', 'root', 'grp', 'sh', '-c', 'echo $HOME'], { root });
  assert.is(home.stdout, '/root\n');
  assert.is((await tsrun(['rm', '-f', 'grp'], { root })).code, 0);
});

Out("exec -d returns at once, holds no stdout, and its process is the monitor's; -e =x and --env-file", async () => {
  assert.is((await tsrun(['run', '-d', '--name', 'xd', IMAGE, 'sleep', '1000'], { root })).code, 0);
  const t0 = Date.now();
  const r = await execa('bash', ['-c', `out=$(${cli(['exec', '-d', 'xd', 'sleep', '8.321'])}); echo "[$out]"`]);
  assert.ok(Date.now() - t0 < 4000, `exec -d inside $(…) took ${Date.now() - t0} ms`);
  assert.is(r.stdout, '[]');
  let pid = '';
  await eventually('the detached process runs', async () => {
    pid = String((await execa('pgrep', ['-f', '^sleep 8.321$'], { reject: false })).stdout).trim();
    return pid !== '';
  });
  const ppid = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1];
  assert.is(readFileSync(`/proc/${ppid}/comm`, 'utf8').trim(), 'tsrun-monitor');

  const bad = await tsrun(['exec', '-e', '=x', 'xd', 'true'], { root });
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /invalid environment variable: =x/);
  writeFileSync(path.join(tmp, 'vars.env'), '# comment\nA=1\nB\n');
  const ef = await execa(
    BIN,
    ['--root', root, 'exec', '--env-file', 'vars.env', '-e', 'C=3', 'xd', 'sh', '-c', 'echo $A $B $C'],
    { cwd: tmp, env: { B: 'from-caller' }, reject: false },
  );
  assert.is(ef.stdout, '1 from-caller 3', String(ef.stderr));
  assert.is((await tsrun(['rm', '-f', 'xd'], { root })).code, 0);
  // The killed session's monitor removes its state.
  let left: string[] = [];
  await eventually('nothing is left', async () => (left = await leftoversIn(root)).length === 0).catch((e: Error) => {
    throw new Error(`${e.message}: ${left.join(', ')}`);
  });
});

Out('logs --tail 0, --since, --until, --details', async () => {
  // The last line stays unfinished while the container runs (its monitor ends it at the exit).
  const d = await tsrun(
    ['run', '-d', '--name', 'tl', IMAGE, 'sh', '-c', 'echo one; sleep 1.2; printf two; sleep 1000'],
    { root },
  );
  assert.is(d.code, 0, d.stderr);
  await eventually('both lines are logged', async () => (await tsrun(['logs', 'tl'], { root })).stdout === 'one\ntwo');
  assert.is((await tsrun(['logs', '--tail', '0', 'tl'], { root })).stdout, '');
  assert.is((await tsrun(['logs', '--tail', '1', 'tl'], { root })).stdout, 'two');
  const stamped = (await tsrun(['logs', '-t', 'tl'], { root })).stdout
    .split('\n')
    .map((l) => l.split(' ')[0] as string);
  const [t1, t2] = stamped;
  assert.ok(t1 && t2);
  assert.is((await tsrun(['logs', '--since', t2, 'tl'], { root })).stdout, 'two');
  assert.is((await tsrun(['logs', '--until', t1, 'tl'], { root })).stdout, 'one\n');
  assert.is((await tsrun(['logs', '--since', '10m', 'tl'], { root })).stdout, 'one\ntwo');
  const unix = String(Math.floor(Date.parse(t2) / 1000) + 60);
  assert.is((await tsrun(['logs', '--since', unix, 'tl'], { root })).stdout, '');
  assert.is((await tsrun(['logs', '--details', 'tl'], { root })).stdout, ' one\n two');
  const bad = await tsrun(['logs', '--since', 'yesterday', 'tl'], { root });
  assert.is.not(bad.code, 0);
  assert.match(bad.stderr, /invalid value for "since"/);
  assert.is((await tsrun(['rm', '-f', 'tl'], { root })).code, 0);
});

/** Run `tsrun ARGS` in a terminal made by script(1), typing `keys` (each after its delay in seconds). */
async function inTerminal(args: string[], keys: [number, string][]): Promise<{ code: number; out: string }> {
  const child = execa('script', ['-qefc', cli(args), '/dev/null'], { reject: false, timeout: 60_000, stdin: 'pipe' });
  void (async () => {
    for (const [delay, k] of keys) {
      await new Promise((r) => setTimeout(r, delay * 1000));
      if (child.exitCode !== null) return;
      child.stdin?.write(k);
    }
  })();
  const r = await child;
  return { code: r.exitCode ?? -1, out: String(r.stdout) };
}

Out(
  'TTYs: -it needs a terminal only when attached; detach keys for run -it, attach and start -ai; attach',
  async () => {
    const notTty = await tsrun(['run', '--rm', '-it', IMAGE, 'true'], { root });
    assert.is(notTty.code, 1);
    assert.match(notTty.stderr, /the input device is not a TTY/);
    const dit = await tsrun(['run', '-dit', '--name', 'dit', IMAGE, 'sh'], { root });
    assert.is(dit.code, 0, dit.stderr);
    const execNotTty = await tsrun(['exec', '-it', 'dit', 'true'], { root });
    assert.is(execNotTty.code, 1);
    assert.match(execNotTty.stderr, /the input device is not a TTY/);
    const execIt = await inTerminal(['exec', '-it', 'dit', 'sh', '-c', 'tty; exit 4'], []);
    assert.is(execIt.code, 4, execIt.out);
    assert.match(execIt.out, /\/dev\/pts\/\d+/);

    // run -it, then Ctrl-P Ctrl-Q: tsrun exits 0 and the container goes on.
    const running = async (n: string) =>
      (await tsrun(['ps', '--format', '{{.Names}}'], { root })).stdout.split('\n').includes(n);
    const ran = await inTerminal(
      ['run', '-it', '--name', 'dk', IMAGE, 'sh'],
      [
        [1.5, 'echo marker-$((6*7))\r'],
        [1, '\x10\x11'],
      ],
    );
    assert.is(ran.code, 0, ran.out);
    assert.match(ran.out, /marker-42/);
    assert.ok(await running('dk'), 'the container runs on after the detach keys');

    // attach: its output and its exit status; the keys detach with Docker's message and status 1.
    const det = await inTerminal(['attach', 'dk'], [[1, '\x10\x11']]);
    assert.is(det.code, 1, det.out);
    assert.match(det.out, /read escape sequence/);
    assert.ok(await running('dk'));
    const custom = await inTerminal(
      ['attach', '--detach-keys', 'ctrl-x,y', 'dk'],
      [
        [1, '\x10\x11echo still-$((2*3))\r'],
        [1, '\x18y'],
      ],
    );
    assert.is(custom.code, 1, custom.out);
    assert.match(custom.out, /still-6/);
    const att = await inTerminal(
      ['attach', 'dk'],
      [
        [1, 'echo via-attach-$((1+1))\r'],
        [0.5, 'exit 7\r'],
      ],
    );
    assert.is(att.code, 7, att.out);
    assert.match(att.out, /via-attach-2/);
    await eventually('the container stopped', async () => !(await running('dk')));
    const stopped = await tsrun(['attach', 'dk'], { root });
    assert.is(stopped.code, 1);
    assert.match(stopped.stderr, /You cannot attach to a stopped container, start it first/);

    // start -ai: the keys detach too.
    const st = await inTerminal(['start', '-ai', 'dk'], [[1.5, '\x10\x11']]);
    assert.is(st.code, 0, st.out);
    assert.ok(await running('dk'));
    for (const n of ['dk', 'dit']) assert.is((await tsrun(['rm', '-f', n], { root })).code, 0);
    await eventually('nothing is left', async () => (await leftoversIn(root)).length === 0);
    assert.equal(
      readdirSync(runDir(root)).filter((n) => n.startsWith('exec-')),
      [],
    );
  },
);

Out('attach: stdin unless --no-stdin; signals forwarded unless --no-sig-proxy', async () => {
  assert.is((await tsrun(['run', '-di', '--name', 'cat', IMAGE, 'sh', '-c', 'cat; exit 6'], { root })).code, 0);
  // --no-stdin: our stdin stays ours (its end does not end the container's).
  const ro = spawnTsrun(['attach', '--no-stdin', '--no-sig-proxy', 'cat'], { root });
  await new Promise((r) => setTimeout(r, 1000));
  ro.kill('SIGTERM');
  assert.is((await ro).signal, 'SIGTERM');
  const piped = await tsrun(['attach', 'cat'], { root, input: 'to the container\n' });
  assert.equal([piped.stdout, piped.code], ['to the container\n', 6]);

  const script = 'trap "echo got-term; exit 9" TERM; while :; do echo tick; sleep 0.2; done';
  assert.is((await tsrun(['run', '-d', '--name', 'sig', IMAGE, 'sh', '-c', script], { root })).code, 0);
  const a = spawnTsrun(['attach', 'sig'], { root });
  // Attached once a tick arrives.
  await new Promise<void>((resolve) => a.stdout?.once('data', () => resolve()));
  a.kill('SIGTERM');
  const r = await a;
  assert.is(r.exitCode, 9);
  assert.match(String(r.stdout), /tick\ngot-term\n$/);
  for (const n of ['cat', 'sig']) assert.is((await tsrun(['rm', '-f', n], { root })).code, 0);
});

Out.run();
