/**
 * Layer decompression: gzip through node:zlib (multi-member streams included), zstd through the
 * `zstd` program (Debian package zstd; Node 20's zlib has no zstd), uncompressed as is.
 *
 * Contract: the returned stream errors (never ends cleanly) if the input is corrupt or the
 * decompressor fails; destroying it stops the decompressor.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsrunError } from '../errors.js';
import type { Compression } from '../oci/media-types.js';

export function decompress(source: Readable, compression: Compression): Readable {
  switch (compression) {
    case 'none': {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      source.on('error', (err) => out.destroy(err));
      return source.pipe(out);
    }
    case 'gzip': {
      const gunzip = createGunzip({ chunkSize: 256 * 1024 });
      source.on('error', (err) => gunzip.destroy(err));
      gunzip.on('error', () => undefined);
      const out = source.pipe(gunzip);
      return out;
    }
    case 'zstd':
      return zstd(source);
  }
}

function zstd(source: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString(); });
  child.on('error', (err: NodeJS.ErrnoException) => {
    out.destroy(err.code === 'ENOENT'
      ? new TsrunError('ERR_LAYER', 'decompressing a zstd layer: the zstd program is not installed', { hint: 'apt-get install zstd' })
      : err);
  });
  child.stdin.on('error', () => undefined); // EPIPE when zstd dies: reported through its exit
  source.on('error', (err) => { child.kill('SIGKILL'); out.destroy(err); });
  source.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  let exited: number | null | undefined;
  let stdoutDone = false;
  const finish = () => {
    if (exited === undefined || !stdoutDone) return;
    if (exited === 0) out.end();
    else out.destroy(new TsrunError('ERR_LAYER', `decompressing a zstd layer: zstd failed: ${stderr.trim() || `exit ${exited}`}`));
  };
  child.stdout.on('end', () => { stdoutDone = true; finish(); });
  child.on('exit', (code) => { exited = code; finish(); });
  out.on('close', () => { if (exited === undefined) child.kill('SIGKILL'); });
  return out;
}
