/**
 * Tar headers, written (the reading side is tar-reader.ts). POSIX.1-2001 pax format: a ustar
 * header per entry, preceded by a pax 'x' record whenever a name, link target, id, size or
 * xattr does not fit in ustar (xattrs as `SCHILY.xattr.NAME`, binary-safe, as GNU tar and Go's
 * archive/tar write them).
 *
 * Reproducible by construction: the output depends only on the fields given — no user or group
 * names, no atime/ctime, integer mtimes, and a fixed name for pax records — so the same tree gives
 * the same bytes and therefore the same diff id. This writer trusts its input: it encodes whatever
 * name it is given (tests use that to make hostile layers); cleaning names is the caller's job.
 */

export type TarWriteType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarWriteHeader {
  name: string;
  type: TarWriteType;
  /** Permission bits including setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (files only; 0 otherwise). */
  size: number;
  /** Seconds since the epoch (an integer). */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: ReadonlyMap<string, Buffer> | Record<string, Buffer | string>;
  /** Extra raw pax records, in order (tests). */
  pax?: Record<string, Buffer | string>;
}

const TYPEFLAG: Record<TarWriteType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;

export const BLOCK = 512;
/** Two zero blocks: the end-of-archive marker. */
export const TAR_TRAILER = Buffer.alloc(2 * BLOCK);

/** Zero bytes to pad `size` bytes of content to a whole block. */
export function blockPadding(size: number): Buffer {
  const r = size % BLOCK;
  return Buffer.alloc(r === 0 ? 0 : BLOCK - r);
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One pax record: "<len> <key>=<value>\n", where len counts the whole record. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

function ustar(f: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  b.write(octal(f.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(Math.min(f.uid, MAX_ID), 8), 108, 'ascii');
  b.write(octal(Math.min(f.gid, MAX_ID), 8), 116, 'ascii');
  b.write(octal(Math.min(f.size, MAX_SIZE), 12), 124, 'ascii');
  b.write(octal(Math.max(0, Math.min(f.mtime, MAX_SIZE)), 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(f.typeflag, 156, 'ascii');
  b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  b.write(octal(f.devmajor, 8), 329, 'ascii');
  b.write(octal(f.devminor, 8), 337, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return b;
}

/** The header block(s) for one entry: an optional pax record, then the ustar header. */
export function encodeHeader(h: TarWriteHeader): Buffer {
  const linkname = h.linkname ?? '';
  const size = h.type === 'file' ? h.size : 0;
  const mtime = Math.floor(h.mtime);
  const pax: Buffer[] = [];
  if (Buffer.byteLength(h.name) > 99) pax.push(paxRecord('path', Buffer.from(h.name)));
  if (Buffer.byteLength(linkname) > 99) pax.push(paxRecord('linkpath', Buffer.from(linkname)));
  if (h.uid > MAX_ID) pax.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_ID) pax.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (size > MAX_SIZE) pax.push(paxRecord('size', Buffer.from(String(size))));
  if (mtime < 0 || mtime > MAX_SIZE) pax.push(paxRecord('mtime', Buffer.from(String(mtime))));
  const xattrs = h.xattrs instanceof Map ? [...h.xattrs] : Object.entries(h.xattrs ?? {});
  for (const [k, v] of xattrs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
  }
  for (const [k, v] of Object.entries(h.pax ?? {})) pax.push(paxRecord(k, Buffer.from(v)));
  const common = { uid: h.uid, gid: h.gid, mtime, devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 };
  const parts: Buffer[] = [];
  if (pax.length > 0) {
    const body = Buffer.concat(pax);
    parts.push(
      ustar({ ...common, name: 'PaxHeaders/entry', mode: 0o644, size: body.length, typeflag: 'x', linkname: '' }),
      body,
      blockPadding(body.length),
    );
  }
  parts.push(
    ustar({
      ...common,
      name: truncateUtf8(h.name, 99),
      linkname: truncateUtf8(linkname, 99),
      size,
      typeflag: TYPEFLAG[h.type],
      mode: h.mode,
    }),
  );
  return Buffer.concat(parts);
}

/** The longest prefix of `s` that fits in `max` bytes of UTF-8 (the pax record has the whole). */
function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}
