/**
 * A tar writer for test fixtures: it writes exactly the headers it is given, including ones no
 * sane packer produces ("../escape", absolute names, hardlinks to outside, whiteouts), so tests
 * can feed the unpacker hostile layers. ustar headers, with a pax 'x' record whenever a name,
 * link target, id or xattr does not fit (POSIX.1-2001 pax format, values may be binary).
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntrySpec {
  name: string;
  type?: TarEntryType;          // default 'file'
  content?: Buffer | string;    // files only
  mode?: number;                // permission bits incl. setuid etc.; default 0o644 / 0o755 for dirs
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;               // seconds since epoch; default 1700000000
  linkname?: string;            // symlink / hardlink target
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  pax?: Record<string, Buffer | string>; // extra raw pax records
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> <key>=<value>\n" where len counts itself.
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

function header(fields: {
  name: string; mode: number; uid: number; gid: number; size: number; mtime: number;
  typeflag: string; linkname: string; uname: string; gname: string; devmajor: number; devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(fields.name, 0, 100, 'utf8');
  b.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(Math.min(fields.uid, 0o7777777), 8), 108, 'ascii');
  b.write(octal(Math.min(fields.gid, 0o7777777), 8), 116, 'ascii');
  b.write(octal(Math.min(fields.size, 0o77777777777), 12), 124, 'ascii');
  b.write(octal(fields.mtime, 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(fields.typeflag, 156, 'ascii');
  b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  b.write(fields.uname, 265, 32, 'utf8');
  b.write(fields.gname, 297, 32, 'utf8');
  b.write(octal(fields.devmajor, 8), 329, 'ascii');
  b.write(octal(fields.devminor, 8), 337, 'ascii');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return b;
}

function pad(n: number): Buffer {
  const r = n % 512;
  return Buffer.alloc(r === 0 ? 0 : 512 - r);
}

/** Build an uncompressed tar archive from entry specs, in order. */
export function makeTar(entries: TarEntrySpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const linkname = e.linkname ?? '';
    const uid = e.uid ?? 0;
    const gid = e.gid ?? 0;
    const pax: Buffer[] = [];
    if (Buffer.byteLength(e.name) > 99) pax.push(paxRecord('path', Buffer.from(e.name)));
    if (Buffer.byteLength(linkname) > 99) pax.push(paxRecord('linkpath', Buffer.from(linkname)));
    if (uid > 0o7777777) pax.push(paxRecord('uid', Buffer.from(String(uid))));
    if (gid > 0o7777777) pax.push(paxRecord('gid', Buffer.from(String(gid))));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
    for (const [k, v] of Object.entries(e.pax ?? {})) pax.push(paxRecord(k, Buffer.from(v)));
    const common = {
      uid, gid, mtime: e.mtime ?? 1700000000, uname: e.uname ?? '', gname: e.gname ?? '',
      devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0, linkname: '',
    };
    if (pax.length > 0) {
      const body = Buffer.concat(pax);
      parts.push(header({ ...common, name: 'PaxHeaders/x', mode: 0o644, size: body.length, typeflag: 'x' }), body, pad(body.length));
    }
    const name = e.name.length > 99 ? e.name.slice(0, 99) : e.name;
    parts.push(header({
      ...common, name, linkname: linkname.slice(0, 99), size: content.length, typeflag: TYPEFLAG[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
    }));
    parts.push(content, pad(content.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface LayerBlob {
  /** The compressed (or raw) bytes as a registry would serve them. */
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
}

/** Wrap a tar as an OCI/Docker layer blob: gzip (default), or uncompressed. */
export function layerBlob(tar: Buffer, compression: 'gzip' | 'none' = 'gzip', docker = false): LayerBlob {
  const blob = compression === 'gzip' ? gzipSync(tar) : tar;
  const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  const mediaType = docker
    ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    : compression === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
  return { blob, digest: sha(blob), diffId: sha(tar), mediaType };
}
