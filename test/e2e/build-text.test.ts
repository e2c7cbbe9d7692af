/**
 * End to end: the text `tsrun build` prints, byte for byte (ids and the registry's address
 * aside): Docker's classic builder lines (`Step n/m`, ` ---> Running in`, ` ---> ID`,
 * ` ---> Using cache`), the base image's pull lines between them, the RUN step's own output,
 * the unused build-arg warning on stderr, ONBUILD triggers, and `-q`. The CLI draws these lines
 * from the build's events (src/cli/build-output.ts); this test holds them to what they were.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const T = suite('e2e build text');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-build-text-'));
const root = path.join(tmp, 'root');
const ctxDir = path.join(tmp, 'ctx');
let reg: TestRegistry;

/** Ids and digests vary from run to run (times, random container ids); the rest may not. */
const plain = (s: string) =>
  s
    .replaceAll(reg.host, 'REG')
    .replace(/sha256:[0-9a-f]{64}/g, 'DIGEST')
    .replace(/\b[0-9a-f]{64}\b/g, 'ID64')
    .replace(/\b[0-9a-f]{12}\b/g, 'ID12');

T.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/base', '1', {
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    OnBuild: ['ENV FROM_TRIGGER=1'],
  });
  mkdirSync(ctxDir);
  writeFileSync(path.join(ctxDir, 'a.txt'), 'a\n');
  writeFileSync(
    path.join(ctxDir, 'Dockerfile'),
    `FROM ${reg.host}/e2e/base:1\nARG USED=x\nRUN echo "out $USED" && sleep 0.3 && echo err >&2\nCOPY a.txt /a.txt\nENV K=v\n`,
  );
});
T.after(async () => {
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const args = ['build', '--network', 'none', '--build-arg', 'USED=y', '--build-arg', 'UNUSED=1', '-t', 'out:1', ctxDir];

T('a first build: steps, the pulled base, triggers, RUN output, the unused build-arg', async () => {
  const r = await tsrun(args, { root });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.fixture(
    plain(r.stdout),
    [
      'Step 1/5 : FROM REG/e2e/base:1',
      "Unable to find image 'REG/e2e/base:1' locally",
      'ID12: Pulling fs layer',
      'ID12: Pull complete',
      '# Executing 1 build trigger',
      ' ---> Running trigger: ENV FROM_TRIGGER=1',
      ' ---> ID12',
      'Step 2/5 : ARG USED=x',
      ' ---> ID12',
      'Step 3/5 : RUN echo "out $USED" && sleep 0.3 && echo err >&2',
      ' ---> Running in ID12',
      'out y',
      'err',
      ' ---> ID12',
      'Step 4/5 : COPY a.txt /a.txt',
      ' ---> ID12',
      'Step 5/5 : ENV K=v',
      ' ---> ID12',
      'Successfully built ID12',
      'Successfully tagged out:1',
      '',
    ].join('\n'),
  );
  assert.fixture(plain(r.stderr), '[Warning] One or more build-args [UNUSED] were not consumed\n');
});

T('a rebuild: every step from the cache', async () => {
  const r = await tsrun(args, { root });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.fixture(
    plain(r.stdout),
    [
      'Step 1/5 : FROM REG/e2e/base:1',
      '# Executing 1 build trigger',
      ' ---> Running trigger: ENV FROM_TRIGGER=1',
      ' ---> Using cache',
      ' ---> ID12',
      'Step 2/5 : ARG USED=x',
      ' ---> ID12',
      'Step 3/5 : RUN echo "out $USED" && sleep 0.3 && echo err >&2',
      ' ---> Using cache',
      ' ---> ID12',
      'Step 4/5 : COPY a.txt /a.txt',
      ' ---> Using cache',
      ' ---> ID12',
      'Step 5/5 : ENV K=v',
      ' ---> Using cache',
      ' ---> ID12',
      'Successfully built ID12',
      'Successfully tagged out:1',
      '',
    ].join('\n'),
  );
});

T('-q: only the id, and the warning on stderr', async () => {
  const r = await tsrun([...args.slice(0, 1), '-q', ...args.slice(1)], { root });
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.fixture(plain(r.stdout), 'DIGEST\n');
  assert.fixture(plain(r.stderr), '[Warning] One or more build-args [UNUSED] were not consumed\n');
});

T('nothing is left behind', async () => {
  assert.equal(await leftovers(root), []);
});

T.run();
