/**
 * Recognising a compressed archive by its first bytes, as `docker load`, `docker import` and
 * ADD do (gzip, zstd, bzip2, xz; anything else is taken as a plain tar), and a stream that
 * yields the decompressed bytes of an input whose compression is not known in advance; whether
 * bytes are a tar archive at all (ADD extracts only archives; `build -` takes a tar or a
 * Dockerfile).
 */
import { createReadStream, promises as fs } from 'node:fs';
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

/** A tar header block: the ustar magic, or (old v7 archives) a matching header checksum. */
export function isTarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.toString('ascii', 257, 262) === 'ustar') return true;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (b[i] as number);
  return (
    sum > 256 &&
    sum ===
      parseInt(
        b
          .toString('ascii', 148, 156)
          .replace(/[\0 ]+/g, ' ')
          .trim(),
        8,
      )
  );
}

/** The archive kind of a stream's first bytes (a compressed stream, or a plain tar), or undefined. */
export function archiveKindOf(head: Buffer): ArchiveCompression | undefined {
  const kind = sniffCompression(head);
  if (kind !== 'none') return kind;
  return isTarHeader(head) ? 'none' : undefined;
}

/**
 * ADD extracts local tar archives, plain or compressed (gzip, zstd, bzip2, xz), recognised by
 * content as Docker does: a compressed file that is not a tar inside is copied as it is.
 */
export async function archiveKind(file: string): Promise<ArchiveCompression | undefined> {
  const fh = await fs.open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(512);
    head = head.subarray(0, (await fh.read(head, 0, 512, 0)).bytesRead);
  } finally {
    await fh.close();
  }
  const kind = sniffCompression(head);
  if (kind === 'none') return isTarHeader(head) ? 'none' : undefined;
  // Look at the first block inside.
  const inner = decompress(createReadStream(file), kind);
  let first = Buffer.alloc(0);
  try {
    for await (const chunk of inner) {
      first = Buffer.concat([first, chunk as Buffer]);
      if (first.length >= 512) break;
    }
  } catch {
    return undefined;
  } finally {
    inner.destroy();
  }
  return isTarHeader(first) ? kind : undefined;
}
