/**
 * src/snapshot/rootfs-copy.ts: docker cp's SRC/DEST rules in both directions, and that a
 * container's symlinks never lead a copy outside its root.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, promises as fs, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsrunError } from '../../src/errors.js';
import { copyIn, copyOut, resolveInRoot } from '../../src/snapshot/rootfs-copy.js';
import { SafeRoot } from '../../src/snapshot/safe-root.js';

/** The root as copies get it: through a directory fd (closed when the suite ends). */
const opened: SafeRoot[] = [];
const R = (root: string) => {
  const r = SafeRoot.open(root);
  opened.push(r);
  return r;
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cp-'));
test.after(() => {
  for (const r of opened) r.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function setup() {
  const base = mkdtempSync(path.join(tmp, 'case-'));
  const root = path.join(base, 'root');
  const host = path.join(base, 'host');
  const sentinel = path.join(base, 'sentinel');
  for (const d of [root, host, sentinel, path.join(root, 'etc'), path.join(root, 'data/sub')])
    await fs.mkdir(d, { recursive: true });
  await fs.writeFile(path.join(root, 'etc/passwd'), 'container passwd\n');
  await fs.writeFile(path.join(root, 'data/a.txt'), 'a\n', { mode: 0o640 });
  await fs.writeFile(path.join(root, 'data/sub/b.txt'), 'b\n');
  await fs.symlink('/etc/passwd', path.join(root, 'pw'));
  await fs.writeFile(path.join(sentinel, 'secret'), 'host secret\n');
  return { base, root, host, sentinel };
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected an error');
}

test('resolveInRoot: .. stops at the root; absolute and relative links are re-rooted; loops fail', async () => {
  const { root, sentinel } = await setup();
  assert.is(await resolveInRoot(root, '/../../etc/passwd'), path.join(root, 'etc/passwd'));
  await fs.symlink('/', path.join(root, 'escape'));
  await fs.symlink(`../../../../../../../..${sentinel}`, path.join(root, 'rel'));
  assert.is(await resolveInRoot(root, '/escape/etc/passwd'), path.join(root, 'etc/passwd'));
  assert.is(await resolveInRoot(root, '/rel/secret'), path.join(root, sentinel, 'secret'));
  assert.is(await resolveInRoot(root, '/pw', { followFinal: false }), path.join(root, 'pw'));
  assert.is(await resolveInRoot(root, '/pw'), path.join(root, 'etc/passwd'));
  await fs.symlink('loop2', path.join(root, 'loop1'));
  await fs.symlink('loop1', path.join(root, 'loop2'));
  await rejects(resolveInRoot(root, '/loop1'), /too many levels of symbolic links/);
});

test('copyOut: file into dir, file to new name, dir into dir, dir/. contents, link copied as link', async () => {
  const { root, host } = await setup();
  await copyOut(R(root), '/data/a.txt', host);
  assert.is(await fs.readFile(path.join(host, 'a.txt'), 'utf8'), 'a\n');
  assert.is(statSync(path.join(host, 'a.txt')).mode & 0o777, 0o640);
  await copyOut(R(root), '/data/a.txt', path.join(host, 'renamed'));
  assert.ok(existsSync(path.join(host, 'renamed')));
  await copyOut(R(root), '/data', host);
  assert.is(await fs.readFile(path.join(host, 'data/sub/b.txt'), 'utf8'), 'b\n');
  await fs.mkdir(path.join(host, 'contents'));
  await copyOut(R(root), '/data/.', path.join(host, 'contents'));
  assert.ok(existsSync(path.join(host, 'contents/sub/b.txt')));
  await copyOut(R(root), '/data', path.join(host, 'newdir'));
  assert.ok(existsSync(path.join(host, 'newdir/a.txt')), "a missing DEST dir is created with SRC's contents");
  await copyOut(R(root), '/pw', path.join(host, 'pw'));
  assert.is(readlinkSync(path.join(host, 'pw')), '/etc/passwd');
});

test('copyOut: errors name the path; a container link never reads the host', async () => {
  const { root, host, sentinel } = await setup();
  await rejects(copyOut(R(root), '/nope', host), /no such file or directory in the container: \/nope/);
  await rejects(copyOut(R(root), '/data', path.join(root, 'data/a.txt')), /cannot copy a directory to a file/);
  await rejects(
    copyOut(R(root), '/data/a.txt', path.join(host, 'missing') + '/'),
    /destination directory does not exist/,
  );
  await fs.symlink(sentinel, path.join(root, 'hostdir'));
  await rejects(copyOut(R(root), '/hostdir/secret', host), /no such file or directory/);
  assert.not.ok(existsSync(path.join(host, 'secret')));
});

test('copyIn: lands inside the root through absolute, relative and final-component links', async () => {
  const { root, host, sentinel } = await setup();
  await fs.writeFile(path.join(host, 'f.txt'), 'from host\n');
  await fs.symlink('/', path.join(root, 'escape'));
  await copyIn(R(root), path.join(host, 'f.txt'), `/escape${sentinel}/`.replace(/\/$/, '') + '/f.txt').catch(() => {});
  assert.not.ok(existsSync(path.join(sentinel, 'f.txt')), 'nothing written on the host');
  await fs.mkdir(path.join(root, sentinel), { recursive: true });
  await copyIn(R(root), path.join(host, 'f.txt'), `/escape${sentinel}`);
  assert.is(await fs.readFile(path.join(root, sentinel, 'f.txt'), 'utf8'), 'from host\n');
  await fs.symlink(path.join(sentinel, 'secret'), path.join(root, 'out'));
  await copyIn(R(root), path.join(host, 'f.txt'), '/out');
  assert.is(
    await fs.readFile(path.join(sentinel, 'secret'), 'utf8'),
    'host secret\n',
    'the host file behind the link is untouched',
  );
  // A directory copied over an existing link inside the tree replaces the link.
  await fs.mkdir(path.join(host, 'tree/sub'), { recursive: true });
  await fs.writeFile(path.join(host, 'tree/sub/x'), 'x');
  await fs.mkdir(path.join(root, 'dst/tree'), { recursive: true });
  await fs.symlink(sentinel, path.join(root, 'dst/tree/sub'));
  await copyIn(R(root), path.join(host, 'tree'), '/dst');
  assert.ok(statSync(path.join(root, 'dst/tree/sub')).isDirectory());
  assert.not.ok(existsSync(path.join(sentinel, 'x')));
  assert.is(await fs.readFile(path.join(root, 'dst/tree/sub/x'), 'utf8'), 'x');
});

test('copyIn: missing source and file-over-dir errors', async () => {
  const { root, host } = await setup();
  await rejects(copyIn(R(root), path.join(host, 'nope'), '/data'), /no such file or directory/);
  await fs.mkdir(path.join(host, 'd'));
  await rejects(copyIn(R(root), path.join(host, 'd'), '/etc/passwd'), /cannot copy a directory to a file/);
});

test.run();
