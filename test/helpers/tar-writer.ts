/**
 * Tar archives for test fixtures, in memory: src/layers/tar-writer.ts encodes exactly the headers
 * it is given, including ones no sane packer produces ("../escape", absolute names, hardlinks to
 * outside, whiteouts), so tests can feed the unpacker hostile layers.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { blockPadding, encodeHeader, TAR_TRAILER, type TarWriteType } from '../../src/layers/tar-writer.js';

export type TarEntryType = TarWriteType;

export interface TarEntrySpec {
  name: string;
  type?: TarEntryType; // default 'file'
  content?: Buffer | string; // files only
  mode?: number; // permission bits incl. setuid etc.; default 0o644 / 0o755 for dirs
  uid?: number;
  gid?: number;
  mtime?: number; // seconds since epoch; default 1700000000
  linkname?: string; // symlink / hardlink target
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  pax?: Record<string, Buffer | string>; // extra raw pax records
}

/** Build an uncompressed tar archive from entry specs, in order. */
export function makeTar(entries: TarEntrySpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    parts.push(
      encodeHeader({
        name: e.name,
        type,
        mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size: content.length,
        mtime: e.mtime ?? 1700000000,
        linkname: e.linkname,
        devmajor: e.devmajor,
        devminor: e.devminor,
        xattrs: e.xattrs,
        pax: e.pax,
      }),
    );
    parts.push(content, blockPadding(content.length));
  }
  parts.push(TAR_TRAILER);
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
    : compression === 'gzip'
      ? 'application/vnd.oci.image.layer.v1.tar+gzip'
      : 'application/vnd.oci.image.layer.v1.tar';
  return { blob, digest: sha(blob), diffId: sha(tar), mediaType };
}
