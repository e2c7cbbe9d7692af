/**
 * Where a build's context and Dockerfile come from (Docker CLI reference, "docker build": "Tarball
 * contexts", "Pipe Dockerfile through stdin"):
 *
 * - a directory: the Dockerfile is `-f FILE`, else CONTEXT/Dockerfile, else CONTEXT/dockerfile
 *   (Docker's classic builder falls back to the lowercase name too);
 * - `-` (stdin): a tar archive, plain or compressed (gzip, bzip2, xz, zstd; recognised by content,
 *   as Docker does) is the context, and `-f` names the Dockerfile inside it; anything else is the
 *   Dockerfile itself, with an empty context.
 *
 * The archive is untrusted: it is unpacked by the same unpacker as image layers (no `..`, no
 * absolute names, no writes through links), into a private temporary directory the caller
 * removes with `cleanup()`, whatever happens.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { decompress } from '../layers/compression.js';
import { archiveKindOf } from '../layers/sniff.js';
import { unpackTar } from '../layers/unpack.js';
import { resolveInRoot } from '../snapshot/rootfs-copy.js';

export interface BuildInput {
  contextDir: string;
  /** The Dockerfile's path, or its name for messages when `text` is given. */
  file: string;
  /** The Dockerfile's text when it does not come from a file (`-f -`, or `build -` < Dockerfile). */
  text?: string;
  cleanup: () => Promise<void>;
}

/** The Dockerfile of a context directory when `-f` is not given: Dockerfile, else dockerfile. */
export async function defaultDockerfile(contextDir: string): Promise<string> {
  const upper = path.join(contextDir, 'Dockerfile');
  if (await fs.lstat(upper).catch(() => undefined)) return upper;
  const lower = path.join(contextDir, 'dockerfile');
  return (await fs.lstat(lower).catch(() => undefined)) ? lower : upper;
}

async function readHead(stdin: AsyncIterable<Buffer>): Promise<{ head: Buffer; rest: AsyncIterator<Buffer> }> {
  const it = stdin[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let n = 0;
  while (n < 512) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as string);
    parts.push(b);
    n += b.length;
  }
  return { head: Buffer.concat(parts), rest: it };
}

/** The context and Dockerfile of a build: `context` is a directory or `-` (then `stdin` is read). */
export async function openBuildInput(o: {
  context: string;
  file?: string;
  dockerfileText?: string;
  stdin?: AsyncIterable<Buffer>;
}): Promise<BuildInput> {
  if (o.context !== '-') {
    const contextDir = path.resolve(o.context);
    const st = await fs.stat(contextDir).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new TsrunError('ERR_USAGE', `building: the context "${o.context}" is not a directory`, {
        hint: 'give the directory holding your files, e.g. tsrun build -t app . (or - to read a tar or a Dockerfile from stdin)',
      });
    }
    return {
      contextDir,
      file: o.file ?? (await defaultDockerfile(contextDir)),
      ...(o.dockerfileText !== undefined ? { text: o.dockerfileText } : {}),
      cleanup: async () => {},
    };
  }
  if (o.dockerfileText !== undefined || !o.stdin) {
    throw new TsrunError('ERR_USAGE', 'building: the context and the Dockerfile cannot both be read from stdin', {
      hint: 'use `tsrun build - < Dockerfile`, or `-f -` with a context directory',
    });
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsrun-build-context-'));
  const cleanup = () => fs.rm(dir, { recursive: true, force: true });
  try {
    const { head, rest } = await readHead(o.stdin);
    const kind = archiveKindOf(head);
    if (kind === undefined) {
      // A Dockerfile; its context is empty.
      let text = head.toString('utf8');
      for (let r = await rest.next(); !r.done; r = await rest.next()) text += Buffer.from(r.value).toString('utf8');
      return { contextDir: dir, file: 'Dockerfile', text, cleanup };
    }
    const all = Readable.from(
      (async function* () {
        yield head;
        for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
      })(),
    );
    const contextDir = path.join(dir, 'context');
    await fs.mkdir(contextDir, { mode: 0o755 });
    await unpackTar(decompress(all, kind), contextDir, {
      preserveOwnership: false,
      canMknod: false,
      overlayXattrPrefix: 'trusted.overlay.',
    }).catch((err: Error) => {
      throw new TsrunError('ERR_BUILD_CONTEXT', `building: reading the context archive from stdin: ${err.message}`, {
        cause: err,
      });
    });
    // Inside the archive: its links cannot point the Dockerfile at a host file.
    const file = await resolveInRoot(
      contextDir,
      o.file ?? path.relative(contextDir, await defaultDockerfile(contextDir)),
    );
    return { contextDir, file, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
