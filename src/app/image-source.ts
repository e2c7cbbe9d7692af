/**
 * An image by reference for `run`, `create` and `build`'s FROM: from the store, or pulled,
 * following Docker's `--pull` policy (missing: pull only when absent, saying so as Docker does —
 * an `image-not-local` event the CLI prints; always; never).
 */
import { TsrunError, isTsrunError } from '../errors.js';
import { findImage } from '../store/lookup.js';
import type { ImageRecord } from '../store/images.js';
import type { Store } from '../store/store.js';
import type { AppContext } from './context.js';

export interface ImageSourceOptions {
  /** missing (default), always, never. */
  pull?: string;
  platform?: string;
}

export async function findOrPull(
  ctx: AppContext,
  store: Store,
  reference: string,
  o: ImageSourceOptions = {},
): Promise<{ image: ImageRecord; configBytes: Buffer }> {
  const policy = o.pull ?? 'missing';
  if (!/^(missing|always|never)$/.test(policy)) {
    throw new TsrunError('ERR_USAGE', `invalid --pull policy "${policy}"`, { hint: 'use missing, always or never' });
  }
  let found: ImageRecord | undefined;
  if (policy !== 'always') {
    try {
      found = findImage(await store.readImages(), reference).record;
    } catch (e) {
      if (!isTsrunError(e, 'ERR_IMAGE_NOT_FOUND') || policy === 'never') throw e;
    }
  }
  let damaged = false;
  if (found) {
    // A damaged layer (a store copied without owners or xattrs) is never mounted: pull the
    // image again, which fetches exactly the damaged layers (pull.ts).
    for (const l of found.layers) {
      const v = await store.checkLayer(l.chainId);
      if (v.ok) continue;
      if (policy === 'never') {
        throw new TsrunError('ERR_STORE', `using ${reference}: layer ${l.chainId} is damaged: ${v.reason}`, {
          hint: `pull the image again: tsrun pull ${reference}`,
        });
      }
      ctx.reporter.emit({ type: 'image-damaged', reference, chainId: l.chainId, reason: v.reason });
      found = undefined;
      damaged = true;
      break;
    }
  }
  const pulledNow = !found;
  if (!found) {
    if (policy === 'missing' && !damaged) {
      ctx.reporter.emit({ type: 'image-not-local', reference });
    }
    const { pull } = await import('./pull.js');
    const r = await pull(ctx, { reference, platform: o.platform });
    found = (await store.readImages()).images[r.id];
    if (!found) throw new TsrunError('ERR_STORE', `using ${reference}: the pulled image ${r.id} is not in the store`);
  }
  const configBytes = await store.readBlob(found.id);
  if (pulledNow === false && !o.platform) {
    // Docker warns when it runs a local image of another platform (a pull has said so already).
    const { hostPlatform, platformMatches, platformWarning } = await import('../registry/resolve.js');
    const cfg = JSON.parse(configBytes.toString('utf8')) as { os: string; architecture: string; variant?: string };
    if (!platformMatches(cfg, hostPlatform())) {
      ctx.reporter.emit({ type: 'image-platform', reference, message: platformWarning(cfg) });
    }
  }
  return { image: found, configBytes };
}
