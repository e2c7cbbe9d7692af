/**
 * src/snapshot/safe-root.ts and native-helpers/src/walk.c: paths resolve inside the root the
 * same way through openat2(RESOLVE_IN_ROOT) and through the O_PATH component walk that stands in
 * for it (TSRUN_NO_OPENAT2=1): ".." stops at the root, absolute and relative links are re-rooted,
 * loops fail, a final link is kept or followed as asked; one-name calls refuse "..".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, promises as fs, rmSync, statSync, lstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { closeFd, SafeRoot } from '../../src/snapshot/safe-root.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-saferoot-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** The inode a walk ends at, or the error code. */
function walkIno(r: SafeRoot, p: string, follow: boolean): string {
  try {
    const fd = r.walk(p, follow);
    try {
      return String(native().statx(fd, '', false).ino);
    } finally {
      closeFd(fd);
    }
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  }
}

test('openat2 and the component walk agree, and never leave the root', async () => {
  const root = path.join(tmp, 'root');
  const outside = path.join(tmp, 'outside');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.mkdir(path.join(root, 'a/b'), { recursive: true });
  await fs.mkdir(path.join(outside, 'etc'), { recursive: true });
  await fs.writeFile(path.join(root, 'etc/passwd'), 'inside\n');
  await fs.writeFile(path.join(outside, 'secret'), 'outside\n');
  await fs.symlink('/', path.join(root, 'escape'));
  await fs.symlink('../../../../../../..', path.join(root, 'a/b/up'));
  await fs.symlink('/etc/passwd', path.join(root, 'pw'));
  await fs.symlink('loop2', path.join(root, 'loop1'));
  await fs.symlink('loop1', path.join(root, 'loop2'));
  await fs.symlink('/proc/self/root', path.join(root, 'magic'));
  const ino = (p: string) => String(lstatSync(p).ino);
  const cases: [string, boolean, string][] = [
    ['/', true, ino(root)],
    ['/../../..', true, ino(root)],
    ['/escape/etc/passwd', true, ino(path.join(root, 'etc/passwd'))],
    ['/a/b/up/etc/passwd', true, ino(path.join(root, 'etc/passwd'))],
    [`/escape${outside}/secret`, true, 'ENOENT'],
    ['/a/b/../../etc/passwd', true, ino(path.join(root, 'etc/passwd'))],
    ['/pw', false, ino(path.join(root, 'pw'))],
    ['/pw', true, ino(path.join(root, 'etc/passwd'))],
    ['/loop1', true, 'ELOOP'],
    ['/etc/passwd/x', true, 'ENOTDIR'],
  ];
  const r = SafeRoot.open(root);
  try {
    for (const mode of ['openat2', 'walk']) {
      if (mode === 'walk') process.env.TSRUN_NO_OPENAT2 = '1';
      for (const [p, follow, want] of cases) assert.is(walkIno(r, p, follow), want, `${mode}: ${p}`);
      // A procfs magic link is never jumped through: openat2 refuses it, the walk re-roots its text.
      const magic = walkIno(r, '/magic/etc/passwd', true);
      assert.ok(
        magic === 'ELOOP' || magic === 'ENOENT' || magic === ino(path.join(root, 'etc/passwd')),
        `${mode}: magic link gave ${magic}`,
      );
      assert.is.not(magic, ino('/etc/passwd'));
    }
  } finally {
    delete process.env.TSRUN_NO_OPENAT2;
    r.close();
  }
  assert.ok(statSync(path.join(outside, 'secret')).isFile());
});

test('locate follows final links inside the root; one-name calls refuse ".." and "/"', async () => {
  const root = path.join(tmp, 'root2');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.symlink('/etc/nope', path.join(root, 'dangling'));
  const r = SafeRoot.open(root);
  try {
    const l = r.locate('/dangling', true);
    assert.is(l.path, '/etc/nope');
    assert.is(l.name, 'nope');
    assert.is(l.stat, undefined);
    closeFd(l.dir);
    const n = native();
    for (const bad of ['..', '.', 'a/b', '']) {
      try {
        n.mkdirat(r.fd, bad, 0o755);
        assert.unreachable(`mkdirat ${bad}`);
      } catch (err) {
        assert.is((err as NodeJS.ErrnoException).code, 'EINVAL', bad);
      }
    }
    assert.is(r.readText('/etc/missing'), undefined);
  } finally {
    r.close();
  }
});

test.run();
