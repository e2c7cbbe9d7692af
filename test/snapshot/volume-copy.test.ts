/**
 * Volume copy-up on its own (snapshot/volume-copy.ts): what is copied (owners, modes, times,
 * xattrs, links as links), when nothing is (a non-empty volume, a missing path, a file), and
 * that links in the image are resolved inside its root, never on the host.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyUp } from '../../src/snapshot/volume-copy.js';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-volcopy-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function fresh(name: string): string {
  const d = path.join(tmp, name);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  return d;
}

test('copies owners, modes, times, xattrs and links as links, the top directory included', async () => {
  const root = fresh('r1');
  const data = path.join(root, 'app', 'data');
  mkdirSync(path.join(data, 'sub'), { recursive: true });
  writeFileSync(path.join(data, 'f'), 'content', { mode: 0o640 });
  chownSync(path.join(data, 'f'), 1000, 1001);
  native().lsetxattr(path.join(data, 'f'), 'user.origin', Buffer.from('image'));
  utimesSync(path.join(data, 'f'), 1_600_000_000, 1_600_000_000);
  writeFileSync(path.join(data, 'sub', 'suid'), 'x', { mode: 0o755 });
  native().lsetxattr(path.join(data, 'sub', 'suid'), 'user.x', Buffer.from('1'));
  chownSync(path.join(data, 'sub'), 7, 8);
  symlinkSync('/etc/shadow', path.join(data, 'link'));
  chownSync(data, 1000, 1000);
  chmodSync(data, 0o750);
  chmodSync(path.join(data, 'sub', 'suid'), 0o4755);
  const vol = fresh('v1');
  const r = await copyUp(root, '/app/data', vol);
  assert.ok(r.copied);
  assert.is(r.entries, 4);
  const top = lstatSync(vol);
  assert.equal([top.uid, top.gid, top.mode & 0o7777], [1000, 1000, 0o750]);
  const f = lstatSync(path.join(vol, 'f'));
  assert.equal([f.uid, f.gid, f.mode & 0o7777, f.mtimeMs], [1000, 1001, 0o640, 1_600_000_000_000]);
  assert.is(native().lgetxattr(path.join(vol, 'f'), 'user.origin')?.toString(), 'image');
  assert.is(lstatSync(path.join(vol, 'sub', 'suid')).mode & 0o7777, 0o4755, 'setuid kept (set after the chown)');
  assert.is(
    native()
      .lgetxattr(path.join(vol, 'sub', 'suid'), 'user.x')
      ?.toString(),
    '1',
  );
  assert.equal([lstatSync(path.join(vol, 'sub')).uid, lstatSync(path.join(vol, 'sub')).gid], [7, 8]);
  assert.is(readlinkSync(path.join(vol, 'link')), '/etc/shadow');
  assert.ok(lstatSync(path.join(vol, 'link')).isSymbolicLink());
});

test('nothing is copied into a volume with content, from a missing path or from a file', async () => {
  const root = fresh('r2');
  mkdirSync(path.join(root, 'd'));
  writeFileSync(path.join(root, 'd', 'new'), 'image');
  writeFileSync(path.join(root, 'file'), 'x');
  const vol = fresh('v2');
  writeFileSync(path.join(vol, 'mine'), 'kept');
  assert.not.ok((await copyUp(root, '/d', vol)).copied);
  assert.equal(readdirSync(vol), ['mine']);
  const empty = fresh('v2e');
  assert.not.ok((await copyUp(root, '/missing/dir', empty)).copied);
  assert.not.ok((await copyUp(root, '/file', empty)).copied);
  assert.equal(readdirSync(empty), []);
});

test("links in the image resolve inside its root: an absolute one and one climbing out get the root's own files", async () => {
  const host = fresh('host-secret');
  writeFileSync(path.join(host, 'secret'), 'host');
  const root = fresh('r3');
  mkdirSync(path.join(root, path.relative('/', host)), { recursive: true });
  writeFileSync(path.join(root, path.relative('/', host), 'decoy'), 'image');
  mkdirSync(path.join(root, 'app'));
  symlinkSync(host, path.join(root, 'app', 'abs'));
  symlinkSync(`../../../../../../..${host}`, path.join(root, 'app', 'climb'));
  for (const name of ['abs', 'climb']) {
    const vol = fresh(`v3-${name}`);
    assert.ok((await copyUp(root, `/app/${name}`, vol)).copied, name);
    assert.equal(readdirSync(vol), ['decoy'], name);
    assert.is(readFileSync(path.join(vol, 'decoy'), 'utf8'), 'image');
  }
});

test.run();
