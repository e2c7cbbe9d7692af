/**
 * Layer decompression: gzip through node:zlib (multi-member streams included), zstd through the
 * `zstd` program (Debian package zstd; Node 20's zlib has no zstd), uncompressed as is. For
 * ADD's local archives also bzip2 and xz, through the `bzip2` and `xz` programs.
 *
 * Contract: the returned stream errors (never ends cleanly) if the input is corrupt or the
 * decompressor fails; destroying it stops the decompressor.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { TsrunError } from '../errors.js';
import type { Compression } from '../oci/media-types.js';

/** Layer compressions, and what else a local archive for ADD may use. */
export type ArchiveCompression = Compression | 'bzip2' | 'xz';

/** The program (and its Debian package) that decompresses each of the others to stdout. */
const PROGRAMS: Record<'zstd' | 'bzip2' | 'xz', { argv: string[]; pkg: string }> = {
  zstd: { argv: ['zstd', '-d', '-c', '-q'], pkg: 'zstd' },
  bzip2: { argv: ['bzip2', '-d', '-c'], pkg: 'bzip2' },
  xz: { argv: ['xz', '-d', '-c'], pkg: 'xz-utils' },
};

export function decompress(source: Readable, compression: ArchiveCompression): Readable {
  switch (compression) {
    case 'none': {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      source.on('error', (err) => out.destroy(err));
      return source.pipe(out);
    }
    case 'gzip': {
      // Up to 4 MiB of output ahead of the reader: inflate (on the thread pool) keeps going while
      // the unpacker creates files, instead of taking turns with it one 256 KiB chunk at a time.
      const gunzip = createGunzip({ chunkSize: 256 * 1024, readableHighWaterMark: 4 << 20 } as ZlibOptions);
      source.on('error', (err) => gunzip.destroy(err));
      gunzip.on('error', () => undefined);
      const out = source.pipe(gunzip);
      return out;
    }
    default:
      return throughProgram(source, compression);
  }
}

function throughProgram(source: Readable, kind: keyof typeof PROGRAMS): Readable {
  const {
    argv: [cmd, ...args],
    pkg,
  } = PROGRAMS[kind];
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const child = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  child.on('error', (err: NodeJS.ErrnoException) => {
    out.destroy(
      err.code === 'ENOENT'
        ? new TsrunError('ERR_LAYER', `decompressing ${kind} data: the ${cmd} program is not installed`, {
            hint: `apt-get install ${pkg}`,
          })
        : err,
    );
  });
  child.stdin.on('error', () => undefined); // EPIPE when the program dies: reported through its exit
  source.on('error', (err) => {
    child.kill('SIGKILL');
    out.destroy(err);
  });
  source.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  let exited: number | null | undefined;
  let stdoutDone = false;
  const finish = () => {
    if (exited === undefined || !stdoutDone) return;
    if (exited === 0) out.end();
    else
      out.destroy(
        new TsrunError('ERR_LAYER', `decompressing ${kind} data: ${cmd} failed: ${stderr.trim() || `exit ${exited}`}`),
      );
  };
  child.stdout.on('end', () => {
    stdoutDone = true;
    finish();
  });
  child.on('exit', (code) => {
    exited = code;
    finish();
  });
  out.on('close', () => {
    if (exited === undefined) child.kill('SIGKILL');
  });
  return out;
}
