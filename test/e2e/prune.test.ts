/**
 * End to end: `system prune -f` never touches what is in use — another job's build step keeps
 * its network (root: the bridge; rootless: slirp4netns), whatever prune removes around it — and
 * what killed commands left under tmp/ goes once its process is gone (by `run` and by prune),
 * while a live process's work stays.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun, spawnTsrun } from './cli.js';
import { eventually, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureUser } from '../helpers/users.js';
import { sleep } from '../../src/util/concurrency.js';

const P = suite('e2e prune');
let reg: TestRegistry;
let IMAGE = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-prune-'));
const root = path.join(tmp, 'root');
const USER = 'tsrun-prune';
let user = { uid: 0, gid: 0, home: '' };

// The step lives 5 s and fails unless its network is still there at the end.
const DOCKERFILE = (iface: string) =>
  `FROM IMAGE\nRUN sleep 5 && ip link show ${iface} && ip route | grep -q default && echo network-kept\n`;

P.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', '1');
  IMAGE = `${reg.host}/e2e/busybox:1`;
  const u = ensureUser(USER, true, '700000-765535');
  user = { uid: u.uid, gid: u.gid, home: u.home };
});
P.after(async () => {
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
  const pause = `/tmp/tsrun-${user.uid}/pause.pid`;
  if (existsSync(pause)) {
    try {
      process.kill(Number((await import('node:fs')).readFileSync(pause, 'utf8')), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(`/tmp/tsrun-${user.uid}`, { recursive: true, force: true });
  rmSync(path.join(user.home, 'tsrun-store'), { recursive: true, force: true });
});

P('root: system prune -f during another build step leaves its bridge network alone', async () => {
  assert.is((await tsrun(['pull', '-q', IMAGE], { root })).code, 0);
  const ctx = path.join(tmp, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE('eth0').replace('IMAGE', IMAGE));
  const build = spawnTsrun(['build', '--no-cache', '-t', 'kept', ctx], { root, env: { PATH: process.env.PATH ?? '' } });
  await sleep(2500);
  const prune = await tsrun(['system', 'prune', '-f'], { root });
  assert.is(prune.code, 0, prune.stderr);
  const b = await build;
  assert.is(b.exitCode, 0, `${String(b.stdout)}${String(b.stderr)}`);
  assert.match(String(b.stdout), 'network-kept');
});

P('rootless: system prune -f during another build step leaves its slirp4netns alone', async () => {
  const store = path.join(user.home, 'tsrun-store');
  const cli = (args: string[]) =>
    execa(BIN, ['--root', store, ...args], {
      reject: false,
      uid: user.uid,
      gid: user.gid,
      cwd: user.home,
      extendEnv: false,
      input: '',
      env: { HOME: user.home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeout: 120_000,
    });
  assert.is((await cli(['pull', '-q', IMAGE])).exitCode, 0);
  const ctx = path.join(user.home, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE('tap0').replace('IMAGE', IMAGE));
  chownSync(ctx, user.uid, user.gid);
  const build = cli(['build', '--no-cache', '-t', 'kept', ctx]);
  await sleep(3000);
  const prune = await cli(['system', 'prune', '-f']);
  assert.is(prune.exitCode, 0, String(prune.stderr));
  const b = await build;
  assert.is(b.exitCode, 0, `${String(b.stdout)}${String(b.stderr)}`);
  assert.match(String(b.stdout), 'network-kept');
});

P('prune while containers are being made never takes one from the run making it', async () => {
  const runs = Array.from({ length: 6 }, () => tsrun(['run', '--rm', '--network', 'none', IMAGE, 'true'], { root }));
  let stop = false;
  const pruning = (async () => {
    let n = 0;
    while (!stop) {
      await tsrun(['container', 'prune', '-f'], { root });
      n++;
    }
    return n;
  })();
  const results = await Promise.all(runs);
  stop = true;
  assert.ok((await pruning) > 0);
  for (const r of results) assert.is(r.code, 0, r.stderr);
});

P('tmp/<pid>-… of a dead process is removed by the next run and by system prune; a live one stays', async () => {
  const t = path.join(root, 'tmp');
  const dead = async () => {
    const p = execa('true');
    await p;
    return `${p.pid}-blob-deadbeef`;
  };
  const live = `${process.pid}-blob-alive`;
  const d1 = await dead();
  for (const n of [d1, live]) writeFileSync(path.join(t, n), 'x'.repeat(1 << 20));
  const r = await tsrun(['run', '--rm', '--network', 'none', IMAGE, 'true'], { root });
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(t).sort(), [live], "run removed the dead pull's file only");
  const d2 = await dead();
  mkdirSync(path.join(t, d2, 'diff'), { recursive: true });
  const p = await tsrun(['system', 'prune', '-f'], { root });
  assert.is(p.code, 0, p.stderr);
  assert.equal(readdirSync(t), [live], 'prune removed the dead one');
  rmSync(path.join(t, live));
});

P(
  'rootless: system reset asks first, then removes every container (running ones too), the whole store and its run directory',
  async () => {
    const store = path.join(user.home, 'tsrun-store');
    const cli = (args: string[], input = '') =>
      execa(BIN, ['--root', store, ...args], {
        reject: false,
        uid: user.uid,
        gid: user.gid,
        cwd: user.home,
        extendEnv: false,
        input,
        env: { HOME: user.home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
        timeout: 120_000,
      });
    assert.is((await cli(['pull', '-q', IMAGE])).exitCode, 0);
    assert.is((await cli(['run', '-d', '--name', 'up', IMAGE, 'sleep', '60'])).exitCode, 0);
    // A file owned by a subordinate id, which the user cannot remove with rm.
    assert.is(
      (
        await cli([
          'run',
          '--name',
          'wrote',
          '--network',
          'none',
          '-u',
          '1000',
          IMAGE,
          'sh',
          '-c',
          'echo x > /tmp/mine',
        ])
      ).exitCode,
      0,
    );
    const no = await cli(['system', 'reset']);
    assert.is(no.exitCode, 0, String(no.stderr));
    assert.match(
      String(no.stdout),
      `WARNING! This will remove:\n        - all containers\n        - all images\n        - all build cache\n        - the root directory: "${store}"\n`,
    );
    assert.is(
      String((await cli(['ps', '-aq'])).stdout)
        .trim()
        .split('\n').length,
      2,
      'no answer: nothing removed',
    );
    const run = path.join(
      `/tmp/tsrun-${user.uid}`,
      readdirSync(`/tmp/tsrun-${user.uid}`).find((d) => /^[0-9a-f]{12}$/.test(d)) ?? 'none',
    );
    const yes = await cli(['system', 'reset', '-f']);
    assert.is(yes.exitCode, 0, String(yes.stderr));
    assert.is(existsSync(store), false, 'the store is gone');
    assert.is(existsSync(run), false, 'its run directory too');
    assert.is(String((await cli(['ps', '-aq'])).stdout), '');
    assert.is(String((await cli(['images', '-q'])).stdout), '');
    await eventually(
      'slirp4netns to be gone',
      async () => (await execa('pgrep', ['-u', String(user.uid), 'slirp4netns'], { reject: false })).exitCode === 1,
    );
    await execa('pgrep', ['-u', String(user.uid), '-f', 'sleep 60']).then(
      () => assert.unreachable('the container left running'),
      () => {},
    );
  },
);

P.run();
