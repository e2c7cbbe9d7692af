/**
 * node:crypto, loaded on first use. Loading it costs ~2 ms of CPU (it loads all of Node's crypto
 * modules, keys, ciphers and X.509 included), and the store code every listing command imports
 * only hashes or names temp files when it writes (docs/benchmarks.md, "Listing commands").
 *
 * Contract: `crypto()` is node:crypto itself; modules on a listing command's import path call it
 * where they hash instead of importing node:crypto at the top.
 */
import { createRequire } from 'node:module';

type NodeCrypto = typeof import('node:crypto');

let loaded: NodeCrypto | undefined;

export function crypto(): NodeCrypto {
  return (loaded ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto);
}
