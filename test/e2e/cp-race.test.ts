/**
 * Issue 13's regression test: a container racing a directory against a symlink to "/" never
 * makes `cp` read or write a host file, in either direction. CP_RACE_COUNT sets the number of
 * copies each way (default sized for CI, ~20 s); scripts/chaos/cp-race.ts runs a long one.
 * The same racer against export, diff and commit (test/e2e/fs-race.ts): FS_RACE_COUNT rounds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { pushBusybox } from './fixtures.js';
import { leftovers, runDir } from './containers.js';
import { raceCp, removeTree } from './cp-race.js';
import { raceFs } from './fs-race.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-cprace-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const Race = suite('e2e cp race');

Race.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest');
  IMAGE = `${reg.host}/e2e/busybox`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
Race.after(async () => {
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  await removeTree(tmp);
});

Race('a container swapping a directory for a symlink to / never makes cp read or write the host', async () => {
  const count = Number(process.env.CP_RACE_COUNT ?? 3000);
  const r = await raceCp({ root, image: IMAGE, count });
  console.log(`  cp race: ${JSON.stringify(r)}`);
  assert.is(r.hostReads, 0, `host file read ${r.hostReads} times in ${r.attempts.out} copies out`);
  assert.is(r.hostWrites, 0, `host file written ${r.hostWrites} times in ${r.attempts.in} copies in`);
  // Only this store's (its containers have no network; the network check is host-wide).
  assert.equal(
    (await leftovers(root)).filter((l) => /^(record|name|mount|state|runc) /.test(l)),
    [],
  );
});

Race('the same racer never gets a host file into export, diff or commit', async () => {
  const count = Number(process.env.FS_RACE_COUNT ?? 300);
  const r = await raceFs({ root, image: IMAGE, count });
  console.log(`  export/diff/commit race: ${JSON.stringify(r)}`);
  assert.equal(
    r.leaks,
    { export: 0, diff: 0, commit: 0 },
    `host marker in ${JSON.stringify(r.leaks)} of ${JSON.stringify(r.attempts)}`,
  );
  assert.ok(
    r.failed < r.attempts.export + r.attempts.diff + r.attempts.commit,
    'every operation failed: nothing was raced',
  );
  assert.equal(
    (await leftovers(root)).filter((l) => /^(record|name|mount|state|runc) /.test(l)),
    [],
  );
});

Race.run();
