/**
 * Recognising a compressed archive by its first bytes, as `docker load`, `docker import` and
 * ADD do (gzip, zstd, bzip2, xz; anything else is taken as a plain tar), and a stream that
 * yields the decompressed bytes of an input whose compression is not known in advance.
 */
import { Readable } from 'node:stream';
import { decompress, type ArchiveCompression } from './compression.js';

const MAGIC: [ArchiveCompression, Buffer][] = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['bzip2', Buffer.from('BZh')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];

export function sniffCompression(head: Buffer): ArchiveCompression {
  return MAGIC.find(([, m]) => head.subarray(0, m.length).equals(m))?.[0] ?? 'none';
}

/** `input` decompressed as its first bytes say; `empty` is true when it had no bytes at all. */
export async function decompressSniffed(input: Readable): Promise<{ stream: Readable; empty: boolean }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const firsts: Buffer[] = [];
  let head = Buffer.alloc(0);
  while (head.length < 6) {
    const r = await it.next();
    if (r.done) break;
    firsts.push(r.value);
    head = Buffer.concat([head, r.value]);
  }
  const whole = Readable.from(
    (async function* () {
      yield* firsts;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    })(),
    { objectMode: false },
  );
  return { stream: decompress(whole, sniffCompression(head)), empty: head.length === 0 };
}
