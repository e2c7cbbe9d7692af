/**
 * Random ids and picks read straight from /dev/urandom, for the `run`/`create` path: a container
 * id (32 bytes, hex) and a random name. Importing node:crypto for those two calls loaded 15 of
 * Node's internal crypto modules on every `run` (docs/benchmarks.md, "run: the launcher, crypto
 * and a foreground runtime"). The kernel's urandom is what node:crypto's randomBytes reads too
 * (through OpenSSL's DRBG); these values are ids and names, not keys.
 *
 * Contract: `randomHex(n)` is 2n lowercase hex digits from n fresh bytes; `randomInt(max)` is
 * uniform on [0, max) (rejection sampling: no modulo bias) for 1 <= max <= 2^32. Synchronous;
 * a failure to read the device is a TsrunError (ERR_INTERNAL), never a weaker fallback.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { TsrunError } from '../errors.js';

/** `n` random bytes from /dev/urandom (`read` is a seam for tests). */
export function randomBytesSync(n: number, read: (buf: Buffer) => number = readUrandom): Buffer {
  const buf = Buffer.alloc(n);
  for (let got = 0; got < n;) {
    const r = read(buf.subarray(got));
    if (r <= 0) throw new TsrunError('ERR_INTERNAL', 'reading /dev/urandom: no bytes came');
    got += r;
  }
  return buf;
}

function readUrandom(buf: Buffer): number {
  let fd: number;
  try {
    fd = openSync('/dev/urandom', 'r');
  } catch (e) {
    throw new TsrunError('ERR_INTERNAL', `reading /dev/urandom: ${(e as Error).message}`, { cause: e });
  }
  try {
    return readSync(fd, buf, 0, buf.length, null);
  } finally {
    closeSync(fd);
  }
}

export function randomHex(n: number): string {
  return randomBytesSync(n).toString('hex');
}

/** Uniform on [0, max): a 32-bit draw is redrawn when it falls in the last, partial copy of the range. */
export function randomInt(max: number, read?: (buf: Buffer) => number): number {
  if (!Number.isInteger(max) || max < 1 || max > 2 ** 32)
    throw new TsrunError('ERR_INTERNAL', `randomInt: max must be an integer in [1, 2^32], not ${max}`);
  const limit = 2 ** 32 - (2 ** 32 % max);
  for (;;) {
    const v = randomBytesSync(4, read).readUInt32LE(0);
    if (v < limit) return v % max;
  }
}
