/**
 * End to end: the real CLI runs containers with real runc from an image pulled from a real
 * registry. What is checked is what Docker documents for each flag, and that `--rm` and failed
 * runs leave nothing behind (no record, mount, runtime state or monitor state).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, spawnTsrun, tsrun } from './cli.js';
import { eventually, leftovers as leftoversIn, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-run-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const Run = suite('e2e run');

Run.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest', {
    Cmd: ['sh'],
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=yes'],
    WorkingDir: '/srv/app',
  });
  IMAGE = `${reg.host}/e2e/busybox`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
Run.after(async () => {
  // Whatever a failed test left running must not outlive the suite.
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  for (const r of [root, path.join(tmp, 'other-root')]) rmSync(runDir(r), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const run = (args: string[], input?: string) => tsrun(['run', ...args], { root, input });
const leftovers = (r = root) => leftoversIn(r);

Run('run --rm: output, exit code and nothing left behind', async () => {
  const r = await run(['--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  assert.is(r.code, 7);
  assert.equal(await leftovers(), []);
});

Run('exit codes: 127 not found, 126 not executable, 125 our own errors, 128+n for a signal', async () => {
  const nf = await run(['--rm', IMAGE, 'no-such-command']);
  assert.is(nf.code, 127, nf.stderr);
  assert.match(nf.stderr, /no-such-command/);
  const ne = await run(['--rm', IMAGE, '/etc/passwd']);
  assert.is(ne.code, 126, ne.stderr);
  const bad = await run(['--rm', '--memory', 'lots', IMAGE, 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /invalid size: 'lots'/);
  const missing = await run(['--rm', '--pull', 'never', 'no-such-image:1', 'true']);
  assert.is(missing.code, 125);
  const noRuntime = await run(['--runtime', 'no-such-runtime', IMAGE, 'true']);
  assert.is(noRuntime.code, 125);
  assert.match(noRuntime.stderr, /finding the OCI runtime "no-such-runtime"/);
  // Without --rm a container that could not start stays, as Docker's does: Created, never run.
  const kept = await run(['--name', 'failed', IMAGE, 'no-such-command']);
  assert.is(kept.code, 127);
  assert.match((await tsrun(['ps', '-a', '--format', '{{.Names}} {{.Status}}'], { root })).stdout, /^failed Created\n/);
  assert.is((await tsrun(['rm', 'failed'], { root })).code, 0);
  // The init of a pid namespace ignores signals from inside it, so the kill comes from outside.
  const attached = spawnTsrun(['run', '--rm', '--name', 'killme', IMAGE, 'sleep', '30'], { root });
  await eventually('the container runs', async () => (await tsrun(['ps', '-q'], { root })).stdout !== '');
  assert.is((await tsrun(['kill', 'killme'], { root })).code, 0);
  assert.is((await attached).exitCode, 137);
  assert.equal(await leftovers(), []);
});

Run(
  'image config and flags: ENV, -e, -u (passwd and groups), -w, WORKDIR created, --hostname, /etc files',
  async () => {
    const script =
      'echo "$FROM_IMAGE $FOO $HOME"; id; pwd; hostname; cat /etc/hostname; grep -c localhost /etc/hosts; ls -d /srv/app';
    const r = await run(['--rm', '-e', 'FOO=bar', '-u', 'app', '--hostname', 'box', IMAGE, 'sh', '-c', script]);
    assert.is(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.is(lines[0], 'yes bar /home/app');
    // setgroups(2) sorts the list; busybox id prints it in that order.
    assert.is(lines[1], 'uid=1000(app) gid=1000(app) groups=50(staff),1000(app)');
    assert.is(lines[2], '/srv/app', 'WORKDIR is the cwd, created although the image lacks it');
    assert.is(lines[3], 'box');
    assert.is(lines[4], 'box');
    assert.ok(Number(lines[5]) >= 1);
    const w = await run(['--rm', '-w', '/made/by/w', IMAGE, 'pwd']);
    assert.is(w.stdout, '/made/by/w\n');
    const entry = await run(['--rm', '--entrypoint', 'echo', IMAGE, 'a', 'b']);
    assert.is(entry.stdout, 'a b\n');
  },
);

Run('the container gets only stdio: no descriptor of tsrun, the monitor or runc leaks in', async () => {
  // sh stays pid 1 (the trailing true keeps it from exec'ing ls).
  const r = await run(['--rm', IMAGE, 'sh', '-c', 'ls /proc/1/fd; true']);
  assert.is(r.stdout, '0\n1\n2\n');
});

Run('-i passes stdin; without -i the container gets none', async () => {
  const r = await run(['--rm', '-i', IMAGE, 'sh', '-c', 'cat; echo done'], 'line one\nline two\n');
  assert.is(r.stdout, 'line one\nline two\ndone\n');
  const n = await run(['--rm', IMAGE, 'sh', '-c', 'cat; echo done'], 'ignored\n');
  assert.is(n.stdout, 'done\n');
});

Run('-t gives a real terminal (run under script(1))', async () => {
  const cmd = `${BIN} --root ${root} run --rm -t ${IMAGE} sh -c 'tty; stty size'`;
  const r = await execa('script', ['-qec', cmd, '/dev/null'], { reject: false, env: { COLUMNS: '100', LINES: '30' } });
  assert.is(r.exitCode, 0, String(r.stdout));
  assert.match(String(r.stdout), /\/dev\/pts\/\d+/);
  assert.equal(await leftovers(), []);
});

Run('-v binds host paths (rw and ro); --read-only root', async () => {
  const host = path.join(tmp, 'vol');
  await fs.mkdir(host, { recursive: true });
  await fs.writeFile(path.join(host, 'in.txt'), 'from host\n');
  const r = await run([
    '--rm',
    '-v',
    `${host}:/data`,
    IMAGE,
    'sh',
    '-c',
    'cat /data/in.txt; echo from ctr > /data/out.txt',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'from host\n');
  assert.is(await fs.readFile(path.join(host, 'out.txt'), 'utf8'), 'from ctr\n');
  const ro = await run(['--rm', '-v', `${host}:/data:ro`, IMAGE, 'sh', '-c', 'echo x > /data/nope']);
  assert.is.not(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  const rr = await run(['--rm', '--read-only', IMAGE, 'sh', '-c', 'echo x > /x']);
  assert.is.not(rr.code, 0);
  assert.match(rr.stderr, /Read-only file system/);
});

Run('--memory, --pids-limit reach the cgroup', async () => {
  const r = await run([
    '--rm',
    '-m',
    '64m',
    '--pids-limit',
    '50',
    IMAGE,
    'sh',
    '-c',
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${64 * 1024 * 1024}\n50\n`);
});

Run('-d, ps, logs, exec, stop, start, wait, rm', async () => {
  // "started" once the trap is set: a TERM before it would meet pid 1's default (ignored).
  const script = 'trap "echo bye; exit 3" TERM; echo started; while true; do sleep 0.1; done';
  const d = await run(['-d', '--name', 'svc', '-e', 'FOO=bar', IMAGE, 'sh', '-c', script]);
  assert.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  assert.match(id, /^[a-f0-9]{64}$/);

  const ps = await tsrun(['ps'], { root });
  assert.match(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES/);
  assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}\\s+.*Up .*svc`));
  const names = await tsrun(['ps', '--format', '{{.Names}} {{.State}}'], { root });
  assert.is(names.stdout, 'svc running\n');

  await eventually('logs show "started"', async () => (await tsrun(['logs', 'svc'], { root })).stdout === 'started\n');
  const ex = await tsrun(['exec', 'svc', 'sh', '-c', 'echo $FOO; id -u'], { root });
  assert.is(ex.stdout, 'bar\n0\n');
  const exu = await tsrun(['exec', '-u', 'app', '-w', '/tmp', '-e', 'X=1', 'svc', 'sh', '-c', 'echo $X; id -un; pwd'], {
    root,
  });
  assert.is(exu.stdout, '1\napp\n/tmp\n');
  const exi = await tsrun(['exec', '-i', 'svc', 'cat'], { root, input: 'piped\n' });
  assert.is(exi.stdout, 'piped\n');
  const nf = await tsrun(['exec', 'svc', 'nope'], { root });
  assert.is(nf.code, 127);
  const ec = await tsrun(['exec', 'svc', 'sh', '-c', 'exit 5'], { root });
  assert.is(ec.code, 5);

  const rmRunning = await tsrun(['rm', 'svc'], { root });
  assert.is(rmRunning.code, 1);
  assert.match(rmRunning.stderr, /cannot remove a running container/);

  const stop = await tsrun(['stop', 'svc'], { root });
  assert.is(stop.code, 0, stop.stderr);
  assert.is(stop.stdout, 'svc\n');
  const ps2 = await tsrun(['ps', '-a', '--format', '{{.Status}}'], { root });
  assert.match(ps2.stdout, /^Exited \(3\) /);
  assert.is((await tsrun(['wait', 'svc'], { root })).stdout, '3\n');
  assert.is((await tsrun(['logs', 'svc'], { root })).stdout, 'started\nbye\n');
  assert.is((await tsrun(['logs', '--tail', '1', 'svc'], { root })).stdout, 'bye\n');
  assert.match((await tsrun(['logs', '-t', 'svc'], { root })).stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z started\n/);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.not.ok(mounts.includes(path.join(root, 'containers', id)), 'a stopped container is unmounted');

  const start = await tsrun(['start', 'svc'], { root });
  assert.is(start.code, 0, start.stderr);
  assert.match((await tsrun(['ps', '--format', '{{.Names}}'], { root })).stdout, /svc/);
  const inspect = await tsrun(['container', 'inspect', 'svc'], { root });
  const info = JSON.parse(inspect.stdout) as [{ Id: string; Name: string; State: { Running: boolean; Pid: number } }];
  assert.is(info[0].Id, id);
  assert.is(info[0].Name, '/svc');
  assert.ok(info[0].State.Running && info[0].State.Pid > 0);

  await eventually(
    'logs show the second "started"',
    async () => (await tsrun(['logs', 'svc'], { root })).stdout.endsWith('bye\nstarted\n'),
    30_000,
  );
  const kill = await tsrun(['kill', '-s', 'TERM', 'svc'], { root });
  assert.is(kill.code, 0, kill.stderr);
  assert.is((await tsrun(['wait', 'svc'], { root })).stdout, '3\n');
  const rm = await tsrun(['rm', 'svc'], { root });
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(await leftovers(), []);
});

Run('logs -f follows until the container exits; create + start -a; restart counts', async () => {
  const d = await run([
    '-d',
    '--name',
    'follow',
    IMAGE,
    'sh',
    '-c',
    'echo a; sleep 0.5; echo b >&2; sleep 0.3; echo c',
  ]);
  assert.is(d.code, 0, d.stderr);
  const f = await tsrun(['logs', '-f', 'follow'], { root });
  assert.is(f.code, 0);
  assert.is(f.stdout, 'a\nc\n');
  assert.is(f.stderr, 'b\n');
  assert.is((await tsrun(['rm', 'follow'], { root })).code, 0);

  const c = await tsrun(['create', '--name', 'later', IMAGE, 'sh', '-c', 'echo ran; exit 4'], { root });
  assert.is(c.code, 0, c.stderr);
  assert.match((await tsrun(['ps', '-a', '--format', '{{.Names}} {{.Status}}'], { root })).stdout, /^later Created\n/);
  const sa = await tsrun(['start', '-a', 'later'], { root });
  assert.is(sa.stdout, 'ran\n');
  assert.is(sa.code, 4);
  const rs = await tsrun(['restart', 'later'], { root });
  assert.is(rs.code, 0, rs.stderr);
  assert.is((await tsrun(['wait', 'later'], { root })).stdout, '4\n');
  assert.is((await tsrun(['logs', 'later'], { root })).stdout, 'ran\nran\n');
  assert.is((await tsrun(['rm', 'later'], { root })).code, 0);
  assert.equal(await leftovers(), []);
});

Run('--name is unique per store; names and ids never cross stores', async () => {
  const a = await run(['-d', '--name', 'dup', IMAGE, 'sleep', '30']);
  assert.is(a.code, 0, a.stderr);
  const b = await run(['--name', 'dup', IMAGE, 'true']);
  assert.is(b.code, 125);
  assert.match(b.stderr, /name "\/dup" is already in use/);
  const other = path.join(tmp, 'other-root');
  assert.is((await tsrun(['ps', '-aq'], { root: other })).stdout, '');
  assert.is((await tsrun(['rm', '-f', 'dup'], { root: other })).code, 1);
  const rm = await tsrun(['rm', '-f', 'dup'], { root });
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(await leftovers(), []);
});

Run('--rm cleans up when the CLI is SIGKILLed, and on SIGINT/SIGTERM forwarded to the container', async () => {
  // Long enough to be seen running by a `ps` on a loaded machine (two CPU hogs beside the suite).
  const killed = spawnTsrun(['run', '--rm', IMAGE, 'sh', '-c', 'sleep 4; echo finished'], { root });
  await eventually('the container runs', async () => (await tsrun(['ps', '-q'], { root })).stdout !== '', 30_000);
  killed.kill('SIGKILL');
  await killed;
  await eventually('nothing left after the monitor cleaned up', async () => (await leftovers()).length === 0, 30_000);

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const p = spawnTsrun(
      [
        'run',
        '--rm',
        IMAGE,
        'sh',
        '-c',
        'trap "echo got it; exit 42" INT TERM; echo trapped >&2; while true; do sleep 0.1; done',
      ],
      { root },
    );
    // Once the shell has set its trap (a fixed wait was too short beside CPU hogs: the signal
    // then met the shell's default action).
    let said = '';
    p.stderr?.on('data', (d: Buffer) => (said += d.toString()));
    await eventually('the trap is set', async () => Promise.resolve(said.includes('trapped')), 30_000);
    p.kill(sig);
    const r = await p;
    assert.is(r.exitCode, 42, `${sig}: ${String(r.stderr)}`);
    assert.is(String(r.stdout), 'got it\n');
    assert.equal(await leftovers(), []);
  }
});

Run('several run --rm at once', async () => {
  const rs = await Promise.all([1, 2, 3, 4].map((i) => run(['--rm', IMAGE, 'sh', '-c', `echo ${i}`])));
  rs.forEach((r, i) => {
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, `${i + 1}\n`);
  });
  assert.equal(await leftovers(), []);
});

Run('an attached run sees the first byte; run --rm returns once removed (its name is free at once)', async () => {
  // With no network to set up, the monitor creates and starts the container in one runtime call:
  // the CLI must be attached before it, or a command that writes and exits at once would lose
  // its output. On the bridge the CLI runs `runtime start` itself, after attaching.
  for (let i = 0; i < 6; i++) {
    const net = i % 2 ? 'bridge' : 'none';
    const cmd = `echo out ${i}; echo err ${i} >&2; exit ${i}`;
    const r = await run(['--rm', '--name', 'again', '--network', net, IMAGE, 'sh', '-c', cmd]);
    assert.is(r.code, i, r.stderr);
    assert.is(r.stdout, `out ${i}\n`);
    assert.is(r.stderr, `err ${i}\n`);
  }
  assert.equal(await leftovers(), []);
});

Run('started in one runtime call, a container seen exited has no runtime state left, and starts again', async () => {
  const d = await run(['-d', '--network', 'none', IMAGE, 'sh', '-c', 'echo ran']);
  assert.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  assert.is((await tsrun(['wait', id], { root })).stdout, '0\n');
  const l = await execa('runc', ['--root', path.join(runDir(root), 'runc'), 'list', '-q'], { reject: false });
  assert.not.ok(String(l.stdout).includes(id), 'runc still knows the exited container');
  const s = await tsrun(['start', '-a', id], { root });
  assert.is(s.code, 0, s.stderr);
  assert.is(s.stdout, 'ran\n');
  assert.is((await tsrun(['rm', id], { root })).code, 0);
  assert.equal(await leftovers(), []);
});

Run("attached run --rm: runc runs in the foreground as the init's parent; ps, kill and 137 as before", async () => {
  // native-helpers/src/launch.c --foreground: one `runc run` (no --detach) for the container's
  // life, no `runc delete` after it; the pid tsrun records is still the container's.
  const cli = spawnTsrun(['run', '--rm', '--name', 'fg', '--network', 'none', IMAGE, 'sleep', '30'], { root });
  let pid = 0;
  await eventually('the container runs', async () => {
    pid = Number((await tsrun(['inspect', '-f', '{{.State.Pid}}', 'fg'], { root })).stdout.trim());
    return pid > 0;
  });
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const parent = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
  assert.ok(parent.includes('run') && !parent.includes('--detach'), parent.join(' '));
  assert.match(parent[0] ?? '', /runc$/);
  const ps = await tsrun(['ps', '--format', '{{.Names}} {{.Status}}'], { root });
  assert.match(ps.stdout, /^fg Up/m);
  assert.is((await tsrun(['kill', 'fg'], { root })).code, 0);
  const r = await cli;
  assert.is(r.exitCode, 137, String(r.stderr));
  assert.equal(await leftovers(), []);
  const l = await execa('runc', ['--root', path.join(runDir(root), 'runc'), 'list', '-q'], { reject: false });
  assert.is(String(l.stdout).trim(), '');
});

Run('run loads no node:crypto (ids and names come from /dev/urandom: src/util/random.ts)', async () => {
  const probe = path.join(tmp, 'crypto-probe.cjs');
  // Counts Node's crypto modules at exit, and says who required node:crypto first.
  const lines = [
    "const M = require('node:module'); const load = M._load; let who = '';",
    'M._load = function (r, ...a) {',
    "  if (!who && /crypto/.test(r)) who = new Error().stack.split('\\n').slice(2, 9).join(' | ');",
    '  return load.call(this, r, ...a);',
    '};',
    "process.on('exit', () => process.stderr.write(`crypto modules: ${process.moduleLoadList.filter((m) => /crypto/.test(m)).length} ${who}\\n`));",
  ];
  await fs.writeFile(probe, `${lines.join('\n')}\n`);
  const r = await execa(
    process.execPath,
    ['-r', probe, BIN, '--root', root, 'run', '--rm', '--network', 'none', IMAGE, 'true'],
    {
      reject: false,
    },
  );
  assert.is(r.exitCode, 0, String(r.stderr));
  // (execa strips the final newline)
  assert.match(String(r.stderr), /^crypto modules: 0 *$/m, String(r.stderr));
});

Run("cp both ways, never through the container's symlinks to the host", async () => {
  const d = await run([
    '-d',
    '--name',
    'files',
    IMAGE,
    'sh',
    '-c',
    'ln -s / /escape; ln -s /etc/passwd /pw; echo inside > /tmp/made; sleep 60',
  ]);
  assert.is(d.code, 0, d.stderr);
  await eventually(
    'the container made its files',
    async () => (await tsrun(['exec', 'files', 'cat', '/tmp/made'], { root })).code === 0,
  );
  const out = path.join(tmp, 'cp-out');
  await fs.mkdir(out);
  const c1 = await tsrun(['cp', 'files:/tmp/made', out], { root });
  assert.is(c1.code, 0, c1.stderr);
  assert.is(await fs.readFile(path.join(out, 'made'), 'utf8'), 'inside\n');
  // /pw is a symlink to /etc/passwd inside the container: copying it out copies the link.
  const c2 = await tsrun(['cp', 'files:/pw', path.join(out, 'pw')], { root });
  assert.is(c2.code, 0, c2.stderr);
  assert.is(await fs.readlink(path.join(out, 'pw')), '/etc/passwd');

  const src = path.join(tmp, 'cp-in.txt');
  await fs.writeFile(src, 'from host\n');
  const sentinel = `/tmp/tsrun-cp-sentinel-${process.pid}`;
  const c3 = await tsrun(['cp', src, `files:/escape${sentinel}`], { root });
  assert.is(c3.code, 0, c3.stderr);
  assert.not.ok(existsSync(sentinel), "the host was not written through the container's symlink");
  const seen = await tsrun(['exec', 'files', 'cat', sentinel], { root });
  assert.is(seen.stdout, 'from host\n');
  await tsrun(['stop', '-t', '0', 'files'], { root });
  const c4 = await tsrun(['cp', 'files:/tmp/made', path.join(out, 'after-stop')], { root });
  assert.is(c4.code, 0, `cp from a stopped container: ${c4.stderr}`);
  assert.is((await tsrun(['rm', 'files'], { root })).code, 0);
  assert.equal(await leftovers(), []);
});

Run('rmi refuses an image a container uses; container prune removes stopped ones', async () => {
  const c = await run(['--name', 'user', IMAGE, 'true']);
  assert.is(c.code, 0, c.stderr);
  const rmi = await tsrun(['rmi', IMAGE], { root });
  assert.is(rmi.code, 1);
  assert.match(rmi.stderr, /container [a-f0-9]{12} is using its referenced image/);
  const prune = await tsrun(['container', 'prune', '-f'], { root });
  assert.is(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, /Deleted Containers:\n[a-f0-9]{64}\n/);
  assert.equal(await leftovers(), []);
});

Run.run();
