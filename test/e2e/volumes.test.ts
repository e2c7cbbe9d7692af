/**
 * End to end: volumes (issue 17) through the real CLI, runc and a registry on loopback, with
 * Docker's getting-started parts 5 (persist the DB in a named volume) and 6 (a bind-mounted dev
 * loop) played with a busybox stand-in for the todo app: a shell script that keeps its items in
 * /etc/todos/todo.db. Then copy-up (owners, modes, xattrs, links as links), nocopy, removal
 * rules (in use, anonymous vs named, `rm -v`, `run --rm`, prune), Docker's errors, and a
 * rootless round trip in which the volume's files carry the container user's mapped owners.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { eventually, leftovers as leftoversIn, runDir } from './containers.js';
import { busyboxLayer } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { ensureUser, subuidStart } from '../helpers/users.js';
import { native } from '../../src/native/index.js';

const V = suite('e2e volumes');
let reg: TestRegistry;
let IMAGE = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-vol-'));
const root = path.join(tmp, 'root');
const RL_USER = 'tsrun-vol';

const TODO = `#!/bin/sh
# The todo app's stand-in: items in /etc/todos/todo.db (the tutorial's SQLite file).
mkdir -p /etc/todos
case "$1" in
  add) echo "$2" >> /etc/todos/todo.db ;;
  list) cat /etc/todos/todo.db 2>/dev/null ;;
esac
`;

function appLayer() {
  return layerBlob(
    makeTar([
      { name: 'app/', type: 'dir' },
      { name: 'app/todo.sh', content: TODO, mode: 0o755 },
      { name: 'app/data/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 },
      {
        name: 'app/data/seed.txt',
        content: 'seeded\n',
        uid: 1000,
        gid: 1000,
        mode: 0o640,
        xattrs: { 'user.origin': 'image' },
      },
      { name: 'app/data/sub/', type: 'dir', uid: 1000, gid: 50, mode: 0o2770 },
      { name: 'app/data/sub/deep', content: 'deep\n', uid: 1000, gid: 50, mode: 0o600 },
      { name: 'app/data/passwd', type: 'symlink', linkname: '/etc/passwd' },
      // A link to an absolute path: followed inside the container's root, never to the host's /etc.
      { name: 'app/etc', type: 'symlink', linkname: '/etc' },
    ]),
  );
}

const cli = (args: string[], input?: string) => tsrun(args, { root, input });
const ok = async (args: string[], input?: string) => {
  const r = await cli(args, input);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const volumeNames = async () => (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean).sort();
const dataDir = (name: string) => path.join(root, 'volumes', name, '_data');

V.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/todo', 'latest', {
    layers: [busyboxLayer(), appLayer()],
    config: {
      config: { Cmd: ['sh'], Env: ['PATH=/bin'], WorkingDir: '/app', Volumes: { '/app/data': {} } },
    },
  });
  IMAGE = `${reg.host}/e2e/todo`;
  await ok(['pull', '-q', IMAGE]);
});
V.after(async () => {
  const ps = await cli(['ps', '-aq', '--no-trunc']);
  for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', '-v', id]);
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

V('part 5: a todo item written through a named volume survives rm -f and a new container', async () => {
  assert.is(await ok(['volume', 'create', 'todo-db']), 'todo-db\n');
  const id = (
    await ok([
      'run',
      '-d',
      '--name',
      'todo',
      '--mount',
      'type=volume,src=todo-db,target=/etc/todos',
      IMAGE,
      'sleep',
      '600',
    ])
  ).trim();
  await ok(['exec', 'todo', '/app/todo.sh', 'add', 'Buy milk']);
  // In use: refused with Docker's message and exit 1, nothing changed.
  const busy = await cli(['volume', 'rm', 'todo-db']);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, `remove todo-db: volume is in use - [${id}]`);
  assert.is(readFileSync(path.join(dataDir('todo-db'), 'todo.db'), 'utf8'), 'Buy milk\n');
  await ok(['rm', '-f', 'todo']);
  // A new container sees the item; the volume is Docker's JSON.
  assert.is(await ok(['run', '--rm', '-v', 'todo-db:/etc/todos', IMAGE, '/app/todo.sh', 'list']), 'Buy milk\n');
  const [v] = JSON.parse(await ok(['volume', 'inspect', 'todo-db'])) as Record<string, unknown>[];
  assert.equal(Object.keys(v ?? {}), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.is(v?.Mountpoint, dataDir('todo-db'));
  assert.is(v?.Driver, 'local');
  assert.is(v?.Scope, 'local');
  assert.match(String(v?.CreatedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // `rm -f` (no -v) left the first container's anonymous /app/data volume; `run --rm` took its own.
  assert.is((await volumeNames()).length, 2);
  assert.match(await ok(['volume', 'prune', '-f']), /^Deleted Volumes:\n[0-9a-f]{64}\n/);
  assert.is(await ok(['volume', 'ls']), 'DRIVER    VOLUME NAME\nlocal     todo-db\n');
  await ok(['volume', 'rm', 'todo-db']);
  assert.not.ok(existsSync(path.join(root, 'volumes', 'todo-db')));
  assert.equal(await leftoversIn(root), []);
});

V('part 6: the dev loop with a bind mount from the project dir sees a host edit at once', async () => {
  const proj = path.join(tmp, 'getting-started-app');
  mkdirSync(path.join(proj, 'src'), { recursive: true });
  writeFileSync(path.join(proj, 'src', 'greeting.txt'), 'Hello\n');
  const run = await execa(
    BIN,
    [
      '--root',
      root,
      'run',
      '-d',
      '--name',
      'dev',
      '-w',
      '/app',
      '--mount',
      'type=bind,src=.,target=/app',
      IMAGE,
      'sleep',
      '600',
    ],
    { cwd: proj, reject: false },
  );
  assert.is(run.exitCode, 0, String(run.stderr));
  assert.is(await ok(['exec', 'dev', 'cat', 'src/greeting.txt']), 'Hello\n');
  writeFileSync(path.join(proj, 'src', 'greeting.txt'), 'Hello, edited\n');
  assert.is(await ok(['exec', 'dev', 'cat', 'src/greeting.txt']), 'Hello, edited\n');
  // And back: what the container writes is on the host.
  await ok(['exec', 'dev', 'sh', '-c', 'echo built > /app/out.txt']);
  assert.is(readFileSync(path.join(proj, 'out.txt'), 'utf8'), 'built\n');
  // The image's VOLUME /app/data is below the bind: an anonymous volume; rm -v removes it.
  assert.is((await volumeNames()).length, 1);
  await ok(['rm', '-f', '-v', 'dev']);
  assert.equal(await volumeNames(), []);
  assert.equal(await leftoversIn(root), []);
});

V('copy-up keeps owners, modes, xattrs and links; nocopy starts empty; an anonymous volume too', async () => {
  await ok(['run', '--rm', '-v', 'seed:/app/data', IMAGE, 'true']);
  const d = dataDir('seed');
  const top = lstatSync(d);
  assert.equal([top.uid, top.gid, top.mode & 0o7777], [1000, 1000, 0o750]);
  const f = lstatSync(path.join(d, 'seed.txt'));
  assert.equal([f.uid, f.gid, f.mode & 0o7777], [1000, 1000, 0o640]);
  assert.is(native().lgetxattr(path.join(d, 'seed.txt'), 'user.origin')?.toString(), 'image');
  const sub = lstatSync(path.join(d, 'sub'));
  assert.equal([sub.uid, sub.gid, sub.mode & 0o7777], [1000, 50, 0o2770]);
  assert.is(readFileSync(path.join(d, 'sub', 'deep'), 'utf8'), 'deep\n');
  assert.is(readlinkSync(path.join(d, 'passwd')), '/etc/passwd', 'a link is copied as a link');
  // Not again: a volume with content keeps it (a new file written through it is still there).
  await ok([
    'run',
    '--rm',
    '-v',
    'seed:/app/data',
    IMAGE,
    'sh',
    '-c',
    'rm /app/data/seed.txt; echo mine > /app/data/new',
  ]);
  await ok(['run', '--rm', '-v', 'seed:/app/data', IMAGE, 'true']);
  assert.not.ok(existsSync(path.join(d, 'seed.txt')));
  assert.is(readFileSync(path.join(d, 'new'), 'utf8'), 'mine\n');
  // The destination is a link to /etc: the copy is the image's /etc, not the host's.
  await ok(['run', '--rm', '-v', 'etc:/app/etc', IMAGE, 'true']);
  assert.match(readFileSync(path.join(dataDir('etc'), 'passwd'), 'utf8'), /^app:x:1000:1000:app:\/home\/app:/m);
  assert.is(
    readFileSync(path.join(dataDir('etc'), 'passwd'), 'utf8'),
    await ok(['run', '--rm', IMAGE, 'cat', '/etc/passwd']),
  );
  await ok(['volume', 'rm', 'etc']);
  // nocopy, in both syntaxes.
  assert.is(await ok(['run', '--rm', '-v', 'empty1:/app/data:nocopy', IMAGE, 'ls', '-A', '/app/data']), '');
  const m = ['--mount', 'type=volume,src=empty2,dst=/app/data,volume-nocopy'];
  assert.is(await ok(['run', '--rm', ...m, IMAGE, 'ls', '-A', '/app/data']), '');
  // The image's VOLUME, anonymous, gets the same copy; read-only named volumes are read-only.
  const anon = await ok([
    'run',
    '--name',
    'anon',
    IMAGE,
    'sh',
    '-c',
    'cat /app/data/seed.txt; stat -c %u:%a /app/data',
  ]);
  assert.is(anon, 'seeded\n1000:750\n');
  const ro = await cli(['run', '--rm', '-v', 'seed:/app/data:ro', IMAGE, 'touch', '/app/data/x']);
  assert.is(ro.code, 1);
  assert.match(ro.stderr, /Read-only file system/);
  // rm without -v keeps the anonymous volume (dangling); prune removes it and only it.
  await ok(['rm', 'anon']);
  const dangling = (await ok(['volume', 'ls', '-q', '--filter', 'dangling=true'])).split('\n').filter(Boolean);
  assert.equal(dangling.filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 1);
  assert.is(await ok(['volume', 'ls', '-q', '--filter', 'name=empty']), 'empty1\nempty2\n');
  const pruned = await ok(['volume', 'prune', '-f']);
  assert.match(pruned, /^Deleted Volumes:\n[0-9a-f]{64}\n\nTotal reclaimed space: \d+(\.\d+)?k?B\n$/);
  assert.equal(await volumeNames(), ['empty1', 'empty2', 'seed']);
  // prune without -f and no stdin: a no, nothing removed.
  assert.match(await ok(['volume', 'prune', '-a']), /all local volumes not used by at least one container/);
  assert.equal(await volumeNames(), ['empty1', 'empty2', 'seed']);
  assert.match(await ok(['volume', 'prune', '-af']), /Deleted Volumes:\nempty1\nempty2\nseed\n/);
  assert.equal(await volumeNames(), []);
  assert.equal(await leftoversIn(root), []);
});

V('anonymous volumes go with run --rm and rm -v, named ones stay; system prune keeps every volume', async () => {
  await ok([
    'run',
    '--rm',
    '-v',
    '/scratch',
    '-v',
    'keep:/keep',
    IMAGE,
    'sh',
    '-c',
    'echo k > /keep/k; echo s > /scratch/s',
  ]);
  assert.equal(await volumeNames(), ['keep']);
  // Detached --rm: the monitor's cleanup removes them.
  await ok(['run', '-d', '--rm', '-v', '/scratch', '-v', 'keep:/keep', IMAGE, 'true']);
  await eventually(
    'the detached --rm container and its anonymous volumes to go',
    async () => (await volumeNames()).join() === 'keep' && (await ok(['ps', '-aq'])) === '',
  );
  await ok(['run', '--name', 'v2', '-v', '/scratch', '-v', 'keep:/keep', IMAGE, 'true']);
  assert.is((await volumeNames()).length, 3);
  const insp = JSON.parse(await ok(['inspect', 'v2'])) as {
    Mounts: { Type: string; Name: string; Destination: string }[];
  }[];
  assert.equal(insp[0]?.Mounts.map((m) => `${m.Type} ${m.Destination} ${m.Name.length}`).sort(), [
    'volume /app/data 64',
    'volume /keep 4',
    'volume /scratch 64',
  ]);
  assert.is(await ok(['ps', '-a', '--filter', 'volume=keep', '--format', '{{.Names}} {{.LocalVolumes}}']), 'v2 3\n');
  // system prune removes the stopped container but no volume's data; with --volumes, the anonymous ones.
  await ok(['system', 'prune', '-f']);
  assert.is((await volumeNames()).length, 3);
  assert.match(await ok(['system', 'prune', '-f', '--volumes']), /Deleted Volumes:\n[0-9a-f]{64}\n[0-9a-f]{64}\n\n/);
  assert.equal(await volumeNames(), ['keep']);
  assert.is(readFileSync(path.join(dataDir('keep'), 'k'), 'utf8'), 'k\n');
  await ok(['volume', 'rm', 'keep']);
  assert.equal(await leftoversIn(root), []);
});

V("Docker's errors: unknown driver, bad names, missing volumes; each changes nothing", async () => {
  const drv = await cli(['volume', 'create', '--driver', 'nfs', 'x1']);
  assert.is(drv.code, 1);
  assert.match(drv.stderr, 'create x1: error looking up volume plugin nfs: plugin "nfs" not found');
  const run = await cli(['run', '--rm', '--mount', 'type=volume,src=x2,dst=/x,volume-driver=nfs', IMAGE, 'true']);
  assert.is(run.code, 125);
  assert.match(run.stderr, 'plugin "nfs" not found');
  const bad = await cli(['volume', 'create', 'a']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, '"a" includes invalid characters for a local volume name');
  const badRun = await cli(['run', '--rm', '-v', 'x@y:/x', IMAGE, 'true']);
  assert.is(badRun.code, 125);
  assert.match(badRun.stderr, 'includes invalid characters for a local volume name');
  const missing = await cli(['volume', 'rm', 'nope']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'get nope: no such volume');
  assert.is((await cli(['volume', 'rm', '-f', 'nope'])).code, 0);
  const insp = await cli(['volume', 'inspect', 'nope']);
  assert.is(insp.code, 1);
  assert.match(insp.stderr, 'No such volume: nope');
  // A create that fails after its volumes were made takes its anonymous ones back.
  const user = await cli(['run', '--rm', '-v', '/anon', '--user', 'nosuch', IMAGE, 'true']);
  assert.is(user.code, 125, user.stderr);
  assert.match(user.stderr, /nosuch/);
  // Two mounts on one place: refused before anything is made.
  const dup = await cli(['run', '--rm', '-v', 'd1:/x', '-v', 'd2:/x', IMAGE, 'true']);
  assert.is(dup.code, 125);
  assert.match(dup.stderr, 'Duplicate mount point: /x');
  assert.equal(await volumeNames(), []);
  assert.is(await ok(['volume', 'create', '--label', 'app=todo', 'lab']), 'lab\n');
  assert.is(await ok(['volume', 'create', 'lab']), 'lab\n', 'create is idempotent');
  assert.is(await ok(['volume', 'ls', '--format', '{{.Name}} {{.Labels}} {{.Label "app"}}']), 'lab app=todo todo\n');
  assert.is(await ok(['volume', 'rm', 'lab']), 'lab\n');
  assert.equal(await leftoversIn(root), []);
});

V("build: VOLUME is recorded in the image, RUN steps get no volume; the built image's content seeds one", async () => {
  const ctxDir = path.join(tmp, 'build-ctx');
  mkdirSync(ctxDir, { recursive: true });
  writeFileSync(
    path.join(ctxDir, 'Dockerfile'),
    // BuildKit's rule: what RUN writes below a VOLUME after it is kept (no volume is mounted there).
    `FROM ${IMAGE}\nVOLUME /cache\nRUN mkdir -p /cache && echo built > /cache/made && ! grep ' /cache ' /proc/mounts\n`,
  );
  const b = await cli(['build', '-q', '-t', 'e2e/vol-built', ctxDir]);
  assert.is(b.code, 0, b.stderr);
  assert.equal(await volumeNames(), [], 'a build makes no volume');
  const cfg = JSON.parse(
    await ok(['image', 'inspect', '--format', '{{json .Config.Volumes}}', 'e2e/vol-built']),
  ) as object;
  assert.equal(cfg, { '/app/data': {}, '/cache': {} });
  assert.is(
    await ok(['run', '--rm', 'e2e/vol-built', 'sh', '-c', "cat /cache/made; grep -c ' /cache ' /proc/mounts"]),
    'built\n1\n',
  );
  assert.equal(await volumeNames(), []);
  await ok(['rmi', 'e2e/vol-built']);
  assert.equal(await leftoversIn(root), []);
});

V('rootless: volume files carry the container user mapped owners; bind mounts keep working', async () => {
  const u = ensureUser(RL_USER, true, '800000-865535');
  const uroot = path.join(u.home, 'tsrun-vol-store');
  const proj = path.join(u.home, 'proj');
  mkdirSync(proj, { recursive: true });
  writeFileSync(path.join(proj, 'greeting.txt'), 'from the host\n');
  execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, proj]);
  const as = (args: string[]) =>
    execa(BIN, ['--root', uroot, ...args], {
      reject: false,
      uid: u.uid,
      gid: u.gid,
      cwd: u.home,
      extendEnv: false,
      env: { HOME: u.home, PATH: process.env.PATH ?? '/usr/bin:/bin', USER: String(u.uid) },
      stripFinalNewline: false,
    });
  const must = async (args: string[]) => {
    const r = await as(args);
    assert.is(r.exitCode, 0, `${args.join(' ')}: ${String(r.stderr)}`);
    return String(r.stdout);
  };
  try {
    await must(['pull', '-q', IMAGE]);
    const out = await must([
      'run',
      '--rm',
      '--network',
      'none',
      '--user',
      '1000',
      '-v',
      'rl:/app/data',
      '-v',
      './proj:/proj:ro',
      IMAGE,
      'sh',
      '-c',
      'echo note > /app/data/note; cat /proj/greeting.txt; stat -c %u /app/data/note',
    ]);
    assert.is(out, 'from the host\n1000\n');
    const sub = subuidStart(RL_USER);
    const d = path.join(uroot, 'volumes', 'rl', '_data');
    assert.is(lstatSync(path.join(d, 'note')).uid, sub + 999, 'uid 1000 inside is subordinate id start+999');
    assert.is(lstatSync(path.join(d, 'seed.txt')).uid, sub + 999, 'copied up as the mapped owner');
    assert.is(lstatSync(d).uid, sub + 999);
    assert.is(await must(['volume', 'ls', '-q']), 'rl\n', 'the anonymous /app/data? no: the named one took its place');
    assert.is(await must(['volume', 'rm', 'rl']), 'rl\n');
    assert.not.ok(existsSync(path.join(uroot, 'volumes', 'rl')));
  } finally {
    await as(['system', 'reset', '-f']).catch(() => {});
    const pid = `/tmp/tsrun-${u.uid}/pause.pid`;
    if (existsSync(pid)) {
      try {
        process.kill(Number(readFileSync(pid, 'utf8').trim()), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(`/tmp/tsrun-${u.uid}`, { recursive: true, force: true });
    rmSync(uroot, { recursive: true, force: true });
  }
});

V.run();
