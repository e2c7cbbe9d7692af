/**
 * util/random.ts: hex ids of the right length and alphabet that differ from call to call,
 * randomInt's range and uniformity (a chi-square bound loose enough never to fail by chance in
 * practice, tight enough to catch a modulo bias or an off-by-one), its rejection of the biased
 * tail (through the read seam, with chosen bytes), and short reads.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytesSync, randomHex, randomInt } from '../../src/util/random.js';
import { isTsrunError } from '../../src/errors.js';

test('randomHex(32) is 64 lowercase hex digits, fresh each call', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const h = randomHex(32);
    assert.match(h, /^[0-9a-f]{64}$/);
    seen.add(h);
  }
  assert.is(seen.size, 100);
});

test('randomInt stays in [0, max) and covers it evenly', () => {
  const max = 7;
  const n = 70_000;
  const counts = new Array<number>(max).fill(0);
  for (let i = 0; i < n; i++) {
    const v = randomInt(max);
    assert.ok(Number.isInteger(v) && v >= 0 && v < max, `out of range: ${v}`);
    counts[v] = (counts[v] ?? 0) + 1;
  }
  const expected = n / max;
  const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  // 6 degrees of freedom: P(chi2 > 35) is about 4e-6.
  assert.ok(chi2 < 35, `chi-square ${chi2.toFixed(1)} for ${counts.join(',')}`);
  assert.is(randomInt(1), 0);
});

test('randomInt redraws a value from the partial top of the 32-bit range', () => {
  // max 3: 2^32 % 3 = 1, so 0xffffffff is the one biased draw and must be skipped.
  const draws = [Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([5, 0, 0, 0])];
  let calls = 0;
  const read = (buf: Buffer) => (draws[calls++] ?? Buffer.alloc(4)).copy(buf);
  assert.is(randomInt(3, read), 5 % 3);
  assert.is(calls, 2);
});

test('randomBytesSync fills the buffer across short reads; a read of nothing is an error', () => {
  let calls = 0;
  const b = randomBytesSync(5, (buf) => {
    calls++;
    buf[0] = calls;
    return 1;
  });
  assert.equal([...b], [1, 2, 3, 4, 5]);
  try {
    randomBytesSync(4, () => 0);
    assert.unreachable('a read of 0 bytes must throw');
  } catch (e) {
    assert.ok(isTsrunError(e, 'ERR_INTERNAL'));
  }
});

test('randomInt rejects a max outside [1, 2^32]', () => {
  for (const bad of [0, -1, 1.5, 2 ** 32 + 1])
    assert.throws(
      () => randomInt(bad),
      (e: unknown) => isTsrunError(e, 'ERR_INTERNAL'),
    );
});

test.run();
