/**
 * COPY/ADD's source selection and writes, against hostile contexts and images: nothing outside
 * the context is read, nothing outside the image root is written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applySources, collectSources, hashSources, loadDockerignore, segmentRegExp } from '../../src/build/copy.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-copy-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function context(): string {
  const c = path.join(tmp, `ctx${n++}`);
  mkdirSync(path.join(c, 'src', 'lib'), { recursive: true });
  writeFileSync(path.join(c, 'package.json'), '{}');
  writeFileSync(path.join(c, 'package-lock.json'), '{}');
  writeFileSync(path.join(c, 'src', 'index.js'), 'main');
  writeFileSync(path.join(c, 'src', 'lib', 'a.js'), 'a');
  writeFileSync(path.join(c, 'secret.env'), 'TOKEN=x');
  symlinkSync('/etc/passwd', path.join(c, 'pw'));
  symlinkSync('lib/a.js', path.join(c, 'src', 'alias.js'));
  for (const p of ['src/lib/a.js', 'src/index.js', 'package.json', 'package-lock.json'])
    utimesSync(path.join(c, p), 1600000000, 1600000000);
  return c;
}
function image(): string {
  const r = path.join(tmp, `img${n++}`);
  mkdirSync(path.join(r, 'etc'), { recursive: true });
  symlinkSync('/etc', path.join(r, 'escape'));
  return r;
}

test('Go-style glob segments', () => {
  assert.ok(segmentRegExp('package*.json').test('package-lock.json'));
  assert.not.ok(segmentRegExp('*.js').test('a/b.js'));
  assert.ok(segmentRegExp('[!a]?.txt').test('bc.txt'));
});

test('globs and directories; .dockerignore excludes, also inside copied directories', async () => {
  const c = context();
  writeFileSync(path.join(c, '.dockerignore'), '# comment\n*.env\nsrc/lib\n');
  const root = { dir: c, ...(await loadDockerignore(c)) };
  const srcs = await collectSources(root, ['package*.json', 'src'], 'COPY');
  assert.equal(
    srcs.map((s) => s.name),
    ['package-lock.json', 'package.json', 'src'],
  );
  assert.equal(
    srcs[2]!.entries.map((e) => e.rel),
    ['', 'alias.js', 'index.js'],
  );
  await collectSources(root, ['secret.env'], 'COPY').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /excluded by \.dockerignore/),
  );
  await collectSources(root, ['*.nothing'], 'COPY').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /no source files/),
  );
});

test('.. and symlinks cannot leave the context', async () => {
  const c = context();
  writeFileSync(path.join(tmp, 'outside.txt'), 'host file');
  // "../outside.txt" is cleaned to "outside.txt" inside the context: not found.
  await collectSources({ dir: c }, ['../outside.txt'], 'COPY').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /not found in the build context/),
  );
  // pw -> /etc/passwd resolves inside the context (no etc/passwd there).
  await collectSources({ dir: c }, ['pw'], 'COPY').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /not found/),
  );
});

test('a directory copies its contents; files keep mtimes, owners become 0:0 or --chown; links stay links', async () => {
  const c = context();
  const rootfs = image();
  const srcs = await collectSources({ dir: c }, ['src'], 'COPY');
  await applySources(rootfs, srcs, { dest: 'app/', workdir: '/srv', what: 'COPY', owner: { uid: 1000, gid: 50 } });
  const f = statSync(path.join(rootfs, 'srv/app/lib/a.js'));
  assert.equal([f.uid, f.gid, f.mtimeMs], [1000, 50, 1600000000_000]);
  assert.is(readlinkSync(path.join(rootfs, 'srv/app/alias.js')), 'lib/a.js');
  assert.is(statSync(path.join(rootfs, 'srv/app')).mode & 0o777, 0o755);
});

test('a destination through an image symlink stays inside the root', async () => {
  const c = context();
  const rootfs = image();
  const srcs = await collectSources({ dir: c }, ['package.json'], 'COPY');
  // /escape -> /etc in the image: the copy lands in <root>/etc, never the host's /etc.
  await applySources(rootfs, srcs, { dest: '/escape/tsrun-copy-test.json', workdir: '/', what: 'COPY' });
  assert.ok(existsSync(path.join(rootfs, 'etc', 'tsrun-copy-test.json')));
  assert.not.ok(existsSync('/etc/tsrun-copy-test.json'));
  assert.ok(lstatSync(path.join(rootfs, 'escape')).isSymbolicLink());
});

test('several sources need a directory destination; the content hash ignores mtimes but not bytes', async () => {
  const c = context();
  const srcs = await collectSources({ dir: c }, ['package*.json'], 'COPY');
  await applySources(image(), srcs, { dest: '/app', workdir: '/', what: 'COPY' }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /must be a directory and end with a \//),
  );
  const h1 = await hashSources(srcs, false);
  utimesSync(path.join(c, 'package.json'), 1, 1);
  assert.is(await hashSources(await collectSources({ dir: c }, ['package*.json'], 'COPY'), false), h1);
  writeFileSync(path.join(c, 'package.json'), '{"x":1}');
  assert.is.not(await hashSources(await collectSources({ dir: c }, ['package*.json'], 'COPY'), false), h1);
});
test('hard links among the sources stay one inode; the hash tells linked from unlinked copies', async () => {
  const c = context();
  const unlinked = await hashSources(await collectSources({ dir: c }, ['src'], 'COPY'), false);
  rmSync(path.join(c, 'src', 'index.js'));
  writeFileSync(path.join(c, 'src', 'index.js'), 'a');
  const separate = await hashSources(await collectSources({ dir: c }, ['src'], 'COPY'), false);
  rmSync(path.join(c, 'src', 'index.js'));
  linkSync(path.join(c, 'src', 'lib', 'a.js'), path.join(c, 'src', 'index.js'));
  const srcs = await collectSources({ dir: c }, ['src'], 'COPY');
  const linked = await hashSources(srcs, false);
  assert.is.not(linked, separate, 'same bytes, but linked');
  assert.is.not(linked, unlinked);
  const img = image();
  await applySources(img, srcs, { dest: '/app/', workdir: '/', what: 'COPY', chmod: 0o640 });
  const a = lstatSync(path.join(img, 'app', 'lib', 'a.js'));
  const i = lstatSync(path.join(img, 'app', 'index.js'));
  assert.is(a.ino, i.ino);
  assert.is(a.nlink, 2);
  assert.is(a.mode & 0o777, 0o640);
  assert.is(lstatSync(path.join(c, 'src', 'lib', 'a.js')).nlink, 2, 'the context is untouched');
});

test.run();
