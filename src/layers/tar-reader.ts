/**
 * A streaming tar reader (POSIX.1-1988 ustar, POSIX.1-2001 pax, GNU long names and old GNU).
 *
 * Why our own: npm `tar`'s Pax class keeps only the keys it knows, dropping SCHILY.xattr.*
 * (so `security.capability` would be lost), and `tar-stream` decodes pax values as UTF-8, which
 * corrupts binary xattr values. Layer tars are untrusted input, so this reader also checks every
 * header's checksum, caps extended headers at 1 MiB, and fails on truncation.
 *
 * Contract: `readTar` yields entries in archive order; an entry's `body()` yields exactly `size`
 * bytes (slices of the incoming chunks, not copies) and must be consumed before the next entry
 * is asked for, or it is skipped. The reader stops at the end-of-archive marker and does NOT
 * consume what follows it: the caller owns the source iterator and drains it (to hash it whole).
 */
import { TsrunError } from '../errors.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarHeader {
  path: string;
  type: TarEntryType;
  /** The raw typeflag, for messages about 'other' entries. */
  typeflag: string;
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (fractional when pax gave it). */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export interface TarEntry {
  header: TarHeader;
  body(): AsyncIterable<Buffer>;
  /**
   * The whole body at once, without waiting, when all of it is already buffered (a small file
   * inside the current chunk); undefined otherwise, and then nothing is consumed. Use it before
   * `body()`, or not at all.
   */
  buffered(): Buffer | undefined;
}

const BLOCK = 512;
const EXT_MAX = 1024 * 1024;

const bad = (msg: string) => new TsrunError('ERR_LAYER', `reading layer tar: ${msg}`);

/** Pull-based buffer over an async iterator of chunks. */
class Chunks {
  private bufs: Buffer[] = [];
  private len = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.len < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        this.bufs.push(r.value);
        this.len += r.value.length;
      }
    }
    return this.len >= n;
  }

  /** Exactly n bytes, or null at a clean end of input (nothing buffered). Throws on a partial read. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.len === 0) return null;
      throw bad('archive is truncated');
    }
    return this.readBuffered(n);
  }

  /**
   * `read` without waiting, when the n bytes are buffered already (most headers: a chunk holds
   * many entries); undefined (nothing consumed) when they are not. No promise for the common case.
   */
  readNow(n: number): Buffer | undefined {
    return this.len >= n ? this.readBuffered(n) : undefined;
  }

  private readBuffered(n: number): Buffer {
    let first = this.bufs[0] as Buffer;
    if (first.length < n) {
      // Join only the buffers the n bytes span (a header across two chunks), not all of them.
      let k = 1;
      let have = first.length;
      while (have < n) have += (this.bufs[k++] as Buffer).length;
      first = Buffer.concat(this.bufs.slice(0, k), have);
      this.bufs.splice(0, k, first);
    }
    const out = first.subarray(0, n);
    this.consume(n);
    return out;
  }

  private consume(n: number): void {
    this.len -= n;
    while (n > 0) {
      const head = this.bufs[0] as Buffer;
      if (head.length <= n) {
        n -= head.length;
        this.bufs.shift();
      } else {
        this.bufs[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  /** Up to `n` bytes as they come; throws if input ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.len === 0 && !(await this.fill(1))) throw bad('archive is truncated inside a file');
      const head = this.bufs[0] as Buffer;
      const piece = head.length <= n ? head : head.subarray(0, n);
      this.consume(piece.length);
      n -= piece.length;
      yield piece;
    }
  }

  /** Skip n bytes: at once (and true) when they are buffered, else false and nothing skipped (then `skip`). */
  skipNow(n: number): boolean {
    if (n > this.len) return false;
    this.consume(n);
    return true;
  }

  async skip(n: number): Promise<void> {
    if (this.skipNow(n)) return;
    for await (const _ of this.take(n)) void _;
  }

  /** Exactly n bytes if they are in the first buffer now (consumed), else undefined (nothing consumed). */
  takeBuffered(n: number): Buffer | undefined {
    const head = this.bufs[0];
    if (head === undefined || head.length < n) return undefined;
    const out = head.subarray(0, n);
    this.consume(n);
    return out;
  }
}

function cstring(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

function num(b: Buffer, off: number, len: number): number {
  // The common case without a string: optional leading spaces, octal digits, then only NULs and
  // spaces. Anything else takes the general path below (same answer, same errors).
  const end = off + len;
  let i = off;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  for (; i < end; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  while (i < end && (b[i] === 0 || b[i] === 0x20)) i++;
  if (i === end) return v;
  return numSlow(b, off, len);
}

function numSlow(b: Buffer, off: number, len: number): number {
  if ((b[off] as number) & 0x80) {
    // base-256 (GNU): big-endian, first byte's top bit is the marker; 0xff means negative.
    if (b[off] === 0xff) throw bad('negative number in header');
    let v = (b[off] as number) & 0x7f;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + (b[i] as number);
    if (!Number.isSafeInteger(v)) throw bad('number in header too large');
    return v;
  }
  const s = b
    .toString('ascii', off, off + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^[ ]+/, '')
    .replace(/\0.*$/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw bad(`bad octal number "${s}" in header`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const want = num(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : (b[i] as number);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

const isZero = (b: Buffer): boolean => {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
};

/** Pax records "<len> <key>=<value>\n", values binary-safe. */
function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break;
    const sp = buf.indexOf(0x20, off);
    if (sp === -1) throw bad('malformed pax record');
    const len = Number(buf.toString('ascii', off, sp));
    if (!Number.isInteger(len) || len <= sp - off + 1 || off + len > buf.length)
      throw bad('malformed pax record length');
    const rec = buf.subarray(sp + 1, off + len - 1); // drop the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw bad('malformed pax record');
    out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

function applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [k, v] of pax) {
    const s = () => v.toString('utf8');
    switch (k) {
      case 'path':
        h.path = s();
        break;
      case 'linkpath':
        h.linkpath = s();
        break;
      case 'size':
        h.size = Number(s());
        break;
      case 'uid':
        h.uid = Number(s());
        break;
      case 'gid':
        h.gid = Number(s());
        break;
      case 'mtime':
        h.mtime = Number(s());
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) h.xattrs.set(k.slice('SCHILY.xattr.'.length), Buffer.from(v));
        else if (k.startsWith('LIBARCHIVE.xattr.')) {
          h.xattrs.set(decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(s(), 'base64'));
        }
    }
  }
  for (const n of [h.size, h.uid, h.gid]) {
    if (!Number.isSafeInteger(n) || n < 0) throw bad(`bad number in pax header of ${h.path}`);
  }
  if (!Number.isFinite(h.mtime)) h.mtime = 0;
}

export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const chunks = new Chunks(source[Symbol.asyncIterator]());
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = chunks.readNow(BLOCK) ?? (await chunks.read(BLOCK));
    if (block === null) return; // no end marker: tolerated, as GNU tar does
    if (isZero(block)) return;
    if (!checksumOk(block)) throw bad('header checksum mismatch (corrupt or not a tar archive)');
    const typeflag = String.fromCharCode(block[156] as number);
    const size = num(block, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > EXT_MAX) throw bad(`extended header of ${size} bytes is larger than the 1 MiB allowed`);
      const data = Buffer.from((await chunks.read(padded)) ?? Buffer.alloc(0)).subarray(0, size);
      if (typeflag === 'x') pax = parsePax(data);
      else if (typeflag === 'g') globalPax = new Map([...globalPax, ...parsePax(data)]);
      else if (typeflag === 'L') longName = cstring(data, 0, data.length);
      else longLink = cstring(data, 0, data.length);
      continue;
    }
    const ustar = block.toString('ascii', 257, 263) === 'ustar\0';
    const prefix = ustar ? cstring(block, 345, 155) : '';
    const name = cstring(block, 0, 100);
    const header: TarHeader = {
      path: prefix ? `${prefix}/${name}` : name,
      type: TYPES[typeflag] ?? 'other',
      typeflag,
      mode: num(block, 100, 8) & 0o7777,
      uid: num(block, 108, 8),
      gid: num(block, 116, 8),
      size,
      mtime: num(block, 136, 12),
      linkpath: cstring(block, 157, 100),
      devmajor: num(block, 329, 8),
      devminor: num(block, 337, 8),
      xattrs: new Map(),
    };
    if (longName !== undefined) header.path = longName;
    if (longLink !== undefined) header.linkpath = longLink;
    applyPax(header, globalPax);
    if (pax) applyPax(header, pax);
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    if (header.type === 'file' && header.path.endsWith('/')) header.type = 'dir';
    // Only regular files (and unknown types) carry data; a size on a link or dir is ignored data.
    const dataSize = header.size;
    const dataPadded = Math.ceil(dataSize / BLOCK) * BLOCK;
    let consumed = 0;
    const entry: TarEntry = {
      header,
      body: async function* () {
        for await (const piece of chunks.take(dataSize - consumed)) {
          consumed += piece.length;
          yield piece;
        }
      },
      buffered: () => {
        if (consumed !== 0 || dataSize === 0) return undefined;
        const whole = chunks.takeBuffered(dataSize);
        if (whole) consumed = dataSize;
        return whole;
      },
    };
    yield entry;
    if (!chunks.skipNow(dataPadded - consumed)) await chunks.skip(dataPadded - consumed);
  }
}
