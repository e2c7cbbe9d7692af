/**
 * The layer fingerprint (store/verify.ts) is made by the native walk (fingerprintLines,
 * native-helpers/src/fingerprint.c) where it can, by the JavaScript walk elsewhere. Fingerprints
 * recorded by either must match the other's, so: for every tree, the native lines hash to what
 * the JavaScript walk gives, or the native walk declines (null) and the JavaScript walk decides.
 * Covered: every file type, modes with setuid/sticky bits, owners, kept and dropped xattrs, sort
 * order past U+FFFF (JavaScript sorts by UTF-16 code units, not bytes), names and link targets
 * that are not UTF-8, a trailing "/" on the root, and random trees (fast-check).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  linkSync,
  existsSync,
  lstatSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { fingerprintOf, fingerprintSync } from '../../src/store/verify.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fingerprint-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const root = process.getuid?.() === 0;

function nativeLines(dir: string): { fingerprint: string; entries: number } | null {
  const h = createHash('sha256');
  const entries = native().fingerprintLines(dir, (c) => h.update(c));
  return entries === null ? null : { fingerprint: `sha256:${h.digest('hex')}`, entries };
}

function fresh(): string {
  const d = path.join(tmp, `t${n++}`);
  mkdirSync(d);
  return d;
}

test('every kind of entry: the native lines are the JavaScript walk’s', async () => {
  const d = fresh();
  mkdirSync(path.join(d, 'dir/sub'), { recursive: true });
  writeFileSync(path.join(d, 'dir/file'), 'hello');
  writeFileSync(path.join(d, 'empty'), '');
  writeFileSync(path.join(d, 'su'), 'x');
  chmodSync(path.join(d, 'su'), 0o4755);
  mkdirSync(path.join(d, 'tmp'));
  chmodSync(path.join(d, 'tmp'), 0o1777);
  writeFileSync(path.join(d, 'none'), 'x');
  chmodSync(path.join(d, 'none'), 0);
  symlinkSync('/etc/os-release', path.join(d, 'abs'));
  symlinkSync('dir/file', path.join(d, 'rel'));
  symlinkSync('dangling/ü', path.join(d, 'dangling'));
  linkSync(path.join(d, 'dir/file'), path.join(d, 'hard'));
  execFileSync('mkfifo', [path.join(d, 'fifo')]);
  // Sort order: U+FF21 (one UTF-16 unit, 0xFF21) sorts after U+1F600 (units 0xD83D 0xDE00) in
  // JavaScript, before it in byte order; U+00E9 and "e" for the plain case.
  for (const name of ['\u{1F600}', '\uFF21', 'é', 'e', 'E', 'ab', 'a', 'a-b', 'a.b', 'a\u{10000}', 'a\uE000'])
    writeFileSync(path.join(d, 'dir', name), name);
  const x = native();
  x.lsetxattr(path.join(d, 'dir/file'), 'user.overlay.origin', Buffer.from([0, 1, 0xff]));
  x.lsetxattr(path.join(d, 'dir/file'), 'user.other', Buffer.from('dropped'));
  x.lsetxattr(path.join(d, 'dir/sub'), 'user.overlay.opaque', Buffer.from('y'));
  x.lsetxattr(path.join(d, 'dir/sub'), 'user.overlay.empty', Buffer.alloc(0));
  if (root) {
    x.mknod(path.join(d, 'whiteout'), 0o20000, 0, 0);
    x.mknod(path.join(d, 'null'), 0o20666, 1, 3);
    x.mknod(path.join(d, 'sda'), 0o60660, 8, 0);
    x.lsetxattr(path.join(d, 'tmp'), 'trusted.overlay.opaque', Buffer.from('y'));
    x.lsetxattr(
      path.join(d, 'su'),
      'security.capability',
      Buffer.from('0100000200000080000000000000000000000000', 'hex'),
    );
    lchownSync(path.join(d, 'dir/file'), 1000, 3000000);
    lchownSync(path.join(d, 'abs'), 12, 34);
  }
  const js = fingerprintSync(d);
  assert.equal(nativeLines(d), js);
  assert.equal(nativeLines(`${d}/`), fingerprintSync(`${d}/`), 'a trailing "/" on the root');
  assert.equal(await fingerprintOf(d), js);
});

test('names and link targets that are not UTF-8: the native walk declines, the JavaScript walk decides', async () => {
  const d = fresh();
  writeFileSync(path.join(d, 'ok'), 'x');
  symlinkSync(Buffer.from([0x2f, 0x74, 0xff, 0x6d]) as unknown as string, path.join(d, 'badlink'));
  assert.is(nativeLines(d), null);
  assert.equal(await fingerprintOf(d), fingerprintSync(d));

  const e = fresh();
  writeFileSync(Buffer.concat([Buffer.from(`${e}/`), Buffer.from([0x61, 0xc3])]) as unknown as string, 'x');
  assert.is(nativeLines(e), null);
  // The JavaScript walk cannot find such a name again: it fails, as it always did.
  let js: unknown;
  try {
    js = fingerprintSync(e);
  } catch (err) {
    js = (err as NodeJS.ErrnoException).code;
  }
  const of = await fingerprintOf(e).catch((err: NodeJS.ErrnoException) => err.code);
  assert.equal(of, js);
});

test('a missing root: null natively, the JavaScript walk’s ENOENT from fingerprintOf', async () => {
  const gone = path.join(tmp, 'gone');
  assert.not.ok(existsSync(gone));
  assert.is(nativeLines(gone), null);
  const err = await fingerprintOf(gone).catch((e: NodeJS.ErrnoException) => e);
  assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
});

test('random trees (fast-check): native lines = JavaScript lines', () => {
  const char = fc.constantFrom(
    'a',
    'B',
    'z',
    '0',
    '-',
    '.',
    '_',
    'é',
    'ß',
    '\uFF21',
    '\uE000',
    '\u{1F600}',
    '\u{10000}',
    ' ',
  );
  const name = fc.string({ unit: char, minLength: 1, maxLength: 6 }).filter((s) => s !== '.' && s !== '..');
  const node: fc.Arbitrary<{ name: string; kind: 'f' | 'd' | 'l'; mode: number; size: number }> = fc.record({
    name,
    kind: fc.constantFrom('f' as const, 'd' as const, 'l' as const),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    size: fc.integer({ min: 0, max: 300 }),
  });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), node), { maxLength: 25 }), (items) => {
      const d = fresh();
      const dirs = [d];
      for (const [parent, it] of items) {
        const p = path.join(dirs[parent % dirs.length] as string, it.name);
        if (lstatSync(p, { throwIfNoEntry: false })) continue;
        if (it.kind === 'd') {
          mkdirSync(p);
          chmodSync(p, it.mode | 0o700);
          dirs.push(p);
        } else if (it.kind === 'f') {
          writeFileSync(p, 'x'.repeat(it.size));
          chmodSync(p, it.mode);
        } else symlinkSync(it.name.repeat(1 + (it.size % 4)), p);
      }
      assert.equal(nativeLines(d), fingerprintSync(d));
    }),
    { numRuns: 150 },
  );
});

test.run();
