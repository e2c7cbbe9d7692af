/** Small assertion helpers shared by the test suites. */
import * as assert from 'uvu/assert';
import type { Readable } from 'node:stream';
import { TsrunError } from '../../src/errors.js';

export async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Await `p`, expecting it to reject with a TsrunError of `code` (and a message matching `re`). */
export async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<TsrunError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TsrunError, String(err));
    assert.is((err as TsrunError).code, code, (err as Error).message);
    if (re) assert.match((err as Error).message, re);
    return err as TsrunError;
  }
  return assert.unreachable(`expected ${code}`) as never;
}
