/**
 * End to end: `tsrun cp` as Docker documents it, against running and stopped containers with
 * real runc: through bind mounts both ways, out of and onto /etc/hosts, a --read-only root and
 * read-only volumes, tar streams with "-" both ways, -L, relative host paths, and the O_PATH
 * walk that stands in for openat2 on older kernels (TSRUN_NO_OPENAT2=1).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  promises as fs,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { removeTree } from './cp-race.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-cp-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const Cp = suite('e2e cp');

Cp.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest');
  IMAGE = `${reg.host}/e2e/busybox`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
Cp.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  await removeTree(tmp);
});

const cli = (args: string[], env?: Record<string, string>) => tsrun(args, { root, env });
const sh = async (name: string, script: string) => (await cli(['exec', name, 'sh', '-c', script])).stdout;

async function detached(name: string, flags: string[], script = 'sleep 600'): Promise<void> {
  const d = await cli(['run', '-d', '--name', name, '--network', 'none', ...flags, IMAGE, 'sh', '-c', script]);
  assert.is(d.code, 0, d.stderr);
  await eventually(`${name} runs`, async () => (await cli(['exec', name, 'true'])).code === 0);
}

function hostDir(name: string): string {
  const d = path.join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
}

Cp('through a bind mount both ways, running and stopped; the upper dir never gets the files', async () => {
  const vol = hostDir('vol');
  writeFileSync(path.join(vol, 'seed.txt'), 'from the volume\n');
  await detached('bind', ['-v', `${vol}:/data`]);
  const src = path.join(tmp, 'in.txt');
  writeFileSync(src, 'copied in\n');
  const i = await cli(['cp', src, 'bind:/data/in.txt']);
  assert.is(i.code, 0, i.stderr);
  assert.is(readFileSync(path.join(vol, 'in.txt'), 'utf8'), 'copied in\n', 'the file is in the volume on the host');
  assert.is(await sh('bind', 'cat /data/in.txt'), 'copied in\n');
  const o = await cli(['cp', 'bind:/data/seed.txt', path.join(tmp, 'seed-out.txt')]);
  assert.is(o.code, 0, o.stderr);
  assert.is(readFileSync(path.join(tmp, 'seed-out.txt'), 'utf8'), 'from the volume\n');

  assert.is((await cli(['stop', '-t', '0', 'bind'])).code, 0);
  const i2 = await cli(['cp', src, 'bind:/data/in-stopped.txt']);
  assert.is(i2.code, 0, i2.stderr);
  assert.is(readFileSync(path.join(vol, 'in-stopped.txt'), 'utf8'), 'copied in\n');
  const o2 = await cli(['cp', 'bind:/data/seed.txt', path.join(tmp, 'seed-stopped.txt')]);
  assert.is(o2.code, 0, o2.stderr);
  assert.is(readFileSync(path.join(tmp, 'seed-stopped.txt'), 'utf8'), 'from the volume\n');
  const id = (await cli(['inspect', '-f', '{{.Id}}', 'bind'])).stdout.trim();
  const upper = path.join(root, 'containers', id, 'upper', 'data');
  for (const f of ['in.txt', 'in-stopped.txt'])
    assert.not.ok(existsSync(path.join(upper, f)), `${f} is not hidden under the mount`);
  // The stand-in's mounts went with it: nothing is mounted under the store.
  assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(vol), 'no bind mount left on the host');
  assert.is((await cli(['rm', 'bind'])).code, 0);
});

Cp('/etc/hosts and /etc/resolv.conf: real content out; a copy onto /etc/hosts keeps the mount', async () => {
  await detached('etc', []);
  const inside = await sh('etc', 'cat /etc/hosts');
  assert.match(inside, /localhost/);
  const out = path.join(tmp, 'hosts.out');
  const o = await cli(['cp', 'etc:/etc/hosts', out]);
  assert.is(o.code, 0, o.stderr);
  assert.is(readFileSync(out, 'utf8'), inside);
  assert.is(statSync(out).mode & 0o777, 0o644);
  const r = await cli(['cp', 'etc:/etc/resolv.conf', path.join(tmp, 'resolv.out')]);
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(path.join(tmp, 'resolv.out'), 'utf8'), await sh('etc', 'cat /etc/resolv.conf'));

  const mine = path.join(tmp, 'my-hosts');
  writeFileSync(mine, '127.0.0.1 localhost\n10.9.8.7 db\n');
  const i = await cli(['cp', mine, 'etc:/etc/hosts']);
  assert.is(i.code, 0, i.stderr);
  assert.is(await sh('etc', 'cat /etc/hosts'), '127.0.0.1 localhost\n10.9.8.7 db\n');
  assert.match(
    await sh('etc', 'grep " /etc/hosts " /proc/self/mountinfo'),
    /\/etc\/hosts/,
    'still a bind mount in the container',
  );
  const id = (await cli(['inspect', '-f', '{{.Id}}', 'etc'])).stdout.trim();
  assert.is(
    readFileSync(path.join(root, 'containers', id, 'etc', 'hosts'), 'utf8'),
    '127.0.0.1 localhost\n10.9.8.7 db\n',
    'written through to the file tsrun mounts',
  );
  assert.is((await cli(['rm', '-f', 'etc'])).code, 0);
});

Cp("--read-only: Docker's error for the root, copies into a writable volume work, a :ro volume refuses", async () => {
  const vol = hostDir('ro-vol');
  const roVol = hostDir('ro-ro');
  await detached('ro', ['--read-only', '-v', `${vol}:/data`, '-v', `${roVol}:/ro:ro`]);
  const src = path.join(tmp, 'ro-in.txt');
  writeFileSync(src, 'x\n');
  const refused = await cli(['cp', src, 'ro:/tmp/x.txt']);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, /container rootfs is marked read-only/);
  const ok = await cli(['cp', src, 'ro:/data/x.txt']);
  assert.is(ok.code, 0, ok.stderr);
  assert.is(readFileSync(path.join(vol, 'x.txt'), 'utf8'), 'x\n');
  const roRefused = await cli(['cp', src, 'ro:/ro/x.txt']);
  assert.match(roRefused.stderr, /mounted volume is marked read-only/);
  assert.not.ok(existsSync(path.join(roVol, 'x.txt')));
  const out = await cli(['cp', 'ro:/etc/passwd', path.join(tmp, 'ro-passwd')]);
  assert.is(out.code, 0, 'copies out of a read-only container work');
  await cli(['stop', '-t', '0', 'ro']);
  const stopped = await cli(['cp', src, 'ro:/tmp/x.txt']);
  assert.match(stopped.stderr, /container rootfs is marked read-only/);
  assert.is((await cli(['cp', src, 'ro:/data/y.txt'])).code, 0);
  assert.ok(existsSync(path.join(vol, 'y.txt')));
  assert.is((await cli(['rm', 'ro'])).code, 0);
});

Cp('cp - : a tar to stdout and from stdin, as docker cp; names climbing out are refused', async () => {
  await detached(
    'tar',
    [],
    'mkdir -p /srv/t/sub; echo one > /srv/t/a; echo two > /srv/t/sub/b; ln -s a /srv/t/l; sleep 600',
  );
  await eventually('files made', async () => (await sh('tar', 'cat /srv/t/sub/b')) === 'two\n');
  const out = await execa(BIN, ['--root', root, 'cp', 'tar:/srv/t', '-'], { encoding: 'buffer', reject: false });
  assert.is(out.exitCode, 0, String(out.stderr));
  const archive = path.join(tmp, 'out.tar');
  writeFileSync(archive, out.stdout);
  const list = (await execa('tar', ['-tvf', archive])).stdout;
  for (const n of ['t/', 't/a', 't/sub/', 't/sub/b', 't/l -> a']) assert.ok(list.includes(n), `${n} in:\n${list}`);
  const x = hostDir('x');
  await execa('tar', ['-xf', archive, '-C', x]);
  assert.is(readFileSync(path.join(x, 't/sub/b'), 'utf8'), 'two\n');

  const srcDir = hostDir('tar-src');
  mkdirSync(path.join(srcDir, 'deep/er'), { recursive: true });
  writeFileSync(path.join(srcDir, 'deep/er/f'), 'from a tar\n', { mode: 0o640 });
  const tar = (await execa('tar', ['-c', '-C', srcDir, '.'], { encoding: 'buffer' })).stdout;
  await sh('tar', 'mkdir -p /in');
  const i = await execa(BIN, ['--root', root, 'cp', '-', 'tar:/in'], { input: tar, reject: false });
  assert.is(i.exitCode, 0, String(i.stderr));
  assert.is(await sh('tar', 'cat /in/deep/er/f; stat -c %a /in/deep/er/f'), 'from a tar\n640\n');
  // As people type it: tar's whole output is read, so tar never sees a broken pipe.
  await sh('tar', 'mkdir -p /in2');
  const piped = await execa(
    'bash',
    ['-o', 'pipefail', '-c', `tar -c -C ${srcDir} . | ${BIN} --root ${root} cp - tar:/in2`],
    { reject: false },
  );
  assert.is(piped.exitCode, 0, String(piped.stderr));
  assert.is(await sh('tar', 'cat /in2/deep/er/f'), 'from a tar\n');
  const notDir = await execa(BIN, ['--root', root, 'cp', '-', 'tar:/srv/t/a'], { input: tar, reject: false });
  assert.match(String(notDir.stderr), /destination "tar:\/srv\/t\/a" must be a directory/);
  // An archive entry "../escape" is refused, nothing is written above the destination.
  const evil = path.join(tmp, 'evil');
  mkdirSync(path.join(evil, 'a'), { recursive: true });
  writeFileSync(path.join(evil, 'escape'), 'no\n');
  const evilTar = (await execa('tar', ['-c', '-P', '-C', path.join(evil, 'a'), '../escape'], { encoding: 'buffer' }))
    .stdout;
  const e = await execa(BIN, ['--root', root, 'cp', '-', 'tar:/in'], { input: evilTar, reject: false });
  assert.match(String(e.stderr), /is outside of/);
  assert.is(await sh('tar', 'test -e /escape && echo yes || echo no'), 'no\n');
  assert.is((await cli(['rm', '-f', 'tar'])).code, 0);
});

Cp("-L follows a symlink given as the source; relative host paths are the caller's", async () => {
  await detached('links', [], 'ln -s /etc/passwd /pw; sleep 600');
  await eventually('link made', async () => (await sh('links', 'readlink /pw')) === '/etc/passwd\n');
  const cwd = hostDir('cwd');
  const run = (args: string[]) => execa(BIN, ['--root', root, ...args], { cwd, reject: false });
  const plain = await run(['cp', 'links:/pw', 'pw-link']);
  assert.is(plain.exitCode, 0, String(plain.stderr));
  assert.is(readlinkSync(path.join(cwd, 'pw-link')), '/etc/passwd');
  const followed = await run(['cp', '-L', 'links:/pw', 'pw-file']);
  assert.is(followed.exitCode, 0, String(followed.stderr));
  assert.ok(lstatSync(path.join(cwd, 'pw-file')).isFile());
  assert.match(readFileSync(path.join(cwd, 'pw-file'), 'utf8'), /^root:x:0:0/);
  await fs.writeFile(path.join(cwd, 'target.txt'), 'behind a host link\n');
  await fs.symlink('target.txt', path.join(cwd, 'hostlink'));
  assert.is((await run(['cp', 'hostlink', 'links:/tmp/'])).exitCode, 0);
  assert.is(await sh('links', 'readlink /tmp/hostlink'), 'target.txt\n');
  assert.is((await run(['cp', '-L', 'hostlink', 'links:/tmp/followed'])).exitCode, 0);
  assert.is(await sh('links', 'cat /tmp/followed'), 'behind a host link\n');
  assert.is((await run(['cp', './target.txt', 'links:/tmp/rel.txt'])).exitCode, 0);
  assert.is(await sh('links', 'cat /tmp/rel.txt'), 'behind a host link\n');
  assert.is((await run(['cp', 'links:/tmp/rel.txt', '.'])).exitCode, 0);
  assert.ok(existsSync(path.join(cwd, 'rel.txt')));
  assert.is((await cli(['rm', '-f', 'links'])).code, 0);
});

Cp('the O_PATH walk (no openat2): same results, links kept inside the root', async () => {
  await detached('walk', ['-v', `${hostDir('walk-vol')}:/data`], 'ln -s / /escape; ln -s ../../.. /data/up; sleep 600');
  const env = { TSRUN_NO_OPENAT2: '1' };
  const src = path.join(tmp, 'walk-in.txt');
  writeFileSync(src, 'walked\n');
  const sentinel = `/tmp/tsrun-cp-walk-${process.pid}`;
  mkdirSync(sentinel, { recursive: true });
  try {
    await sh('walk', `mkdir -p ${sentinel}`);
    assert.is((await cli(['cp', src, `walk:/escape${sentinel}/f`], env)).code, 0);
    assert.not.ok(existsSync(path.join(sentinel, 'f')), 'not on the host');
    assert.is(await sh('walk', `cat ${sentinel}/f`), 'walked\n');
    assert.is(
      (await cli(['cp', src, `walk:/data/up${sentinel}/g`], env)).code,
      0,
      'a link out of a mount stays in the root',
    );
    assert.not.ok(existsSync(path.join(sentinel, 'g')));
    assert.is(await sh('walk', `cat ${sentinel}/g`), 'walked\n');
    assert.is((await cli(['cp', src, 'walk:/data/h'], env)).code, 0);
    assert.ok(existsSync(path.join(tmp, 'walk-vol', 'h')), 'mounts are crossed');
  } finally {
    rmSync(sentinel, { recursive: true, force: true });
  }
  assert.is((await cli(['rm', '-f', 'walk'])).code, 0);
  // Only this store's (its containers have no network; the network check is host-wide).
  assert.equal(
    (await leftovers(root)).filter((l) => /^(record|name|mount|state|runc) /.test(l)),
    [],
  );
});

Cp.run();
