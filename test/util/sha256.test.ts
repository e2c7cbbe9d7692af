/** src/util/sha256.ts against node:crypto: block boundaries, UTF-8, random lengths. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { sha256Hex } from '../../src/util/sha256.js';

const want = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('known vectors and every length around the block and padding boundaries', () => {
  assert.is(sha256Hex(new Uint8Array()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.is(sha256Hex(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  for (let n = 0; n <= 200; n++) {
    const b = randomBytes(n);
    assert.is(sha256Hex(b), want(b), `length ${n}`);
  }
});

test('store roots as the run directory hashes them (UTF-8), and a large input', () => {
  for (const s of ['/var/lib/tsrun', '/tmp/tsrun-bench-list-x/tsrun', '/home/ünïcode/.local/share/tsrun', '/x/😀']) {
    const b = Buffer.from(s, 'utf8');
    assert.is(sha256Hex(b), want(b), s);
  }
  const big = randomBytes(1 << 20);
  assert.is(sha256Hex(big), want(big));
});

test.run();
