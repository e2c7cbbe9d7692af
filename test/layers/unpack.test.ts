/**
 * The tar reader and the unpacker on their own: fidelity against GNU tar, and hostile layers.
 * Every hostile case asserts the error code and that a sentinel directory next to the
 * destination stayed empty.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { cleanPath, unpackTar, type UnpackOptions } from '../../src/layers/unpack.js';
import { readTar } from '../../src/layers/tar-reader.js';
import { TsrunError } from '../../src/errors.js';
import { makeTar, type TarEntrySpec } from '../helpers/tar-writer.js';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-unpack-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const ROOT: UnpackOptions = { preserveOwnership: true, overlayXattrPrefix: 'trusted.overlay.', canMknod: true };

function fresh(): { dest: string; sentinel: string } {
  const base = path.join(tmp, `case${n++}`);
  const dest = path.join(base, 'dest');
  const sentinel = path.join(base, 'sentinel');
  mkdirSync(dest, { recursive: true });
  mkdirSync(sentinel);
  return { dest, sentinel };
}

/** Feed a tar in small odd-sized chunks, to exercise header/body boundaries. */
function chunked(buf: Buffer, size = 777): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function unpackEntries(entries: TarEntrySpec[], opts = ROOT) {
  const { dest, sentinel } = fresh();
  const tar = makeTar(entries);
  let error: any;
  let result;
  try {
    result = await unpackTar(chunked(tar), dest, opts);
  } catch (err) {
    error = err;
  }
  return { dest, sentinel, tar, error, result };
}

test('cleanPath never climbs above the root', () => {
  assert.is(cleanPath('../../etc/passwd'), 'etc/passwd');
  assert.is(cleanPath('/abs/./x//y/'), 'abs/x/y');
  assert.is(cleanPath('a/../../b'), 'b');
  assert.is(cleanPath('./'), '');
});

test('the test tar writer emits archives GNU tar reads, including pax long names and xattrs', () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const file = path.join(tmp, 'gnu.tar');
  writeFileSync(
    file,
    makeTar([
      { name: long, content: 'x' },
      { name: 'l', type: 'symlink', linkname: 't'.repeat(150) },
    ]),
  );
  const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
  assert.match(listing, long);
  assert.match(listing, 't'.repeat(150));
});

test('diff id is the sha256 of every byte, and all entry kinds are read', async () => {
  const { tar, result, error } = await unpackEntries([
    { name: 'a', content: 'hello' },
    { name: 'd/', type: 'dir' },
    { name: 's', type: 'symlink', linkname: 'a' },
  ]);
  assert.is(error, undefined);
  assert.is(result!.diffId, 'sha256:' + createHash('sha256').update(tar).digest('hex'));
  assert.is(result!.tarSize, tar.length);
  assert.is(result!.entries, 3);
  assert.is(result!.unpackedSize, 5);
});

test('fidelity: owners, setuid and sticky, mtimes, symlinks, hardlinks, devices, fifos, binary xattrs, long names', async () => {
  const cap = Buffer.from('0100000200000080000000000000000000000000', 'hex');
  const long = `deep/${'n'.repeat(150)}`;
  const { dest, error } = await unpackEntries([
    { name: 'bin/su', content: 'su', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'home/u/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750, mtime: 1600000000 },
    { name: 'home/u/f', content: 'f', uid: 1000, gid: 1000, mode: 0o640, mtime: 1500000000 },
    { name: 'home/big', content: 'b', uid: 3000000, gid: 3000001 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'abs', type: 'symlink', linkname: '/etc/os-release' },
    { name: 'bin/su2', type: 'hardlink', linkname: 'bin/su' },
    { name: 'dev/zero', type: 'char', devmajor: 1, devminor: 5, mode: 0o666 },
    { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 },
    { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    { name: 'bin/ping', content: 'p', xattrs: { 'security.capability': cap, 'user.note': 'hi' } },
    { name: long, content: 'long' },
  ]);
  assert.is(error, undefined, String(error));
  const su = statSync(path.join(dest, 'bin/su'));
  assert.is(su.mode & 0o7777, 0o4755);
  assert.is(statSync(path.join(dest, 'bin/su2')).ino, su.ino);
  const home = statSync(path.join(dest, 'home/u'));
  assert.equal([home.uid, home.gid, home.mode & 0o7777, home.mtimeMs / 1000], [1000, 1000, 0o750, 1600000000]);
  const f = statSync(path.join(dest, 'home/u/f'));
  assert.equal([f.uid, f.gid, f.mode & 0o777, f.mtimeMs / 1000], [1000, 1000, 0o640, 1500000000]);
  const big = statSync(path.join(dest, 'home/big'));
  assert.equal([big.uid, big.gid], [3000000, 3000001], 'ids beyond the octal field come from pax');
  assert.is(statSync(path.join(dest, 'tmp')).mode & 0o7777, 0o1777);
  assert.is(readlinkSync(path.join(dest, 'abs')), '/etc/os-release');
  const zero = statSync(path.join(dest, 'dev/zero'));
  assert.ok(zero.isCharacterDevice());
  assert.is(zero.rdev, (1 << 8) | 5);
  assert.ok(statSync(path.join(dest, 'dev/sda')).isBlockDevice());
  assert.ok(statSync(path.join(dest, 'run/fifo')).isFIFO());
  assert.equal(
    native().lgetxattr(path.join(dest, 'bin/ping'), 'security.capability'),
    cap,
    'binary xattr kept byte for byte',
  );
  assert.equal(native().lgetxattr(path.join(dest, 'bin/ping'), 'user.note'), Buffer.from('hi'));
  assert.is(readFileSync(path.join(dest, long), 'utf8'), 'long');
});

test('whiteouts become overlayfs whiteouts, never .wh. files', async () => {
  const { dest, error } = await unpackEntries([
    { name: 'etc/.wh.gone', content: '' },
    { name: 'var/lib/.wh..wh..opq', content: '' },
    { name: 'var/lib/kept', content: 'k' },
  ]);
  assert.is(error, undefined, String(error));
  const wh = statSync(path.join(dest, 'etc/gone'));
  assert.ok(wh.isCharacterDevice());
  assert.is(wh.rdev, 0);
  assert.equal(readdirSync(path.join(dest, 'etc')), ['gone']);
  assert.equal(native().lgetxattr(path.join(dest, 'var/lib'), 'trusted.overlay.opaque'), Buffer.from('y'));
});

test('an xattr the kernel refuses is a warning, not a failed pull', async () => {
  const warnings: string[] = [];
  const { error } = await unpackEntries(
    [{ name: 'f', content: 'x', xattrs: { 'security.capability': Buffer.from('ff', 'hex') } }],
    { ...ROOT, onWarning: (w) => warnings.push(w) },
  );
  assert.is(error, undefined);
  assert.match(warnings.join(), 'security.capability');
});

test('a layer cannot forge overlayfs metadata through xattrs', async () => {
  const warnings: string[] = [];
  const { dest, error } = await unpackEntries(
    [{ name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.redirect': '/etc' } }],
    { ...ROOT, onWarning: (w) => warnings.push(w) },
  );
  assert.is(error, undefined);
  assert.is(native().lgetxattr(path.join(dest, 'd'), 'trusted.overlay.redirect'), null);
  assert.match(warnings.join(), 'trusted.overlay.redirect');
});

test('a later entry of the same path replaces the earlier one (file over symlink is not followed)', async () => {
  const { dest, sentinel, error } = await unpackEntries([
    { name: 'x', type: 'symlink', linkname: '../sentinel/owned' },
    { name: 'x', content: 'replaced' },
  ]);
  assert.is(error, undefined);
  assert.is(readFileSync(path.join(dest, 'x'), 'utf8'), 'replaced');
  assert.equal(readdirSync(sentinel), []);
});

const hostile: Array<[string, (s: string) => TarEntrySpec[], string | undefined]> = [
  ['dotdot names stay inside', () => [{ name: '../../../sentinel/a', content: 'x' }], undefined],
  ['absolute names stay inside', (s) => [{ name: `${s}/abs`, content: 'x' }], undefined],
  [
    'write through a symlink to outside',
    (s) => [
      { name: 'l', type: 'symlink', linkname: s },
      { name: 'l/pwned', content: 'x' },
    ],
    'ERR_UNSAFE_LAYER',
  ],
  [
    'write through a relative symlink',
    () => [
      { name: 'l', type: 'symlink', linkname: '../../sentinel' },
      { name: 'l/pwned', content: 'x' },
    ],
    'ERR_UNSAFE_LAYER',
  ],
  [
    'symlink chain x -> ..',
    () => [
      { name: 'x', type: 'symlink', linkname: '..' },
      { name: 'x/x/escape', content: 'x' },
    ],
    'ERR_UNSAFE_LAYER',
  ],
  [
    'hardlink to a host file',
    () => [{ name: 'p', type: 'hardlink', linkname: '../../../../../../etc/passwd' }],
    'ERR_UNSAFE_LAYER',
  ],
  [
    'hardlink through a symlink dir',
    (s) => [
      { name: 'l', type: 'symlink', linkname: path.dirname(s) },
      { name: 'p', type: 'hardlink', linkname: 'l/sentinel' },
    ],
    'ERR_UNSAFE_LAYER',
  ],
  [
    'whiteout through a symlink',
    (s) => [
      { name: 'l', type: 'symlink', linkname: s },
      { name: 'l/.wh.x', content: '' },
    ],
    'ERR_UNSAFE_LAYER',
  ],
  ['a non-directory as root', () => [{ name: './', type: 'symlink', linkname: '/' }], 'ERR_UNSAFE_LAYER'],
];

for (const [label, entries, code] of hostile) {
  test(`hostile: ${label}`, async () => {
    const probe = fresh();
    const { dest, sentinel, error } = await unpackEntries(entries(probe.sentinel));
    const outside = path.join(path.dirname(dest), 'sentinel');
    assert.equal(readdirSync(outside), [], 'nothing written beside dest');
    assert.equal(readdirSync(probe.sentinel), [], 'nothing written at the absolute target');
    void sentinel;
    if (code) assert.is(error?.code, code, String(error));
    else assert.is(error, undefined, String(error));
  });
}

test('truncated and corrupt archives fail with ERR_LAYER', async () => {
  const tar = makeTar([{ name: 'f', content: 'x'.repeat(2000) }]);
  for (const bad of [tar.subarray(0, 1000), Buffer.concat([Buffer.from('garbage!'), tar.subarray(8)])]) {
    const { dest } = fresh();
    const err = await unpackTar(chunked(bad), dest, ROOT).then(
      () => undefined,
      (e) => e,
    );
    assert.is(err?.code, 'ERR_LAYER', String(err));
  }
});

test('buffered(): the whole body only when it is in the current chunk; entries after it start right', async () => {
  const tar = makeTar([
    { name: 'small', content: 'tiny' },
    { name: 'big', content: 'B'.repeat(3000) },
    { name: 'after', content: 'next' },
  ]);
  const seen: Array<[string, string, boolean]> = [];
  for await (const e of readTar(chunked(tar, 2048))) {
    const whole = e.buffered();
    let text = whole?.toString() ?? '';
    if (!whole) for await (const c of e.body()) text += c.toString();
    seen.push([e.header.path, text, whole !== undefined]);
  }
  assert.equal(seen, [
    ['small', 'tiny', true],
    ['big', 'B'.repeat(3000), false],
    ['after', 'next', true],
  ]);
});

test('a real tree: every entry GNU tar wrote comes back, with the same bytes', async () => {
  const src = '/usr/share/doc';
  const tar = execFileSync('tar', ['-C', '/usr/share', '-cf', '-', 'doc'], { maxBuffer: 1 << 30 });
  const gnuCount = execFileSync('tar', ['-tf', '-'], { input: tar, maxBuffer: 1 << 30, encoding: 'utf8' })
    .trim()
    .split('\n').length;
  let readerCount = 0;
  for await (const e of readTar(chunked(tar, 65536))) {
    readerCount++;
    void e;
  }
  assert.is(readerCount, gnuCount, 'the reader sees every entry GNU tar lists');
  const { dest } = fresh();
  const r = await unpackTar(chunked(tar, 65536), dest, ROOT);
  assert.is(r.entries, gnuCount);
  const unpackedCount = execFileSync('find', [path.join(dest, 'doc')], { maxBuffer: 1 << 30, encoding: 'utf8' })
    .trim()
    .split('\n').length;
  const hostCount = execFileSync('find', [src], { maxBuffer: 1 << 30, encoding: 'utf8' })
    .trim()
    .split('\n').length;
  assert.is(unpackedCount, hostCount);
  const diff = execFileSync('bash', ['-c', `diff -r --no-dereference ${src} ${path.join(dest, 'doc')} && echo same`], {
    encoding: 'utf8',
  });
  assert.match(diff, 'same');
});

test('regression (fuzzing): a symlink with an empty target is a typed layer error', async () => {
  const r = await unpackEntries([{ name: 'a', type: 'symlink', linkname: '' }]);
  assert.ok(r.error instanceof TsrunError, String(r.error));
  assert.is(r.error.code, 'ERR_LAYER');
  assert.match(r.error.message, 'empty target');
});

test('regression (fuzzing): a directory replaced by a symlink to a host path: no time is set through the link', async () => {
  const outside = path.join(tmp, `outside${n++}`);
  mkdirSync(outside);
  utimesSync(outside, 1000, 1000);
  const r = await unpackEntries([
    { name: 'a', type: 'dir' },
    { name: 'a', type: 'symlink', linkname: outside },
  ]);
  assert.is(r.error, undefined);
  assert.is(readlinkSync(path.join(r.dest, 'a')), outside);
  assert.is(statSync(outside).mtimeMs, 1_000_000, 'the host directory kept its time');
});

test('regression (fuzzing): a directory whose parent a later entry replaces by a file is not an error', async () => {
  const r = await unpackEntries([
    { name: 'a/a', type: 'dir' },
    { name: 'a', type: 'file', content: 'x' },
  ]);
  assert.is(r.error, undefined, String(r.error));
  assert.is(readFileSync(path.join(r.dest, 'a'), 'utf8'), 'x');
});

test.run();
