/**
 * End to end: `tsrun build`'s Docker-compatible flags and inputs (issue 22), with the real CLI
 * and real runc: COPY keeps hard links (one inode in the image, as seen from a container and in
 * the exported tar); `build -` with a tar context (gzip) and with a Dockerfile on stdin;
 * `--iidfile`; `-o type=local` / `type=tar` / `-` (a tar on stdout, progress on stderr);
 * `--progress quiet`; the lowercase `dockerfile` fallback; COPY --link; the legacy flags old CI
 * scripts pass; and, in RUN steps, `--add-host`, `--shm-size` and `--ulimit`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const B = suite('e2e build flags');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-build-flags-'));
const root = path.join(tmp, 'root');
const ctx = path.join(tmp, 'ctx');
let reg: TestRegistry;

const cli = (args: string[], input?: string) => tsrun(args, { root, input, env: { HOME: tmp } });

B.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'base/busybox', '1', { Env: ['PATH=/bin'], Cmd: ['sh'] });
  mkdirSync(path.join(ctx, 'sub'), { recursive: true });
  writeFileSync(path.join(ctx, 'a.txt'), 'linked\n');
  linkSync(path.join(ctx, 'a.txt'), path.join(ctx, 'sub', 'b.txt'));
  writeFileSync(path.join(ctx, 'c.txt'), 'alone\n');
  writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${reg.host}/base/busybox:1\nCOPY . /x/\n`);
});
B.after(async () => {
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

B('COPY keeps hard links: one inode in the image, a hardlink entry in its tar; --iidfile names the image', async () => {
  const iid = path.join(tmp, 'iid');
  const r = await cli(['build', '--iidfile', iid, '-t', 'links', ctx]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  const id = readFileSync(iid, 'utf8');
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.is((await cli(['image', 'inspect', '-f', '{{.Id}}', 'links'])).stdout.trim(), id);
  const st = await cli([
    'run',
    '--rm',
    '--network',
    'none',
    'links',
    'stat',
    '-c',
    '%i %h',
    '/x/a.txt',
    '/x/sub/b.txt',
    '/x/c.txt',
  ]);
  assert.is(st.code, 0, st.stderr);
  const [a, b, c] = st.stdout.trim().split('\n');
  assert.is(a, b, 'a.txt and sub/b.txt are one inode');
  assert.match(a as string, / 2$/);
  assert.match(c as string, / 1$/);
  // The exported tar has the second name as a hard link to the first.
  const tarFile = path.join(tmp, 'links.tar');
  const o = await cli(['build', '-q', '--output', `type=tar,dest=${tarFile}`, ctx]);
  assert.is(o.code, 0, o.stderr);
  const list = execFileSync('tar', ['-tvf', tarFile], { encoding: 'utf8' });
  assert.match(list, /^h.* \.\/x\/sub\/b\.txt link to \.\/x\/a\.txt$/m);
  assert.equal(await leftovers(root), []);
});

B('the cache key sees hard links: the same files unlinked make a new layer', async () => {
  const other = path.join(tmp, 'ctx-unlinked');
  execFileSync('cp', ['-r', ctx, other]); // cp -r without -a: no links kept
  assert.is(lstatSync(path.join(other, 'a.txt')).nlink, 1);
  const r = await cli(['build', '-t', 'unlinked', other]);
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stdout, /Step 2\/2 : COPY \. \/x\/\n ---> Using cache/);
});

B('-o type=local,dest=DIR writes the filesystem; -o - writes a tar to stdout and the steps to stderr', async () => {
  const dest = path.join(tmp, 'out');
  const r = await cli(['build', '-o', `type=local,dest=${dest}`, ctx]);
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(path.join(dest, 'x', 'c.txt'), 'utf8'), 'alone\n');
  assert.ok(lstatSync(path.join(dest, 'bin', 'busybox')).isFile());
  assert.is(lstatSync(path.join(dest, 'x', 'a.txt')).ino, lstatSync(path.join(dest, 'x', 'sub', 'b.txt')).ino);
  const t = await cli(['build', '-o', '-', ctx]);
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stderr, /^Step 2\/2 : COPY \. \/x\/$/m);
  assert.match(t.stderr, /^Successfully built [0-9a-f]{12}$/m);
  assert.is(t.stdout.slice(257, 262), 'ustar', 'stdout is a tar');
  const bad = await cli(['build', '-o', 'type=registry', ctx]);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /invalid --output "type=registry"/);
});

B('build - reads a gzipped tar context (with -f inside it) or a Dockerfile with an empty context', async () => {
  writeFileSync(
    path.join(ctx, 'Other.dockerfile'),
    `FROM ${reg.host}/base/busybox:1\nCOPY c.txt /c\nCMD ["cat", "/c"]\n`,
  );
  try {
    const tgz = execFileSync('tar', ['-C', ctx, '-czf', '-', '.']);
    const r = await tsrun(['build', '-t', 'fromtar', '-f', 'Other.dockerfile', '-'], {
      root,
      input: tgz as unknown as string,
      env: { HOME: tmp },
    });
    assert.is(r.code, 0, r.stderr + r.stdout);
    const run = await cli(['run', '--rm', '--network', 'none', 'fromtar']);
    assert.is(run.stdout, 'alone\n');
  } finally {
    rmSync(path.join(ctx, 'Other.dockerfile'));
  }
  const d = await cli(['build', '-q', '-'], `FROM ${reg.host}/base/busybox:1\nLABEL from=stdin\n`);
  assert.is(d.code, 0, d.stderr);
  const label = await cli(['image', 'inspect', '-f', '{{index .Config.Labels "from"}}', d.stdout.trim()]);
  assert.is(label.stdout.trim(), 'stdin');
  // COPY from an empty context finds nothing.
  const none = await cli(['build', '-'], `FROM ${reg.host}/base/busybox:1\nCOPY a.txt /\n`);
  assert.is(none.code, 1);
  assert.match(none.stderr, /a\.txt/);
});

B(
  'a lowercase dockerfile is used when there is no Dockerfile; COPY --link, --progress and the legacy flags are accepted',
  async () => {
    const lower = path.join(tmp, 'lower');
    mkdirSync(lower);
    writeFileSync(path.join(lower, 'dockerfile'), 'FROM scratch\nCOPY --link f /f\n');
    writeFileSync(path.join(lower, 'f'), 'f\n');
    const r = await cli([
      'build',
      '--rm',
      '--force-rm',
      '--load',
      '--cache-from',
      'whatever:1',
      '--progress',
      'plain',
      '-t',
      'lower',
      lower,
    ]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Step 2\/2 : COPY --link f \/f$/m);
    const q = await cli(['build', '--progress', 'quiet', lower]);
    assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const bad = await cli(['build', '--progress', 'fancy', lower]);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /invalid --progress "fancy"/);
    rmSync(path.join(lower, 'dockerfile'));
    const none = await cli(['build', lower]);
    assert.match(none.stderr, /Dockerfile: no such file/);
    assert.not.ok(existsSync(path.join(lower, 'Dockerfile')));
  },
);

B('RUN steps get --add-host lines, the --shm-size and the --ulimit', async () => {
  const dir = path.join(tmp, 'limits');
  mkdirSync(dir);
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM ${reg.host}/base/busybox:1\nRUN grep db /etc/hosts; ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1\n`,
  );
  const r = await cli([
    'build',
    '--no-cache',
    '--network',
    'none',
    '--add-host',
    'db:10.1.2.3',
    '--add-host',
    'v6=[::1]',
    '--shm-size',
    '32m',
    '--ulimit',
    'nofile=512:1024',
    dir,
  ]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^10\.1\.2\.3\tdb$/m);
  assert.match(r.stdout, /^512\n1024$/m);
  assert.match(r.stdout, /^shm\s+32768\s/m);
  const bad = await cli(['build', '--ulimit', 'files=1', dir]);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /invalid ulimit "files=1"/);
  assert.equal(await leftovers(root), []);
});

B.run();
