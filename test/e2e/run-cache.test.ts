/**
 * bin/tsrun.js's run cache (dist/tsrun.cjs.run-cache): the first successful `run` writes it,
 * named for this build of the bundle (the build cache's first line); the next `run` uses it and
 * leaves it as it is; one named for another build, or one this V8 rejects, is written again by
 * the next successful `run`; a failed `run` and the other verbs write none, and every command
 * works whatever the file holds. Runs in this checkout's dist/ (the launcher looks beside
 * itself); the file that was there before is put back.
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN, tsrun } from './cli.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runDir } from './containers.js';

const R = suite('e2e run cache');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-run-cache-'));
const root = path.join(tmp, 'root');
const bundle = path.resolve(BIN, '../../dist/tsrun.cjs');
const runCache = `${bundle}.run-cache`;
let saved: Buffer | undefined;
let reg: TestRegistry;
let IMAGE = '';

R.before(async () => {
  saved = existsSync(runCache) ? readFileSync(runCache) : undefined;
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/cache', 'latest');
  IMAGE = `${reg.host}/e2e/cache`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
R.after(async () => {
  if (saved) writeFileSync(runCache, saved);
  else rmSync(runCache, { force: true });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

readFileSync(`${bundle}.cache`)
  .subarray(0, readFileSync(`${bundle}.cache`).indexOf(10))
  .toString();
const firstLine = (b: Buffer) => b.subarray(0, b.indexOf(10)).toString();
/** The build's cache names this build of the bundle in its first line, as the run cache must. */
const key = () => firstLine(readFileSync(`${bundle}.cache`));
const run = (...cmd: string[]) => tsrun(['run', '--rm', '--network', 'none', IMAGE, ...cmd], { root });

R('the first successful run writes it for this bundle; the next uses it and leaves it', async () => {
  rmSync(runCache, { force: true });
  assert.is((await tsrun(['ps', '-a'], { root })).code, 0);
  assert.not.ok(existsSync(runCache), 'ps wrote a run cache');
  const failed = await run('sh', '-c', 'exit 3');
  assert.is(failed.code, 3);
  assert.not.ok(existsSync(runCache), 'a failed run wrote a run cache');
  const r = await run('echo', 'one');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'one\n');
  const made = readFileSync(runCache);
  assert.is(firstLine(made), key());
  assert.ok(made.length > 100_000, `only ${made.length} bytes`);
  const at = statSync(runCache).mtimeMs;
  const again = await run('echo', 'two');
  assert.is(again.stdout, 'two\n');
  assert.is(statSync(runCache).mtimeMs, at, 'a fitting run cache was written again');
  assert.equal(readFileSync(runCache), made);
});

R('one for another build, or one this V8 rejects, is written again; the run works either way', async () => {
  for (const stale of [
    Buffer.from('ascii 1:2\nnot code at all'),
    Buffer.concat([Buffer.from(`${key()}\n`), Buffer.alloc(4096, 7)]),
  ]) {
    writeFileSync(runCache, stale);
    const r = await run('echo', 'still');
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'still\n');
    const now = readFileSync(runCache);
    assert.is(firstLine(now), key());
    assert.not.equal(now, stale);
    assert.ok(now.length > 100_000);
  }
});

R.run();
