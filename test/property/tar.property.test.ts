/**
 * Property-based tests (fast-check) for the layer tar reader and unpacker, which read untrusted
 * bytes from registries: random entry lists (hostile names, links pointing out, whiteouts) and
 * random mutations of valid archives (flipped bytes, truncation, spliced garbage). Properties: the
 * unpack resolves or rejects with a TsrunError — never another exception, never a hang — and
 * nothing is ever written outside the destination (a sentinel directory beside it stays empty,
 * the parent holds nothing new, and a host directory the links point at keeps its content and
 * its time). Found this way: an empty symlink target crashed the unpacker, and a directory
 * replaced by a symlink had its time set through the link (both kept in unpack.test.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { TsrunError } from '../../src/errors.js';
import { unpackTar, type UnpackOptions } from '../../src/layers/unpack.js';
import { makeTar, type TarEntrySpec } from '../helpers/tar-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-tar-prop-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
/** A host directory links in the layers point at: its content and its time must never change. */
const OUTSIDE = path.join(tmp, 'outside');
mkdirSync(OUTSIDE);
utimesSync(OUTSIDE, 1000, 1000);
const OPTS: UnpackOptions = { preserveOwnership: false, overlayXattrPrefix: 'user.overlay.', canMknod: false };
let n = 0;

const name = fc.oneof(
  fc.constantFrom(
    'a',
    'a/b',
    'dir/',
    'dir/file',
    '../escape',
    '../../etc/x',
    '/abs/file',
    './dot',
    'link/inside',
    'dir/.wh.file',
    'dir/.wh..wh..opq',
    '.wh.a',
    'a/../../b',
    '',
    '.',
    '//',
    'x'.repeat(150) + '/y',
  ),
  fc.string({ unit: fc.constantFrom('a', 'b', '/', '.', '..', '.wh.', ' ', '\0'), maxLength: 12 }),
);
const entry: fc.Arbitrary<TarEntrySpec> = fc.record(
  {
    name,
    type: fc.constantFrom('file', 'dir', 'symlink', 'hardlink', 'fifo'),
    content: fc.option(
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
      { nil: undefined },
    ),
    linkname: fc.option(
      fc.constantFrom('/', '..', '../..', '/etc/passwd', 'a', 'dir', '../outside', 'a/b', OUTSIDE, `${OUTSIDE}/f`),
      { nil: undefined },
    ),
    mode: fc.option(fc.integer({ min: 0, max: 0o7777 }), { nil: undefined }),
  },
  { requiredKeys: ['name', 'type'] },
) as fc.Arbitrary<TarEntrySpec>;

async function unpackChecked(bytes: Buffer): Promise<void> {
  const base = path.join(tmp, `c${n++}`);
  const dest = path.join(base, 'dest');
  const sentinel = path.join(base, 'sentinel');
  mkdirSync(dest, { recursive: true });
  mkdirSync(sentinel);
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 333) parts.push(bytes.subarray(i, i + 333));
  try {
    await unpackTar(Readable.from(parts), dest, OPTS);
  } catch (err) {
    if (!(err instanceof TsrunError))
      throw new Error(`not a TsrunError: ${String((err as Error)?.stack ?? err)}`, { cause: err });
  }
  assert.equal(readdirSync(sentinel), [], 'nothing written beside the destination');
  assert.equal(readdirSync(base).sort(), ['dest', 'sentinel'], 'nothing new in the parent');
  assert.equal(readdirSync(OUTSIDE), [], 'nothing written through a link to a host directory');
  assert.is(statSync(OUTSIDE).mtimeMs, 1_000_000, 'no time set through a link to a host directory');
  rmSync(base, { recursive: true, force: true });
}

test('random entry lists (hostile names and links): a result or a TsrunError, nothing outside', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(entry, { maxLength: 8 }), async (entries) => {
      await unpackChecked(makeTar(entries));
    }),
    { numRuns: 150 },
  );
});

test('mutated archives (flipped bytes, truncation, garbage): a result or a TsrunError, nothing outside', async () => {
  const mutation = fc.record({
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    garbage: fc.option(fc.uint8Array({ maxLength: 1200 }), { nil: undefined }),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 5 }), mutation, async (entries, m) => {
      let bytes = Buffer.from(makeTar(entries));
      for (const [at, v] of m.flips) bytes[at % bytes.length] = v;
      if (m.cut !== undefined) bytes = bytes.subarray(0, m.cut % (bytes.length + 1));
      if (m.garbage) bytes = Buffer.concat([bytes.subarray(0, 512), Buffer.from(m.garbage), bytes.subarray(512)]);
      await unpackChecked(bytes);
    }),
    { numRuns: 150 },
  );
});

test.run();
