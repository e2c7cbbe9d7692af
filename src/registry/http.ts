/**
 * The small HTTP layer under the registry client (node-fetch v3), following what Docker and
 * go-containerregistry's transport do:
 *
 * - Scheme, one rule: https first, always. Only when the Endpoint is `insecure` (registries.conf
 *   `insecure = true`, or a loopback host) and the https attempt fails before any HTTP answer
 *   (TLS handshake or connection error) do we fall back to plain http; the choice is remembered
 *   per host for the life of the process. Insecure https skips certificate verification.
 * - Redirects are followed by hand (at most 10) so that the Authorization header can be dropped
 *   when a redirect leaves the original host (blob storage on S3/CDN must not see our token).
 * - Retries (at most 4 attempts) with exponential backoff and full jitter on 429/500/502/503/504
 *   and on resets/timeouts, honouring Retry-After (bounded). Only getting the response is
 *   retried; a body that fails mid-stream is the caller's business.
 * - A timeout for connecting and receiving headers (30 s); no overall body timeout.
 *
 * Contract: never logs request headers (they carry credentials and tokens).
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { Response, RequestInit } from 'node-fetch';
import { TsrunError } from '../errors.js';
import { trustedCa } from '../util/ca.js';
import { projectVersion } from '../util/project.js';
import type { Reporter, TsrunEvent } from '../events.js';

export const USER_AGENT = `tsrun/${projectVersion()}`;

export interface HttpOptions {
  /** Attempts per request, including the first (default 4). */
  maxAttempts?: number;
  /** First backoff delay; doubles each retry, with full jitter (default 500 ms). */
  baseDelayMs?: number;
  /** Upper bound for one wait, including a registry's Retry-After (default 10 s). */
  maxDelayMs?: number;
  /** Connect + headers timeout (default 30 s). */
  headersTimeoutMs?: number;
  reporter?: Reporter;
}

export interface SendRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer | URLSearchParams;
  /** Skip TLS verification (insecure registries). */
  insecure?: boolean;
  signal?: AbortSignal;
  /** Do not retry (e.g. a POST that must not be repeated). */
  noRetry?: boolean;
}

const MAX_REDIRECTS = 10;
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const RETRY_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

// Made on first use: the verifying agent reads the extra CA certificates then (src/util/ca.ts).
let httpAgent: http.Agent | undefined;
let httpsAgent: https.Agent | undefined;
let insecureHttpsAgent: https.Agent | undefined;

/** The agent for verified https: Node's roots plus NODE_EXTRA_CA_CERTS (also for build's ADD <url>). */
export function tlsAgent(): https.Agent {
  return (httpsAgent ??= new https.Agent({ keepAlive: true, ca: trustedCa() }));
}

/** host → scheme that worked for an insecure endpoint ('http' after a failed https attempt). */
const schemeByHost = new Map<string, 'http' | 'https'>();

/**
 * The base URL for an endpoint host: 'https://host', unless the endpoint is insecure and we
 * already learned that the host only speaks http. A secure endpoint is always https.
 */
export function baseUrl(host: string, insecure: boolean): string {
  return `${insecure ? (schemeByHost.get(host) ?? 'https') : 'https'}://${host}`;
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Is this a failure before any HTTP answer: refused, reset, TLS handshake, DNS, timeout? */
export function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; type?: string; errno?: string } | undefined;
  if (!e) return false;
  if (e instanceof TsrunError) return e.code === 'ERR_NETWORK';
  return e.name === 'FetchError' || e.type === 'system' || typeof e.code === 'string';
}

function isRetryableNetworkError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; name?: string };
  if (e?.name === 'AbortError') return false;
  if (e instanceof TsrunError) return e.retryable;
  return (
    RETRY_CODES.has(e?.code ?? '') || /socket hang up|ECONNRESET|ETIMEDOUT|premature close/i.test(e?.message ?? '')
  );
}

function networkError(url: string, err: unknown): TsrunError {
  if (err instanceof TsrunError) return err;
  const e = err as { code?: string; message?: string; name?: string };
  if (e?.name === 'AbortError') {
    return new TsrunError('ERR_NETWORK', `requesting ${redact(url)}: aborted`, { cause: err, retryable: false });
  }
  const failed = (err as { failedUrl?: string }).failedUrl ?? url;
  const after = (err as { after?: string }).after ? ` (https failed first)` : '';
  // node-fetch says "request to URL failed, reason: …": the URL is already named once.
  const reason = (e?.message ?? String(err)).replace(/^request to \S+ failed, reason: /, '');
  return new TsrunError('ERR_NETWORK', `requesting ${redact(failed)}${after}: ${reason}`, {
    cause: err,
    retryable: true,
    detail: { code: e?.code },
  });
}

/** Drop query strings (pre-signed blob URLs carry credentials) from URLs we print. */
export function redact(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q) + '?…';
}

/**
 * The agent for `url`. An insecure endpoint's https verifies no certificate, so it trusts no CA
 * either (`ca: []`): otherwise Node parses its ~140 bundled roots for the TLS context, ~45 ms
 * here, before the first connection to a local registry (docs/benchmarks.md, "A pull with nothing
 * to fetch").
 */
function agentFor(url: URL, insecure: boolean): http.Agent {
  if (url.protocol === 'http:') return (httpAgent ??= new http.Agent({ keepAlive: true }));
  return insecure
    ? (insecureHttpsAgent ??= new https.Agent({ keepAlive: true, rejectUnauthorized: false, ca: [] }))
    : tlsAgent();
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function drain(res: Response): void {
  const body = res.body as Readable | null;
  if (body && !body.destroyed) {
    body.resume();
    body.on('error', () => {});
  }
}

/** One fetch with a connect+headers timeout; redirects not followed. */
async function fetchOnce(
  url: string,
  req: SendRequest,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Response> {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = () => ctl.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const init: RequestInit = {
      method: req.method ?? 'GET',
      headers: { 'User-Agent': USER_AGENT, ...headers },
      redirect: 'manual',
      signal: ctl.signal as RequestInit['signal'],
      agent: (u: URL) => agentFor(u, req.insecure ?? false),
      compress: false,
    };
    if (req.body !== undefined) init.body = req.body;
    // Imported on first use: node-fetch is ESM-only and most commands never fetch (start-up time).
    const { default: fetch } = await import('node-fetch');
    return await fetch(url, init);
  } catch (err) {
    if (timedOut) {
      const e = new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`) as Error & { code: string };
      e.code = 'ETIMEDOUT';
      throw e;
    }
    throw err;
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/** A URL as events show it: no user:password, no query (pre-signed blob URLs and token requests). */
export function shownUrl(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    return redact(u.toString());
  } catch {
    return redact(raw);
  }
}

/** The scheme of an Authorization header (never its value). */
function authScheme(headers: Record<string, string> | undefined): 'none' | 'basic' | 'bearer' | 'other' {
  const v = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  if (!v) return 'none';
  const s = v.split(/\s/, 1)[0]?.toLowerCase();
  return s === 'basic' || s === 'bearer' ? s : 'other';
}

/** One attempt of `send` as a `registry-request` event (events.ts): what a learner sees of HTTP. */
function requestEvent(
  req: SendRequest,
  attempt: number,
  hops: Hops,
  res: Response | undefined,
  error: unknown,
): Extract<TsrunEvent, { type: 'registry-request' }> {
  const length = Number(res?.headers.get('content-length') ?? NaN);
  const body = req.body;
  const sent = typeof body === 'string' || Buffer.isBuffer(body) ? Buffer.byteLength(body) : undefined;
  return {
    type: 'registry-request',
    method: req.method ?? 'GET',
    url: shownUrl(hops.url ?? req.url),
    auth: authScheme(req.headers),
    ...(res ? { status: res.status } : {}),
    ...(error !== undefined
      ? { error: ((error as Error)?.message ?? String(error)).replace(/https?:\/\/\S+/g, (u) => shownUrl(u)) }
      : {}),
    ...(hops.count > 0 && hops.last ? { redirects: hops.count, redirectedTo: shownUrl(hops.last) } : {}),
    ...(hops.count > 0 ? { blobStore: hops.offHost } : {}),
    ...(Number.isFinite(length) ? { bytes: length } : {}),
    ...(sent !== undefined ? { sent } : {}),
    ...(attempt > 1 ? { attempt } : {}),
  };
}

/** Where a request's redirects led (for the `registry-request` event). */
interface Hops {
  /** The URL asked for, when it is not the request's (plain http after a failed https attempt). */
  url?: string;
  count: number;
  last?: string;
  /** The last hop left the first host (blob storage: S3, a CDN). */
  offHost: boolean;
}

/** Follow redirects by hand; Authorization is dropped once we leave the first host. */
async function fetchFollowing(req: SendRequest, timeoutMs: number, hops?: Hops): Promise<Response> {
  let url = req.url;
  const origin = new URL(url).host;
  let headers = { ...(req.headers ?? {}) };
  let method = req.method ?? 'GET';
  let body = req.body;
  for (let hop = 0; ; hop++) {
    const res = await fetchOnce(url, { ...req, method, body }, headers, timeoutMs);
    if (![301, 302, 303, 307, 308].includes(res.status)) return res;
    const location = res.headers.get('location');
    if (!location) return res;
    drain(res);
    if (hop >= MAX_REDIRECTS) {
      throw new TsrunError('ERR_REGISTRY', `requesting ${redact(req.url)}: more than ${MAX_REDIRECTS} redirects`);
    }
    const next = new URL(location, url);
    if (next.host !== origin) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
    url = next.toString();
    if (hops) {
      hops.count++;
      hops.last = url;
      hops.offHost = next.host !== origin;
    }
  }
}

/**
 * Send a request with redirects, retries and the insecure-endpoint scheme fallback. `url` may use
 * either scheme; for an insecure request whose https attempt fails at the connection level, the
 * same URL is retried over http and that host remembered as plain http.
 */
export async function send(req: SendRequest, opts: HttpOptions = {}): Promise<Response> {
  const maxAttempts = req.noRetry ? 1 : (opts.maxAttempts ?? 4);
  const base = opts.baseDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 10_000;
  const timeoutMs = opts.headersTimeoutMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    let res: Response | undefined;
    let error: unknown;
    const hops: Hops = { count: 0, offHost: false };
    try {
      res = await fetchWithFallback(req, timeoutMs, hops);
    } catch (err) {
      error = err;
    }
    opts.reporter?.emit(requestEvent(req, attempt, hops, res, error));
    const retryableStatus = res !== undefined && RETRY_STATUSES.has(res.status);
    const retryable = retryableStatus || (error !== undefined && isRetryableNetworkError(error));
    if (!retryable || attempt >= maxAttempts || req.signal?.aborted) {
      if (res) return res;
      throw networkError(req.url, error);
    }
    let delay = Math.random() * base * 2 ** (attempt - 1);
    const after = res ? retryAfterMs(res.headers.get('retry-after')) : undefined;
    if (after !== undefined) delay = after;
    delay = Math.min(delay, maxDelay);
    const reason = res ? `HTTP ${res.status}` : ((error as Error)?.message ?? String(error));
    opts.reporter?.emit({
      type: 'debug',
      scope: 'registry',
      message: `retrying ${req.method ?? 'GET'} ${redact(req.url)} in ${Math.round(delay)} ms (attempt ${attempt + 1}/${maxAttempts}): ${reason}`,
    });
    if (res) drain(res);
    await sleep(delay, req.signal);
  }
}

async function fetchWithFallback(req: SendRequest, timeoutMs: number, hops: Hops): Promise<Response> {
  const url = new URL(req.url);
  try {
    return await fetchFollowing(req, timeoutMs, hops);
  } catch (err) {
    if (!req.insecure || url.protocol !== 'https:' || !isNetworkError(err) || (err as Error).name === 'AbortError')
      throw err;
    url.protocol = 'http:';
    let res: Response;
    try {
      res = await fetchFollowing({ ...req, url: url.toString() }, timeoutMs, hops);
      hops.url = url.toString();
    } catch (httpErr) {
      // Name the URL that failed last, and that https was tried first (one scheme per message).
      throw Object.assign(httpErr as Error, { failedUrl: url.toString(), after: 'https' });
    }
    schemeByHost.set(url.host, 'http');
    return res;
  }
}

/** The next page of a paginated registry answer (distribution spec: `Link: <URL>; rel="next"`), if any. */
export function nextPage(res: Response): string | undefined {
  return /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
}

export interface RegistryErrorEntry {
  code?: string;
  message?: string;
  detail?: unknown;
}

/** Read at most `max` bytes of a body; the rest is discarded. */
export async function readLimited(res: Response, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const body = res.body as Readable | null;
  if (!body) return { bytes: Buffer.alloc(0), truncated: false };
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const c = chunk as Buffer;
    if (total + c.length > max) {
      chunks.push(c.subarray(0, max - total));
      body.destroy();
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(c);
    total += c.length;
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

export interface ErrorContext {
  /** What we were doing: 'fetching manifest localhost:5000/app:1'. */
  action: string;
  /** host for the login hint */
  host: string;
}

/** `tsrun login HOST`, with Docker Hub's API host shown as the name users log in with. */
export function loginHint(host: string): string {
  const name = host === 'registry-1.docker.io' || host === 'index.docker.io' || host === 'docker.io' ? '' : ` ${host}`;
  return `run \`tsrun login${name}\``;
}

/**
 * Turn a non-2xx registry answer into a TsrunError, keeping the registry's error JSON
 * ({errors:[{code,message,detail}]}, distribution spec "Error Codes") in `detail`.
 */
export async function registryError(res: Response, ctx: ErrorContext): Promise<TsrunError> {
  let errors: RegistryErrorEntry[] = [];
  try {
    const { bytes } = await readLimited(res, 64 * 1024);
    const json = JSON.parse(bytes.toString('utf8')) as { errors?: unknown };
    if (Array.isArray(json.errors)) {
      errors = json.errors
        .filter((e): e is RegistryErrorEntry => typeof e === 'object' && e !== null)
        .map((e) => ({
          code: typeof e.code === 'string' ? e.code : undefined,
          message: typeof e.message === 'string' ? e.message : undefined,
          detail: e.detail,
        }));
    }
  } catch {
    /* not JSON: the status says enough */
  }
  const codes = errors.map((e) => e.code).filter((c): c is string => !!c);
  const said = errors.length
    ? ` (${errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ')})`
    : '';
  const detail = { status: res.status, errors, registryCodes: codes };
  const s = res.status;
  if (s === 404 || codes.some((c) => c === 'MANIFEST_UNKNOWN' || c === 'NAME_UNKNOWN' || c === 'BLOB_UNKNOWN')) {
    return new TsrunError('ERR_REGISTRY_NOT_FOUND', `${ctx.action}: not found${said}`, {
      detail,
      hint: 'check the name and tag; private images need `tsrun login` first',
    });
  }
  if (s === 401 || s === 403) {
    return new TsrunError(
      'ERR_REGISTRY_AUTH',
      `${ctx.action}: registry answered ${s}${said || (s === 401 ? ' (unauthorized)' : ' (forbidden)')}`,
      {
        detail,
        hint: loginHint(ctx.host),
      },
    );
  }
  return new TsrunError('ERR_REGISTRY', `${ctx.action}: registry answered ${s}${said}`, {
    detail,
    retryable: RETRY_STATUSES.has(s),
  });
}
