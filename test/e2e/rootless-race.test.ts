/**
 * Issue 13's export/diff/commit race, rootless: a rootless container has no cgroup freezer, so
 * `export`, `diff` and `commit` always read it live — the fd walks (layers/diff.ts, app/diff.ts)
 * are all that keeps it in. The racer of test/e2e/fs-race.ts (a static program swapping /x/d
 * and /x/l, a directory and a symlink to a host directory with a marker file the rootless user
 * can read) runs as the rootless user, and the real CLI, as that user, diffs, exports and
 * commits it ROOTLESS_RACE_COUNT times each (default 20, ~15 s). A `marker` in a diff line, an
 * exported tar or a committed layer, or the marker's content in a tar, fails the test.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN } from './cli.js';
import { eventually } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { removeTree } from './cp-race.js';
import { buildRacer } from './fs-race.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { endRootlessSession, ensureUser } from '../helpers/users.js';

const R = suite('e2e rootless export/diff/commit race');
const USER = 'tsrun-rl';
let reg: TestRegistry;
let IMAGE = '';
let uid = 0;
let gid = 0;
let home = '';
let root = '';
const hostDir = mkdtempSync('/var/tmp/tsrun-rl-race-');

async function cli(args: string[]) {
  const r = await execa(BIN, ['--root', root, ...args], {
    reject: false,
    uid,
    gid,
    cwd: home,
    extendEnv: false,
    input: '',
    encoding: 'buffer',
    env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin', USER: String(uid) },
    timeout: 120_000,
  });
  return {
    code: r.exitCode ?? -1,
    stdout: Buffer.from(r.stdout as Uint8Array),
    stderr: Buffer.from(r.stderr as Uint8Array).toString(),
  };
}

function treeHasMarker(dir: string): boolean {
  for (const n of readdirSync(dir)) {
    if (n === 'marker') return true;
    const p = path.join(dir, n);
    if (lstatSync(p).isDirectory() && treeHasMarker(p)) return true;
  }
  return false;
}

R.before(async () => {
  ({ uid, gid, home } = ensureUser(USER, true));
  root = path.join(home, 'tsrun-race-store');
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'rl/busybox', '1');
  IMAGE = `${reg.host}/rl/busybox:1`;
});
R.after(async () => {
  await reg?.stop();
  endRootlessSession(uid);
  rmSync(hostDir, { recursive: true, force: true });
  await removeTree(root);
});

R('a rootless container swapping a directory for a symlink gets no host file into diff, export or commit', async () => {
  const count = Number(process.env.ROOTLESS_RACE_COUNT ?? 20);
  const secret = `HOSTSECRET-${randomBytes(8).toString('hex')}\n`;
  writeFileSync(path.join(hostDir, 'marker'), secret, { mode: 0o644 });
  chmodSync(hostDir, 0o755);
  const racer = buildRacer(hostDir);
  const pulled = await cli(['pull', '-q', IMAGE]);
  assert.is(pulled.code, 0, pulled.stderr);
  const run = await cli([
    'run',
    '-d',
    '--name',
    'rlracer',
    '--network',
    'none',
    '-v',
    `${racer}:/racer:ro`,
    IMAGE,
    'sh',
    '-c',
    `mkdir -p /x/d; ln -s ${hostDir} /x/l; exec /racer`,
  ]);
  assert.is(run.code, 0, run.stderr);
  const leaks = { diff: 0, export: 0, commit: 0 };
  let failed = 0;
  try {
    await eventually('the racer runs', async () => (await cli(['exec', 'rlracer', 'test', '-L', '/x/l'])).code === 0);
    const layers = path.join(root, 'layers');
    const leaking = new Set<string>();
    for (let i = 0; i < count; i++) {
      const d = await cli(['diff', 'rlracer']);
      if (d.code !== 0) failed++;
      if (
        d.stdout
          .toString()
          .split('\n')
          .some((l) => l.endsWith('/marker'))
      )
        leaks.diff++;
      const e = await cli(['export', 'rlracer']);
      if (e.code !== 0) failed++;
      if (e.stdout.includes(secret) || /(^|\0)x\/[dl]\/marker\0/.test(e.stdout.toString('latin1'))) leaks.export++;
      const c = await cli(['commit', 'rlracer']);
      if (c.code !== 0) failed++;
      for (const l of readdirSync(layers)) {
        const x = path.join(layers, l, 'diff', 'x');
        if (!leaking.has(l) && existsSync(x) && treeHasMarker(x)) {
          leaking.add(l);
          leaks.commit++;
        }
      }
    }
    console.log(`  rootless race: ${count} each, ${JSON.stringify(leaks)} leaks, ${failed} failed`);
    assert.equal(leaks, { diff: 0, export: 0, commit: 0 });
    assert.ok(failed < 3 * count, 'every operation failed: nothing was raced');
  } finally {
    await cli(['rm', '-f', 'rlracer']);
  }
});

R.run();
