/**
 * `tsrun import FILE|URL|- [REPOSITORY[:TAG]]`: a filesystem tar (what `export` writes, or any
 * tar, gzip/zstd/bzip2/xz-compressed or not) becomes a one-layer image, as `docker import` makes
 * it: a config with only what `-c` sets (Dockerfile instructions, app/changes.ts), the host's
 * platform (or --platform), and one history entry whose comment is `-m` or "Imported from SRC".
 *
 * The tar is untrusted and goes through the unpacker every layer goes through; it is gzipped
 * into a blob as it streams (build/layer.ts), so the image pushes like any other.
 * Contract: the store is held shared; nothing is recorded unless the whole tar unpacked.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import type { ImageConfig } from '../oci/schemas.js';
import { formatReference, parseReference } from '../reference/reference.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../registry/resolve.js';
import { decompressSniffed } from '../layers/sniff.js';
import { commitLayerStream } from '../build/layer.js';
import { recordImage } from '../store/record.js';
import { Store } from '../store/store.js';
import type { AppContext } from './context.js';
import { applyChanges } from './changes.js';
import { unpackAs } from './unpack-as.js';

export interface ImportOptions {
  changes?: string[];
  message?: string;
  platform?: string;
}

async function openSource(source: string, stdin: Readable): Promise<Readable> {
  if (source === '-') return stdin;
  if (/^https?:\/\//i.test(source)) {
    // As build's ADD <url> (build/sources.ts): node-fetch with tsrun's TLS agent, so the extra CA
    // certificates the launcher hands on (util/ca.ts) are trusted here too.
    const { default: fetch } = await import('node-fetch');
    const { tlsAgent } = await import('../registry/http.js');
    const res = await fetch(source, {
      redirect: 'follow',
      agent: (u: URL) => (u.protocol === 'https:' ? tlsAgent() : undefined),
    }).catch((err: Error) => {
      throw new TsrunError('ERR_NETWORK', `importing ${source}: ${err.message}`);
    });
    if (!res.ok || !res.body)
      throw new TsrunError('ERR_NETWORK', `importing ${source}: the server answered ${res.status} ${res.statusText}`);
    return res.body as unknown as Readable;
  }
  const st = await fs.stat(source).catch(() => undefined);
  if (!st?.isFile())
    throw new TsrunError('ERR_USAGE', `importing ${source}: no such file`, {
      hint: 'give a tar file, an http(s) URL, or - for stdin',
    });
  return createReadStream(source);
}

/** Returns the new image's id. */
export async function importImage(
  ctx: AppContext,
  source: string,
  repository: string | undefined,
  o: ImportOptions,
  stdin: Readable = process.stdin,
): Promise<string> {
  let name: string | undefined;
  if (repository !== undefined) {
    const ref = parseReference(repository);
    if (ref.digest) throw new TsrunError('ERR_REFERENCE', `importing as ${repository}: a tag cannot contain a digest`);
    name = formatReference(ref);
  }
  const platform = o.platform ? parsePlatform(o.platform) : hostPlatform();
  const container = await applyChanges({}, o.changes ?? []);
  const store = await Store.open(ctx.root);
  const input = await openSource(source, stdin);
  return store.withSharedLock(async () => {
    await store.cleanTemp();
    const { stream, empty } = await decompressSniffed(input);
    if (empty) throw new TsrunError('ERR_USAGE', `importing ${source}: the input is empty`);
    const layer = await commitLayerStream(store, stream as AsyncIterable<Buffer>, undefined, {
      ...unpackAs(ctx),
      onWarning: (message) => ctx.reporter.emit({ type: 'warning', message }),
    });
    const created = new Date().toISOString();
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: container,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, comment: o.message || `Imported from ${source}` }],
    };
    const { id } = await recordImage(store, Buffer.from(JSON.stringify(config)), [layer], name ? [name] : [], created);
    ctx.reporter.emit({ type: 'debug', scope: 'import', message: `imported ${formatPlatform(platform)} image ${id}` });
    return id;
  });
}
