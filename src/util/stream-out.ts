/**
 * Writing a long stream to stdout or a file: back-pressure honoured, a reader that goes away
 * (EPIPE) turns into an error rather than an unhandled event, and `-o FILE` written under a
 * temporary name beside the file and renamed, so a failure never leaves half an archive.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { TsrunError } from '../errors.js';

export class StreamOut {
  private failed: Error | undefined;
  constructor(
    private readonly out: Writable,
    private readonly what: string,
  ) {
    out.on('error', (err) => {
      this.failed ??= err;
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    const closed = () =>
      new TsrunError(
        'ERR_USAGE',
        `${this.what}: the output was closed${this.failed ? ` (${this.failed.message})` : ''}`,
      );
    if (this.failed || this.out.destroyed) throw closed();
    if (this.out.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.out.off('drain', onDrain);
        this.out.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(closed());
      this.out.on('drain', onDrain);
      this.out.on('close', onClose);
    });
  }

  async writeAll(chunks: AsyncIterable<Buffer>): Promise<void> {
    for await (const c of chunks) await this.write(c);
  }
}

/** Run `fn` on a stream into `file` (temp name, then rename); nothing is left on failure. */
export async function toFile(file: string, what: string, fn: (out: Writable) => Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const out = createWriteStream(tmp, { mode: 0o600 });
  try {
    await once(out, 'open').catch((err: NodeJS.ErrnoException) => {
      throw new TsrunError('ERR_USAGE', `${what}: writing ${file}: ${err.message}`);
    });
    await fn(out);
    out.end();
    await once(out, 'close');
    await fs.rename(tmp, file);
  } catch (err) {
    out.destroy();
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
