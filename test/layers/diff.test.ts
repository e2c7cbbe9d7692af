/**
 * diffTar: an overlay upper directory → layer tar, checked by reading it back with our reader,
 * by GNU tar, and by unpacking it again (the round trip a build does).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  linkSync,
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
import { diffTar } from '../../src/layers/diff.js';
import { readTar } from '../../src/layers/tar-reader.js';
import { unpackTar } from '../../src/layers/unpack.js';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-diff-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const OPTS = { overlayXattrPrefix: 'trusted.overlay.' as const };
const S_IFCHR = 0o020000;

async function collect(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of diffTar(dir, OPTS)) parts.push(c);
  return Buffer.concat(parts);
}

function upper(): string {
  const d = path.join(tmp, 'upper');
  mkdirSync(path.join(d, 'etc'), { recursive: true });
  writeFileSync(path.join(d, 'etc', 'motd'), 'hi\n');
  linkSync(path.join(d, 'etc', 'motd'), path.join(d, 'etc', 'motd.hard'));
  symlinkSync('/etc/motd', path.join(d, 'link'));
  native().mknod(path.join(d, 'etc', 'gone'), S_IFCHR | 0o600, 0, 0); // a deletion
  mkdirSync(path.join(d, 'var', 'cache'), { recursive: true });
  native().lsetxattr(path.join(d, 'var', 'cache'), 'trusted.overlay.opaque', Buffer.from('y'));
  writeFileSync(path.join(d, 'var', 'cache', 'new'), 'n');
  native().lsetxattr(path.join(d, 'etc', 'motd'), 'user.note', Buffer.from([0, 1, 2]));
  native().lsetxattr(path.join(d, 'etc', 'motd'), 'trusted.overlay.origin', Buffer.from('forged'));
  for (const p of ['etc/motd', 'var/cache/new', 'var/cache', 'var', 'etc'])
    utimesSync(path.join(d, p), 1700000000, 1700000000);
  return d;
}

test('whiteouts, opaque dirs, hardlinks, links and xattrs become OCI layer entries', async () => {
  const d = upper();
  const tar = await collect(d);
  const entries: { path: string; type: string; link: string; xattrs: string[] }[] = [];
  for await (const e of readTar(
    (async function* () {
      yield tar;
    })(),
  )) {
    entries.push({
      path: e.header.path,
      type: e.header.type,
      link: e.header.linkpath,
      xattrs: [...e.header.xattrs.keys()],
    });
    for await (const _ of e.body()) {
      /* drain */
    }
  }
  assert.equal(
    entries.map((e) => `${e.type} ${e.path}${e.link ? ` -> ${e.link}` : ''}`),
    [
      'dir etc/',
      'file etc/.wh.gone',
      'file etc/motd',
      'hardlink etc/motd.hard -> etc/motd',
      'symlink link -> /etc/motd',
      'dir var/',
      'dir var/cache/',
      'file var/cache/.wh..wh..opq',
      'file var/cache/new',
    ],
  );
  // overlayfs bookkeeping never leaves the machine; other xattrs do.
  assert.equal(entries.find((e) => e.path === 'etc/motd')?.xattrs, ['user.note']);
  // GNU tar reads it too.
  const listed = execFileSync('tar', ['-tvf', '-'], { input: tar }).toString();
  assert.match(listed, /etc\/motd\.hard link to etc\/motd/);
});

test('the same tree gives the same bytes; unpacking it restores overlay form', async () => {
  const d = path.join(tmp, 'upper');
  const a = await collect(d);
  const b = await collect(d);
  assert.ok(a.equals(b));
  const dest = path.join(tmp, 'round');
  mkdirSync(dest);
  await unpackTar(
    (async function* () {
      yield a;
    })(),
    dest,
    { preserveOwnership: true, overlayXattrPrefix: 'trusted.overlay.', canMknod: true },
  );
  const gone = statSync(path.join(dest, 'etc', 'gone'));
  assert.ok(gone.isCharacterDevice() && gone.rdev === 0, 'whiteout restored');
  assert.is(
    native()
      .lgetxattr(path.join(dest, 'var', 'cache'), 'trusted.overlay.opaque')
      ?.toString(),
    'y',
  );
  assert.is(statSync(path.join(dest, 'etc', 'motd')).ino, statSync(path.join(dest, 'etc', 'motd.hard')).ino);
  assert.is(readlinkSync(path.join(dest, 'link')), '/etc/motd');
  assert.is(statSync(path.join(dest, 'etc', 'motd')).mtimeMs, 1700000000_000);
});

test('unpacking with linkFrom links plain files from the tree the tar was made of; not those with overlay xattrs', async () => {
  const d = path.join(tmp, 'upper');
  const tar = await collect(d);
  const dest = path.join(tmp, 'linked');
  mkdirSync(dest);
  const r = await unpackTar(
    (async function* () {
      yield tar;
    })(),
    dest,
    { preserveOwnership: true, overlayXattrPrefix: 'trusted.overlay.', canMknod: true, linkFrom: d },
  );
  const plain = statSync(path.join(dest, 'var', 'cache', 'new'));
  assert.is(plain.ino, statSync(path.join(d, 'var', 'cache', 'new')).ino, 'a plain file is linked');
  assert.is(plain.mtimeMs, 1700000000_000);
  // etc/motd carries trusted.overlay.origin: written anew, so the forged xattr stays behind.
  assert.is.not(statSync(path.join(dest, 'etc', 'motd')).ino, statSync(path.join(d, 'etc', 'motd')).ino);
  assert.is(native().lgetxattr(path.join(dest, 'etc', 'motd'), 'trusted.overlay.origin'), null);
  // The diff id is the tar's, as without linkFrom.
  const plainDest = path.join(tmp, 'written');
  mkdirSync(plainDest);
  const w = await unpackTar(
    (async function* () {
      yield tar;
    })(),
    plainDest,
    { preserveOwnership: true, overlayXattrPrefix: 'trusted.overlay.', canMknod: true },
  );
  assert.is(r.diffId, w.diffId);
  assert.is(r.unpackedSize, w.unpackedSize);
});
test.run();
