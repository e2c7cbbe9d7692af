/**
 * Extra CA certificates (NODE_EXTRA_CA_CERTS), loaded when the first verified TLS connection
 * needs them rather than when Node starts.
 *
 * Node reads NODE_EXTRA_CA_CERTS eagerly at start-up: OpenSSL's set-up plus parsing the bundle
 * costs ~40 ms on every command, though most tsrun commands never open a TLS connection (and
 * corporate machines often set it for every process). bin/tsrun.js therefore starts Node without
 * it and hands the file on as TSRUN_EXTRA_CA_CERTS; `trustedCa` gives the agents that verify
 * certificates Node's bundled roots plus that file. Started as `node bin/tsrun.js` with
 * NODE_EXTRA_CA_CERTS set, Node trusts the file already and nothing is added.
 *
 * An unreadable file is a warning, as it is for Node itself, not an error.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

export const EXTRA_CA_ENV = 'TSRUN_EXTRA_CA_CERTS';

/** The `ca` option for a verifying https.Agent, or undefined for Node's default trust. */
export function trustedCa(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const file = env[EXTRA_CA_ENV];
  if (!file || env.NODE_EXTRA_CA_CERTS) return undefined;
  try {
    return [...tls.rootCertificates, readFileSync(file, 'utf8')];
  } catch (err) {
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
    return undefined;
  }
}
