/**
 * Registry authentication: `WWW-Authenticate` challenges (RFC 7235 §4.1, RFC 6750 §3) and the
 * distribution token protocol (distribution docs/spec/auth/token.md, oauth.md), as Docker does it:
 *
 * - GET realm?service=S&scope=repository:NAME:pull[&scope=…], with HTTP Basic credentials when
 *   we have a username/password, anonymous otherwise; the answer's `token` or `access_token`;
 *   `expires_in` defaults to 60 s (and is never taken as less, as the spec says).
 * - Identity (refresh) tokens go by POST, form `grant_type=refresh_token` (oauth.md), as Docker
 *   does for stored identity tokens.
 * - Tokens are cached per (realm host, service, scopes, who asked) until shortly before expiry.
 * - The token response is capped at 1 MiB; 401/403 from the token service is ERR_REGISTRY_AUTH.
 *
 * Contract: credentials and tokens are never logged or put into error messages.
 */
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { loginHint, readLimited, redact, send, type HttpOptions } from './http.js';
import type { Credentials } from './types.js';

export interface Challenge {
  /** Lower-cased scheme: 'bearer', 'basic', … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHARS = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parse a WWW-Authenticate value, which may hold several challenges (and several headers joined
 * with ", "): `Bearer realm="https://a",service="b", Basic realm="x"`.
 */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const skipWsCommas = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t' || header[i] === ',')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHARS.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    // at the opening quote
    i++;
    let s = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      s += header[i];
      i++;
    }
    i++; // closing quote (or end)
    return s;
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWsCommas();
    if (i >= n) break;
    const save = i;
    const tok = readToken();
    if (tok === '') {
      i++;
      continue;
    } // stray character: skip it
    skipWs();
    if (current && header[i] === '=' && header[i + 1] !== '=') {
      // auth-param
      i++;
      skipWs();
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[tok.toLowerCase()] = value;
      continue;
    }
    if (current && header[i] === '=') {
      // token68 (e.g. "Negotiate abc=="): keep it as a parameter-less value
      while (i < n && header[i] === '=') i++;
      current.params['token68'] = header.slice(save, i);
      continue;
    }
    current = { scheme: tok.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: string[];
  credentials?: Credentials;
  /** Skip TLS verification for the realm (insecure registry whose token service is on the same host). */
  insecure?: boolean;
  /** The registry host, for the login hint. */
  registryHost: string;
  /** Bypass the cache (login checks). */
  noCache?: boolean;
}

export interface Token {
  token: string;
  /** epoch ms */
  expiresAt: number;
  /** A refresh token the service handed out (identity token for `tsrun login`). */
  refreshToken?: string;
}

const MIN_EXPIRY_S = 60;
const EXPIRY_MARGIN_MS = 5_000;
export const TOKEN_RESPONSE_MAX = 1024 * 1024;

/** Tokens by (realm host, service, scopes, who). Expired entries are dropped on read. */
export class TokenCache {
  private readonly entries = new Map<string, Token>();

  static key(req: Pick<TokenRequest, 'realm' | 'service' | 'scopes' | 'credentials'>): string {
    const who = !req.credentials
      ? 'anonymous'
      : req.credentials.kind === 'basic'
        ? `basic:${req.credentials.username}`
        : `identity:${req.credentials.username ?? ''}`;
    let realmHost: string;
    try {
      realmHost = new URL(req.realm).host + new URL(req.realm).pathname;
    } catch {
      realmHost = req.realm;
    }
    return [realmHost, req.service ?? '', [...req.scopes].sort().join(' '), who].join('|');
  }

  get(key: string, now = Date.now()): Token | undefined {
    const t = this.entries.get(key);
    if (!t) return undefined;
    if (t.expiresAt - EXPIRY_MARGIN_MS <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return t;
  }

  set(key: string, token: Token): void {
    this.entries.set(key, token);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The process-wide cache (a pull makes one client per endpoint; they share tokens). */
export const defaultTokenCache = new TokenCache();

export function basicAuthorization(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/** Scope string for a repository (token.md "Requesting a Token"). */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Get a bearer token, from the cache when we may. */
export async function getToken(
  req: TokenRequest,
  opts: { cache?: TokenCache; http?: HttpOptions; reporter?: Reporter } = {},
): Promise<Token> {
  const cache = opts.cache ?? defaultTokenCache;
  const key = TokenCache.key(req);
  if (!req.noCache) {
    const hit = cache.get(key);
    if (hit) return hit;
  }
  const token = await fetchToken(req, opts);
  if (!req.noCache) cache.set(key, token);
  return token;
}

async function fetchToken(req: TokenRequest, opts: { http?: HttpOptions; reporter?: Reporter }): Promise<Token> {
  let realm: URL;
  try {
    realm = new URL(req.realm);
  } catch {
    throw new TsrunError(
      'ERR_REGISTRY_AUTH',
      `authenticating to ${req.registryHost}: the registry's token realm "${req.realm}" is not a URL`,
    );
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
    throw new TsrunError(
      'ERR_REGISTRY_AUTH',
      `authenticating to ${req.registryHost}: unsupported token realm scheme ${realm.protocol}`,
    );
  }
  const action = `authenticating to ${req.registryHost}: requesting a token from ${redact(realm.toString())}`;
  const creds = req.credentials;
  opts.reporter?.emit({
    type: 'debug',
    scope: 'auth',
    message: `token request to ${realm.host} for ${req.scopes.join(' ') || '(no scope)'} as ${creds ? (creds.kind === 'basic' ? creds.username : 'identity token') : 'anonymous'}`,
  });

  let res;
  if (creds?.kind === 'identity') {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', creds.token);
    form.set('client_id', 'tsrun');
    if (req.service) form.set('service', req.service);
    if (req.scopes.length) form.set('scope', req.scopes.join(' '));
    res = await send(
      {
        method: 'POST',
        url: realm.toString(),
        body: form,
        insecure: req.insecure,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      },
      opts.http,
    );
  } else {
    const url = new URL(realm);
    if (req.service) url.searchParams.set('service', req.service);
    for (const s of req.scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds?.kind === 'basic') {
      url.searchParams.set('account', creds.username);
      headers['Authorization'] = basicAuthorization(creds.username, creds.password);
    }
    res = await send({ url: url.toString(), headers, insecure: req.insecure }, opts.http);
  }

  if (res.status === 401 || res.status === 403) {
    await readLimited(res, 64 * 1024).catch(() => undefined);
    throw new TsrunError(
      'ERR_REGISTRY_AUTH',
      `${action}: the token service answered ${res.status}${creds ? ' (the stored credentials were refused)' : ' (anonymous access refused)'}`,
      {
        hint: loginHint(req.registryHost),
        detail: { status: res.status },
      },
    );
  }
  if (!res.ok) {
    await readLimited(res, 64 * 1024).catch(() => undefined);
    throw new TsrunError('ERR_REGISTRY_AUTH', `${action}: the token service answered ${res.status}`, {
      detail: { status: res.status },
      retryable: res.status >= 500 || res.status === 429,
    });
  }
  const { bytes, truncated } = await readLimited(res, TOKEN_RESPONSE_MAX);
  if (truncated) {
    throw new TsrunError('ERR_SIZE', `${action}: the token response is larger than ${TOKEN_RESPONSE_MAX} bytes`);
  }
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
    json = parsed as Record<string, unknown>;
  } catch {
    throw new TsrunError('ERR_REGISTRY_AUTH', `${action}: the token response is not a JSON object`);
  }
  const token =
    typeof json['token'] === 'string' && json['token']
      ? json['token']
      : typeof json['access_token'] === 'string' && json['access_token']
        ? json['access_token']
        : undefined;
  if (!token) throw new TsrunError('ERR_REGISTRY_AUTH', `${action}: the token response has no token`);
  let expiresIn =
    typeof json['expires_in'] === 'number' && Number.isFinite(json['expires_in']) ? json['expires_in'] : MIN_EXPIRY_S;
  if (expiresIn < MIN_EXPIRY_S) expiresIn = MIN_EXPIRY_S;
  let issuedAt = Date.now();
  if (typeof json['issued_at'] === 'string') {
    const t = Date.parse(json['issued_at']);
    // A skewed clock on either side must not make a fresh token look expired: never in the future.
    if (!Number.isNaN(t) && t < issuedAt) issuedAt = Math.max(t, issuedAt - 60_000);
  }
  const out: Token = { token, expiresAt: issuedAt + expiresIn * 1000 };
  if (typeof json['refresh_token'] === 'string' && json['refresh_token']) out.refreshToken = json['refresh_token'];
  return out;
}
