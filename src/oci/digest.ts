/**
 * Digest helpers (OCI image-spec descriptor.md#digests). sha256 only; chain ids per
 * image-spec config.md#layer-chainid: ChainID(L0) = DiffID(L0),
 * ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 */
import { crypto } from '../util/lazy-builtins.js';

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + crypto().createHash('sha256').update(data).digest('hex');
}

/** "sha256:abcd…" → "abcd…" (for file names). Callers must have validated the digest. */
export function digestHex(digest: string): string {
  return digest.slice('sha256:'.length);
}

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    out.push(out.length === 0 ? d : sha256Digest(`${out[out.length - 1]} ${d}`));
  }
  return out;
}
