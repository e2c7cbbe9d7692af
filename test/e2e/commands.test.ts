/**
 * End to end: the commands that move containers around and look into them — export | import,
 * commit (and a run of the result), diff, pause/unpause, rename, top, stats, update, events —
 * with the real CLI, real runc and an image from a real registry. Errors exit 1, as Docker's.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sleep } from '../../src/util/concurrency.js';

const C = suite('e2e container commands');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-cmds-'));
const root = path.join(tmp, 'root');
let reg: TestRegistry;
let IMAGE = '';

const cli = (args: string[], input?: string) => tsrun(args, { root, input });
const sh = (cmd: string) => execa('sh', ['-c', cmd], { reject: false, cwd: tmp });
const inspect = async (fmt: string, name: string) => (await cli(['inspect', '-f', fmt, name])).stdout.trim();
const detached = async (name: string, script: string, extra: string[] = []) => {
  const r = await cli(['run', '-d', '--name', name, '--network', 'none', ...extra, IMAGE, 'sh', '-c', script]);
  assert.is(r.code, 0, r.stderr);
};

C.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest', {
    Cmd: ['sh'],
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=yes'],
  });
  IMAGE = `${reg.host}/e2e/busybox`;
  const r = await cli(['pull', '-q', IMAGE]);
  assert.is(r.code, 0, r.stderr);
});
C.after(async () => {
  const ps = await cli(['ps', '-aq', '--no-trunc']);
  for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id]);
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

C("diff: A, C and D lines from the upper dir, sorted; the runtime's mount points are not changes", async () => {
  await detached('fresh', 'sleep 60');
  const fresh = await cli(['diff', 'fresh']);
  assert.is(fresh.code, 0, fresh.stderr);
  assert.is(fresh.stdout, '');
  await detached(
    'changer',
    'echo new > /new; rm /etc/group; mkdir -p /var/lib/x; echo more >> /home/app/hello.txt; touch /ready; sleep 60',
  );
  await eventually(
    'the changes are made',
    async () => (await cli(['exec', 'changer', 'test', '-e', '/ready'])).code === 0,
  );
  const d = await cli(['diff', 'changer']);
  assert.is(d.code, 0, d.stderr);
  assert.is(
    d.stdout,
    [
      'C /etc',
      'D /etc/group',
      'C /home',
      'C /home/app',
      'C /home/app/hello.txt',
      'A /new',
      'A /ready',
      'A /var',
      'A /var/lib',
      'A /var/lib/x',
      '',
    ].join('\n'),
  );
  assert.is((await cli(['container', 'diff', 'changer'])).stdout, d.stdout);
  // Reading froze the container only for the time of the walk.
  assert.is(await inspect('{{.State.Status}}', 'changer'), 'running');
  const missing = await cli(['diff', 'no-such-container']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'no such container: no-such-container');
});

C("commit: the changes as a layer over the image, the container's config and -c changes; the result runs", async () => {
  const r = await cli([
    'commit',
    '-a',
    'Ann <ann@example.com>',
    '-m',
    'a message',
    '-c',
    'CMD ["cat", "/new", "/home/app/hello.txt"]',
    '-c',
    'ENV ADDED=1',
    '-c',
    'EXPOSE 8080',
    'changer',
    'committed:1',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.is(await inspect('{{.State.Status}}', 'changer'), 'running');
  const run = await cli(['run', '--rm', '--network', 'none', 'committed:1']);
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'new\nhello from the image\nmore\n');
  const gone = await cli([
    'run',
    '--rm',
    '--network',
    'none',
    'committed:1',
    'sh',
    '-c',
    'test -e /etc/group || echo deleted; test -e /etc/hosts && echo hosts; echo $FROM_IMAGE $ADDED',
  ]);
  assert.is(gone.stdout, 'deleted\nhosts\nyes 1\n');
  assert.is(
    await inspect('{{.Author}}|{{.Comment}}|{{json .Config.ExposedPorts}}', 'committed:1'),
    'Ann <ann@example.com>|a message|{"8080/tcp":{}}',
  );
  assert.is(await inspect('{{len .RootFS.Layers}}', 'committed:1'), '2');
  const hist = await cli(['history', '--no-trunc', 'committed:1']);
  assert.match(hist.stdout, 'a message');
  // The runtime's /etc/hosts (a mount point) is not in the layer: only the container's changes.
  const top = (await inspect('{{.GraphDriver.Data.LowerDir}}', 'committed:1')).split(':')[0] as string;
  assert.is(readFileSync(path.join(top, 'new'), 'utf8'), 'new\n');
  assert.not.ok(existsSync(path.join(top, 'etc', 'hosts')));
  assert.not.ok(existsSync(path.join(top, 'proc')));
  // No changes, no layer (Docker marks the step empty); --pause=false is accepted.
  const same = await cli(['commit', '--pause=false', 'fresh', 'same:1']);
  assert.is(same.code, 0, same.stderr);
  assert.is(await inspect('{{len .RootFS.Layers}}', 'same:1'), '1');
  const bad = await cli(['commit', '-c', 'RUN echo no', 'fresh']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'RUN is not a valid change command');
});

C("export | import round trip, -o to a relative path; export never follows the container's symlinks", async () => {
  await detached('exp', 'ln -s /etc /escape; ln -s / /rootlink; echo data > /data; sleep 60');
  await eventually('exp wrote its files', async () => (await cli(['exec', 'exp', 'test', '-e', '/data'])).code === 0);
  const r = await execa(BIN, ['--root', root, 'export', '-o', 'exp.tar', 'exp'], { cwd: tmp, reject: false });
  assert.is(r.exitCode, 0, r.stderr);
  const list = (await sh('tar tvf exp.tar')).stdout;
  assert.match(list, /escape -> \/etc/);
  assert.match(list, /rootlink -> \//);
  assert.match(list, / bin\/busybox\n/);
  assert.not.match(list, /escape\/passwd/);
  assert.is(await inspect('{{.State.Status}} {{.State.Paused}}', 'exp'), 'running false');
  // Piped straight into import, as people do.
  const rt = await sh(
    `${BIN} --root ${root} export exp | ${BIN} --root ${root} import -c 'CMD ["cat", "/data"]' -c 'ENV K=v' -m 'from export' - imported:1`,
  );
  assert.is(rt.exitCode, 0, String(rt.stderr));
  assert.match(String(rt.stdout), /^sha256:[0-9a-f]{64}$/);
  const run = await cli(['run', '--rm', '--network', 'none', 'imported:1']);
  assert.is(run.stdout, 'data\n', run.stderr);
  assert.is(await inspect('{{json .Config.Env}} {{len .RootFS.Layers}}', 'imported:1'), '["K=v"] 1');
  const hist = await cli(['history', 'imported:1']);
  assert.match(hist.stdout, 'from export');
  // A gzipped file and no name: an untagged image, "Imported from FILE" in its history.
  await sh('gzip -k exp.tar');
  const gz = await execa(BIN, ['--root', root, 'import', 'exp.tar.gz'], { cwd: tmp, reject: false });
  assert.is(gz.exitCode, 0, gz.stderr);
  assert.match((await cli(['history', gz.stdout.trim()])).stdout, 'Imported from exp.tar.gz');
  // From a URL (a loopback server), as docker import takes one.
  const server = http.createServer((req, res) => {
    if (req.url !== '/exp.tar') return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    createReadStream(path.join(tmp, 'exp.tar')).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const fromUrl = await cli(['image', 'import', `${url}/exp.tar`, 'fromurl:1']);
    assert.is(fromUrl.code, 0, fromUrl.stderr);
    assert.is((await cli(['run', '--rm', '--network', 'none', 'fromurl:1', 'cat', '/data'])).stdout, 'data\n');
    const notFound = await cli(['import', `${url}/nope.tar`]);
    assert.is(notFound.code, 1);
    assert.match(notFound.stderr, '404');
  } finally {
    server.close();
  }
  const missing = await cli(['import', path.join(tmp, 'nope.tar')]);
  assert.is(missing.code, 1);
  assert.is((await cli(['export', 'no-such-container'])).code, 1);
});

C('pause/unpause: processes stop and resume, ps says (Paused), inspect says paused; wrong states exit 1', async () => {
  await detached('ticker', 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done');
  await eventually('the ticker ticks', async () => (await cli(['exec', 'ticker', 'cat', '/count'])).code === 0);
  const p = await cli(['pause', 'ticker']);
  assert.is(p.code, 0, p.stderr);
  assert.is(p.stdout, 'ticker\n');
  assert.match((await cli(['ps', '--format', '{{.Names}} {{.Status}}'])).stdout, /^ticker Up .* \(Paused\)$/m);
  assert.is(await inspect('{{.State.Status}} {{.State.Paused}} {{.State.Running}}', 'ticker'), 'paused true true');
  const upper = path.join(root, 'containers', await inspect('{{.Id}}', 'ticker'), 'upper', 'count');
  const frozen = readFileSync(upper, 'utf8');
  await sleep(500);
  assert.is(readFileSync(upper, 'utf8'), frozen);
  const twice = await cli(['pause', 'ticker']);
  assert.is(twice.code, 1);
  assert.match(twice.stderr, 'is already paused');
  // commit of a paused container keeps it paused.
  assert.is((await cli(['commit', 'ticker'])).code, 0);
  assert.is(await inspect('{{.State.Paused}}', 'ticker'), 'true');
  assert.is((await cli(['unpause', 'ticker'])).code, 0);
  await eventually('the ticker ticks again', async () => readFileSync(upper, 'utf8') !== frozen);
  const notPaused = await cli(['container', 'unpause', 'ticker']);
  assert.is(notPaused.code, 1);
  assert.match(notPaused.stderr, 'is not paused');
  assert.is((await cli(['create', '--name', 'idle', IMAGE])).code, 0);
  const stopped = await cli(['pause', 'idle', 'ticker']);
  assert.is(stopped.code, 1);
  assert.match(stopped.stderr, 'is not running');
  assert.is(stopped.stdout, 'ticker\n');
  assert.is((await cli(['unpause', 'ticker'])).code, 0);
  // A paused container can still be killed and removed (SIGKILL thaws it, as in Docker).
  await detached('frozen', 'sleep 60');
  assert.is((await cli(['pause', 'frozen'])).code, 0);
  const t0 = Date.now();
  const rm = await cli(['rm', '-f', 'frozen']);
  assert.is(rm.code, 0, rm.stderr);
  assert.ok(Date.now() - t0 < 10_000, `rm -f took ${Date.now() - t0} ms`);
});

C('rename: the new name works, the old one is free; a taken name exits 1', async () => {
  assert.is((await cli(['rename', 'idle', 'idle2'])).code, 0);
  assert.match((await cli(['ps', '-a', '--format', '{{.Names}}'])).stdout, /^idle2$/m);
  assert.is((await cli(['create', '--name', 'idle', IMAGE])).code, 0);
  const taken = await cli(['rename', 'idle2', 'idle']);
  assert.is(taken.code, 1);
  assert.match(taken.stderr, 'is already in use');
  const same = await cli(['container', 'rename', 'idle2', 'idle2']);
  assert.is(same.code, 1);
  assert.is((await cli(['rm', 'idle', 'idle2'])).code, 0);
});

C("top: the container's processes through ps, with ps options; a stopped container exits 1", async () => {
  const t = await cli(['top', 'ticker']);
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stdout, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD\n/);
  assert.match(t.stdout, /sh -c i=0/);
  assert.not.match(t.stdout, /tsrun|node /);
  const o = await cli(['top', 'ticker', '-o', 'pid,comm']);
  assert.is(o.code, 0, o.stderr);
  assert.match(o.stdout, /^PID\s+COMMAND\n(\d+\s+\S+\n)+$/);
  assert.match(o.stdout, /\d+\s+sh\n/);
  const noPid = await cli(['top', 'ticker', '-o', 'comm']);
  assert.is(noPid.code, 1);
  assert.match(noPid.stderr, "Couldn't find PID field in ps output");
  assert.is((await cli(['create', '--name', 'idle3', IMAGE])).code, 0);
  assert.is((await cli(['top', 'idle3'])).code, 1);
});

C(
  'update and stats: limits change on a running container and hold after a restart; stats shows them and the CPU a busy loop uses',
  async () => {
    await detached('busy', 'while true; do :; done', ['-m', '128m']);
    const s = await cli(['stats', '--no-stream', 'busy']);
    assert.is(s.code, 0, s.stderr);
    const [head, line] = s.stdout.split('\n');
    assert.match(
      head ?? '',
      /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/,
    );
    assert.match(
      line ?? '',
      /^[0-9a-f]{12}\s+busy\s+(\d+\.\d\d)%\s+\S+ \/ 128MiB\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+1$/,
    );
    const cpu = Number(/busy\s+(\d+\.\d\d)%/.exec(line ?? '')?.[1]);
    assert.ok(cpu > 20, `busy loop at ${cpu}%`);
    const u = await cli(['update', '-m', '64m', '--pids-limit', '20', '--cpus', '0.5', 'busy']);
    assert.is(u.code, 0, u.stderr);
    assert.is(u.stdout, 'busy\n');
    const f = await cli(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'busy']);
    assert.match(f.stdout, /^busy \S+ \/ 64MiB 1\n$/);
    // Half a CPU: the busy loop now gets about 50%.
    const capped = Number(
      /(\d+\.\d\d)%/.exec((await cli(['stats', '--no-stream', '--format', '{{.CPUPerc}}', 'busy'])).stdout)?.[1],
    );
    assert.ok(capped < 70, `capped at ${capped}%`);
    assert.is((await cli(['restart', '-t', '0', 'busy'])).code, 0);
    const after = await cli(['stats', '--no-stream', '--format', '{{.MemUsage}}', 'busy']);
    assert.match(after.stdout, /\/ 64MiB\n$/);
    const none = await cli(['update', 'busy']);
    assert.is(none.code, 1);
    assert.is((await cli(['rm', '-f', 'busy'])).code, 0);
  },
);

C("events: the store's container events replayed with --since/--until, filtered and formatted", async () => {
  const r = await cli(['run', '--name', 'ev', '--network', 'none', IMAGE, 'sh', '-c', 'exit 3']);
  assert.is(r.code, 3);
  // The monitor records the exit just after the attached CLI learns of it.
  await eventually('ev has exited', async () => (await inspect('{{.State.Status}}', 'ev')) === 'exited');
  const e = await cli(['events', '--since', '5m', '--until', '0s', '--filter', 'container=ev']);
  assert.is(e.code, 0, e.stderr);
  const lines = e.stdout.trim().split('\n');
  assert.equal(
    lines.map((l) => l.split(' ').slice(1, 3).join(' ')),
    ['container create', 'container start', 'container die'],
  );
  assert.match(
    lines[2] ?? '',
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container die [0-9a-f]{64} \(exitCode=3, image=.*, name=ev\)$/,
  );
  const f = await cli([
    'events',
    '--since',
    '5m',
    '--until',
    '0s',
    '--filter',
    'event=die',
    '--filter',
    'container=ev',
    '--format',
    '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}',
  ]);
  assert.is(f.stdout, 'die ev 3\n');
  // Following: a new container's events appear while the command runs. --since the moment the
  // follower is started, so that a follower slow to start (beside CPU hogs) still reports ev2's
  // start (then replayed) instead of taking it for the past; ev2 stays until the follower ends.
  const t0 = Date.now() / 1000;
  const follow = execa(
    BIN,
    [
      '--root',
      root,
      'events',
      '--since',
      t0.toFixed(3),
      '--until',
      String(Math.floor(t0) + 8),
      '--filter',
      'event=start',
      '--format',
      '{{.Actor.Attributes.name}}',
    ],
    { reject: false },
  );
  await sleep(1500);
  assert.is((await cli(['run', '-d', '--name', 'ev2', '--network', 'none', IMAGE, 'sleep', '2'])).code, 0);
  const out = await follow;
  assert.is(out.stdout, 'ev2');
  assert.is((await cli(['rm', '-f', 'ev2'])).code, 0);
  const bad = await cli(['events', '--filter', 'colour=red', '--until', '0s']);
  assert.is(bad.code, 1);
  assert.is((await cli(['rm', 'ev'])).code, 0);
});

C('nothing is left behind', async () => {
  for (const n of ['fresh', 'changer', 'exp', 'ticker', 'idle3']) assert.is((await cli(['rm', '-f', n])).code, 0);
  assert.equal(await leftovers(root), []);
});

C(
  "a monitor's late `container cleanup` for a container already removed does nothing: no store is made again",
  async () => {
    const gone = path.join(os.tmpdir(), `tsrun-e2e-gone-${process.pid}`);
    const r = await tsrun(['container', 'cleanup', 'f'.repeat(64)], { root: gone });
    assert.is(r.code, 0, r.stderr);
    assert.not.ok(existsSync(gone), 'the store was made again');
  },
);

C.run();
