/**
 * End to end: a damaged store file — images.json, a container's record, its exit file, a network
 * attachment record, the network's configuration list — truncated, not JSON or of the wrong
 * shape, is reported with its path and set aside (`<file>.corrupt-<time>`); every other command
 * (`ps -a`, `images`, `run --rm`, `rm`, `system prune`) goes on working, and prune removes what
 * the forgotten container left (mounts, state, name, network); its anonymous volume stays while the
 * container runs and is then `system prune --volumes`'s and `volume prune`'s to remove.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun, type CliResult } from './cli.js';
import { eventually, leftovers, networkLeftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const C = suite('e2e corrupt store files');
let reg: TestRegistry;
let IMAGE = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-corrupt-'));
const root = path.join(tmp, 'root');
const cli = (args: string[]) => tsrun(args, { root });

const DAMAGE: Record<string, (text: string) => string> = {
  truncated: (t) => t.slice(0, Math.floor(t.length / 2)),
  empty: () => '',
  'not JSON': () => 'garbage\u0000\u0001',
  'wrong shape': () => '{"version": 2, "hello": [1, 2]}\n',
};

function damage(file: string, how: (t: string) => string): void {
  writeFileSync(file, how(readFileSync(file, 'utf8')));
}

/** The warning names the file and where it went, and that file exists. */
function assertSetAside(r: CliResult, file: string): void {
  const m = new RegExp(
    `WARNING: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged \\(.*\\); set aside as (\\S+),`,
  ).exec(r.stderr);
  assert.ok(m, `no warning naming ${file} in: ${r.stderr}`);
  assert.ok(m[1]?.startsWith(`${file}.corrupt-`), m[1]);
  assert.ok(existsSync(m[1] ?? ''), `${m[1]} missing`);
  assert.not.ok(existsSync(file), `${file} still there`);
}

async function runsAndLists(): Promise<void> {
  const run = await cli(['run', '--rm', IMAGE, 'echo', 'still-runs']);
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'still-runs\n');
  for (const args of [['ps', '-a'], ['images']]) {
    const r = await cli(args);
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.not.match(r.stderr, 'WARNING', `${args.join(' ')} warned again: ${r.stderr}`);
  }
}

C.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', '1');
  IMAGE = `${reg.host}/e2e/busybox:1`;
});
C.after(async () => {
  await reg?.stop();
  await cli(['system', 'prune', '-a', '-f']);
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

for (const [kind, how] of Object.entries(DAMAGE)) {
  C(`images.json ${kind}: reported, set aside, every command works after a pull`, async () => {
    assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
    const file = path.join(root, 'images.json');
    damage(file, how);
    const images = await cli(['images']);
    assert.is(images.code, 0, images.stderr);
    assertSetAside(images, file);
    assert.not.match(images.stdout, 'e2e/busybox');
    assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
    await runsAndLists();
    for (const f of readdirSync(root).filter((n) => n.startsWith('images.json.corrupt-'))) rmSync(path.join(root, f));
  });
}

for (const [kind, how] of Object.entries(DAMAGE)) {
  C(`a stopped container's record ${kind}: ps warns, the rest works, prune removes what it left`, async () => {
    const made = await cli(['run', '--name', 'victim', '-p', '18231:80', IMAGE, 'true']);
    assert.is(made.code, 0, made.stderr);
    const keep = await cli(['run', '-d', '--name', 'bystander', IMAGE, 'sleep', '60']);
    assert.is(keep.code, 0, keep.stderr);
    const id = (await cli(['inspect', '-f', '{{.Id}}', 'victim'])).stdout.trim();
    const file = path.join(root, 'containers', id, 'container.json');
    damage(file, how);
    const ps = await cli(['ps', '-a']);
    assert.is(ps.code, 0, ps.stderr);
    assertSetAside(ps, file);
    assert.not.match(ps.stdout, 'victim');
    assert.match(ps.stdout, 'bystander');
    await runsAndLists();
    const prune = await cli(['system', 'prune', '-f']);
    assert.is(prune.code, 0, prune.stderr);
    assert.not.ok(existsSync(path.join(root, 'containers', id)), 'the forgotten container dir stayed');
    assert.not.ok(existsSync(path.join(root, 'containers', 'names', 'victim')), 'its name stayed');
    // The name is free again, and the bystander was left alone.
    assert.is((await cli(['run', '--rm', '--name', 'victim', IMAGE, 'true'])).code, 0);
    assert.is((await cli(['exec', 'bystander', 'true'])).code, 0);
    assert.is((await cli(['rm', '-f', 'bystander'])).code, 0);
    assert.equal(await leftovers(root), []);
  });
}

C("a running container's record damaged: prune stops it and removes everything it had", async () => {
  const made = await cli(['run', '-d', '--name', 'runner', '-p', '18232:80', IMAGE, 'sleep', '600']);
  assert.is(made.code, 0, made.stderr);
  const id = made.stdout.trim();
  const file = path.join(root, 'containers', id, 'container.json');
  damage(file, DAMAGE.truncated!);
  const ps = await cli(['ps']);
  assert.is(ps.code, 0, ps.stderr);
  assertSetAside(ps, file);
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.code, 0, prune.stderr);
  assert.equal(await leftovers(root), []);
});

C(
  "a damaged record's anonymous volume: kept while its container runs, then system prune --volumes / volume prune remove it",
  async () => {
    const anonymous = async () =>
      (await cli(['volume', 'ls', '-q', '--filter', 'label=com.docker.volume.anonymous'])).stdout
        .split('\n')
        .filter(Boolean);
    // Running: the volume is still mounted in it, so volume prune keeps it until prune stops it.
    const made = await cli([
      'run',
      '-d',
      '--name',
      'holder',
      '-v',
      '/data',
      IMAGE,
      'sh',
      '-c',
      'echo kept > /data/f; sleep 600',
    ]);
    assert.is(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    const [vol] = await anonymous();
    assert.ok(vol, 'no anonymous volume made');
    damage(path.join(root, 'containers', id, 'container.json'), DAMAGE.truncated!);
    assertSetAside(await cli(['ps']), path.join(root, 'containers', id, 'container.json'));
    assert.is((await cli(['volume', 'prune', '-f'])).code, 0);
    assert.equal(await anonymous(), [vol], 'volume prune removed a volume its running container has mounted');
    const prune = await cli(['system', 'prune', '-f', '--volumes']);
    assert.is(prune.code, 0, prune.stderr);
    assert.match(prune.stdout, `Deleted Volumes:\n${vol}\n`);
    assert.equal(await anonymous(), []);
    assert.equal(await leftovers(root), []);
    // Stopped: nothing refers to it any more; volume prune alone removes it.
    const stopped = await cli(['run', '--name', 'gone', '-v', '/data', IMAGE, 'true']);
    assert.is(stopped.code, 0, stopped.stderr);
    const sid = (await cli(['inspect', '-f', '{{.Id}}', 'gone'])).stdout.trim();
    const [svol] = await anonymous();
    damage(path.join(root, 'containers', sid, 'container.json'), DAMAGE['wrong shape']!);
    assert.is((await cli(['ps', '-a'])).code, 0);
    const vp = await cli(['volume', 'prune', '-f']);
    assert.is(vp.code, 0, vp.stderr);
    assert.match(vp.stdout, `Deleted Volumes:\n${svol}\n`);
    assert.is((await cli(['system', 'prune', '-f'])).code, 0);
    assert.equal(await leftovers(root), []);
  },
);

C('a damaged exit file: the container reads as exited, rm works', async () => {
  const made = await cli(['run', '-d', '--name', 'exiter', IMAGE, 'true']);
  assert.is(made.code, 0, made.stderr);
  const id = made.stdout.trim();
  const exit = path.join(runDir(root), id, 'exit');
  await eventually('the exit file', async () => Promise.resolve(existsSync(exit)));
  await eventually('the cleanup', async () => Promise.resolve(existsSync(path.join(runDir(root), id, 'cleaned'))));
  damage(exit, DAMAGE['not JSON']!);
  const ps = await cli(['ps', '-a', '--format', '{{.Names}} {{.Status}}']);
  assert.is(ps.code, 0, ps.stderr);
  assertSetAside(ps, exit);
  assert.match(ps.stdout, /exiter Exited \(0\)/);
  assert.is((await cli(['rm', 'exiter'])).code, 0);
  assert.equal(await leftovers(root), []);
});

for (const [kind, how] of Object.entries(DAMAGE)) {
  C(`a network attachment record ${kind}: rm -f tears down what it described`, async () => {
    const made = await cli(['run', '-d', '--name', 'netvictim', '-p', '18233:80', IMAGE, 'sleep', '600']);
    assert.is(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    const file = `/run/tsrun/net/containers/${id}.json`;
    damage(file, how);
    const rm = await cli(['rm', '-f', 'netvictim']);
    const corrupt = readdirSync('/run/tsrun/net/containers')
      .map((n) => path.join('/run/tsrun/net/containers', n))
      .filter((f) => f.startsWith(`${file}.corrupt-`));
    try {
      assert.is(rm.code, 0, rm.stderr);
      assertSetAside(rm, file);
      assert.is(corrupt.length, 1, 'one copy set aside, by rm -f itself');
    } finally {
      // Left behind, the set-aside copy would fail the next cases too.
      for (const f of corrupt) rmSync(f, { force: true });
    }
    assert.equal(await leftovers(root), []);
    // The port is free and the network works.
    const again = await cli([
      'run',
      '--rm',
      '-p',
      '18233:80',
      IMAGE,
      'sh',
      '-c',
      'ip -4 addr show eth0 | grep -c inet',
    ]);
    assert.is(again.code, 0, again.stderr);
    assert.is(again.stdout, '1\n');
  });
}

C('a network attachment damaged under a stopped container: system prune tears it down', async () => {
  const made = await cli(['run', '-d', '--name', 'swept', '-p', '18234:80', IMAGE, 'sleep', '600']);
  assert.is(made.code, 0, made.stderr);
  const id = made.stdout.trim();
  const file = `/run/tsrun/net/containers/${id}.json`;
  const saved = readFileSync(file, 'utf8');
  // The record as a crash between the network's creation and the container's would leave it.
  assert.is((await cli(['rm', '-f', 'swept'])).code, 0);
  writeFileSync(file, saved.slice(0, 40));
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.code, 0, prune.stderr);
  assertSetAside(prune, file);
  for (const f of readdirSync('/run/tsrun/net/containers'))
    if (f.includes('.corrupt-')) rmSync(path.join('/run/tsrun/net/containers', f));
  assert.equal(await networkLeftovers(), []);
});

C("the network's configuration list damaged: set aside and written again", async () => {
  const file = '/run/tsrun/net/tsrun.conflist';
  assert.is((await cli(['run', '--rm', IMAGE, 'true'])).code, 0);
  const before = readFileSync(file, 'utf8');
  writeFileSync(file, before.slice(0, 30));
  const r = await cli(['run', '--rm', '-p', '18235:80', IMAGE, 'echo', 'on-the-bridge']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'on-the-bridge\n');
  const moved = /set aside as (\S+),/.exec(r.stderr)?.[1];
  assert.ok(moved?.startsWith(`${file}.corrupt-`), r.stderr);
  assert.is(readFileSync(file, 'utf8'), before);
  rmSync(moved ?? '', { force: true });
  assert.equal(await leftovers(root), []);
});

C.run();
