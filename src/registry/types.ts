/**
 * Types shared by the registry modules (config, credentials, auth, client). No I/O.
 */

/** One place a repository can be fetched from: the registry itself or a mirror of it. */
export interface Endpoint {
  /** host[:port] to connect to, e.g. 'registry-1.docker.io' or '127.0.0.1:5000'. */
  host: string;
  /** Repository path on that host (a registries.conf mirror or location may rewrite the prefix). */
  repository: string;
  /**
   * Plain http is allowed and TLS verification is skipped (registries.conf `insecure = true`, or a
   * loopback host, which Docker also treats as insecure). https is still tried first.
   */
  insecure: boolean;
  /** True for a `[[registry.mirror]]` entry; false for the registry's own location. */
  mirror: boolean;
}

/** Credentials for one registry, as found in an auth file or returned by a credential helper. */
export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (Docker's identitytoken, `<token>` username from credential helpers). */
  | { kind: 'identity'; token: string; username?: string };
