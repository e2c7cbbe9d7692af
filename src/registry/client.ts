/**
 * A client for one repository on one Endpoint (distribution spec v2, OCI distribution-spec v1.1
 * "Pull": GET /v2/, /v2/<name>/manifests/<ref>, /v2/<name>/blobs/<digest>), plus `call`, the
 * authenticated request that push.ts builds the "Push" operations on.
 *
 * Auth is lazy: requests go out anonymously until a 401 names a challenge; then we get a token
 * (Bearer) or use the credentials (Basic), retry once, and from then on attach it up front.
 *
 * Contract — what is verified:
 * - manifests: at most 4 MiB (we read no more than cap+1 bytes); digest = sha256 of the bytes,
 *   checked against the reference when fetched by digest; schema 1 is refused.
 * - blobs: the returned stream yields at most desc.size bytes and ends cleanly only when the
 *   size and sha256 both match; otherwise it errors (ERR_SIZE / ERR_DIGEST_MISMATCH). A dropped
 *   or stalled connection is resumed from the byte reached with a Range request (blob-stream.ts);
 *   when the resumes run out the stream errors with a final ERR_NETWORK.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Response } from 'node-fetch';
import { TsrunError } from '../errors.js';
import { silentReporter, type Reporter } from '../events.js';
import { sha256Digest } from '../oci/digest.js';
import { MANIFEST_ACCEPT, isSchema1Type } from '../oci/media-types.js';
import { DIGEST_RE, type Descriptor } from '../oci/schemas.js';
import { pumpResumable, resumeSettings, type BlobRange } from './blob-stream.js';
import {
  basicAuthorization,
  defaultTokenCache,
  getToken,
  parseWWWAuthenticate,
  repositoryScope,
  type Challenge,
  type TokenCache,
} from './auth.js';
import {
  baseUrl,
  loginHint,
  readLimited,
  redact,
  registryError,
  send,
  type HttpOptions,
  type SendRequest,
} from './http.js';
import type { Credentials, Endpoint } from './types.js';

export const MANIFEST_MAX = 4 * 1024 * 1024;

export interface RegistryClientOptions {
  endpoint: Endpoint;
  /** Looked up once, on the first challenge that needs them. */
  credentials?: () => Promise<Credentials | undefined>;
  reporter?: Reporter;
  /** Scope actions asked for (default ['pull']). */
  actions?: string[];
  /** More token scopes (a cross-repository mount needs pull on the source repository). */
  extraScopes?: string[];
  http?: HttpOptions;
  tokenCache?: TokenCache;
  /** Resuming blob downloads (blob-stream.ts); default: resumeSettings of an empty environment. */
  blob?: { stallMs: number; maxResumes: number };
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export class RegistryClient {
  readonly endpoint: Endpoint;
  private readonly credentialsFn: (() => Promise<Credentials | undefined>) | undefined;
  private readonly reporter: Reporter;
  private readonly actions: string[];
  private readonly extraScopes: string[];
  private readonly httpOpts: HttpOptions;
  private readonly cache: TokenCache;
  private readonly blobOpts: { stallMs: number; maxResumes: number };
  private challenge: Challenge | undefined;
  private credentials: Credentials | undefined;
  private credentialsLoaded = false;

  constructor(opts: RegistryClientOptions) {
    this.endpoint = opts.endpoint;
    this.credentialsFn = opts.credentials;
    this.reporter = opts.reporter ?? silentReporter;
    this.actions = opts.actions ?? ['pull'];
    this.extraScopes = opts.extraScopes ?? [];
    this.httpOpts = { ...opts.http, reporter: opts.http?.reporter ?? this.reporter };
    this.cache = opts.tokenCache ?? defaultTokenCache;
    this.blobOpts = opts.blob ?? resumeSettings({});
  }

  private get host(): string {
    return this.endpoint.host;
  }
  /** The repository at this endpoint (a mirror may spell it differently from the reference). */
  get repo(): string {
    return this.endpoint.repository;
  }

  private name(tagOrDigest: string): string {
    return `${this.host}/${this.repo}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;
  }

  /** GET /v2/: checks the endpoint speaks the v2 API and learns its challenge. */
  async ping(): Promise<void> {
    const res = await this.sendRaw({ url: `${baseUrl(this.host, this.endpoint.insecure)}/v2/` }, {});
    if (res.status === 401) {
      this.learnChallenge(res);
      await readLimited(res, 64 * 1024);
      return;
    }
    if (!res.ok) throw await registryError(res, { action: `pinging ${this.host}`, host: this.host });
    await readLimited(res, 64 * 1024);
  }

  /** Fetch a manifest or index by tag or digest; bytes are exact, digest computed here. */
  async getManifest(tagOrDigest: string): Promise<FetchedManifest> {
    const byDigest = tagOrDigest.startsWith('sha256:');
    if (byDigest && !DIGEST_RE.test(tagOrDigest)) {
      throw new TsrunError('ERR_REFERENCE', `fetching manifest ${this.name(tagOrDigest)}: invalid digest`);
    }
    const action = `fetching manifest ${this.name(tagOrDigest)}`;
    const res = await this.request(
      `/v2/${this.repo}/manifests/${tagOrDigest}`,
      { Accept: MANIFEST_ACCEPT.join(', ') },
      action,
    );
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(length) && length > MANIFEST_MAX) {
      (res.body as Readable | null)?.destroy();
      throw new TsrunError(
        'ERR_SIZE',
        `${action}: the manifest is ${length} bytes, more than the ${MANIFEST_MAX} allowed`,
      );
    }
    let read;
    try {
      read = await readLimited(res, MANIFEST_MAX + 1);
    } catch (err) {
      throw new TsrunError('ERR_NETWORK', `${action}: ${(err as Error).message}`, { cause: err, retryable: true });
    }
    const { bytes } = read;
    if (bytes.length > MANIFEST_MAX) {
      throw new TsrunError('ERR_SIZE', `${action}: the manifest is more than the ${MANIFEST_MAX} bytes allowed`);
    }
    const digest = sha256Digest(bytes);
    if (byDigest && digest !== tagOrDigest) {
      throw new TsrunError('ERR_DIGEST_MISMATCH', `${action}: the registry sent content with digest ${digest}`);
    }
    let declared: unknown;
    let schemaVersion: unknown;
    try {
      const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      declared = json?.['mediaType'];
      schemaVersion = json?.['schemaVersion'];
    } catch {
      /* parseManifestOrIndex reports bad JSON */
    }
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const mediaType = typeof declared === 'string' && declared ? declared : contentType;
    if (isSchema1Type(mediaType) || isSchema1Type(contentType) || schemaVersion === 1) {
      throw new TsrunError('ERR_REGISTRY_UNSUPPORTED', 'manifest schema 1 is deprecated and not supported', {
        hint: 'push the image again with a current Docker, podman or buildah',
      });
    }
    this.reporter.emit({
      type: 'debug',
      scope: 'registry',
      message: `manifest ${this.name(tagOrDigest)} → ${digest} (${mediaType}, ${bytes.length} bytes)`,
    });
    return { bytes, mediaType, digest };
  }

  /**
   * Stream a blob, verifying size and digest as it flows. The stream errors (never ends cleanly)
   * when the content does not match `desc`, and never yields more than desc.size bytes.
   */
  async fetchBlob(desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    if (!DIGEST_RE.test(desc.digest)) {
      throw new TsrunError('ERR_MANIFEST', `fetching blob ${desc.digest}: invalid digest`);
    }
    const action = `fetching blob ${desc.digest} from ${this.host}/${this.repo}`;
    const first = await this.openBlob(desc, action, 0, opts.signal);
    const out = new VerifyingStream(desc, action);
    pumpResumable(first.body, (offset) => this.openBlob(desc, action, offset, opts.signal), out, {
      action,
      size: desc.size,
      stallMs: this.blobOpts.stallMs,
      maxResumes: this.blobOpts.maxResumes,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onResume: (offset, attempt, reason) =>
        this.reporter.emit({ type: 'blob-resume', digest: desc.digest, offset, size: desc.size, attempt, reason }),
    });
    return out;
  }

  /** GET the blob from `offset` (a Range request past 0); see blob-stream.ts for a 200 answer. */
  private async openBlob(desc: Descriptor, action: string, offset: number, signal?: AbortSignal): Promise<BlobRange> {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const res = await this.request(
      `/v2/${this.repo}/blobs/${desc.digest}`,
      headers,
      action,
      signal,
      offset > 0 ? { ok: [200, 206] } : {},
    );
    const body = (res.body as Readable | null) ?? Readable.from([]);
    const partial = offset > 0 && res.status === 206;
    const range = res.headers.get('content-range');
    if (partial && !(range ?? '').startsWith(`bytes ${offset}-`)) {
      body.destroy();
      throw new TsrunError(
        'ERR_REGISTRY',
        `${action}: asked for bytes from ${offset}, the registry sent range "${range}"`,
      );
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    const expected = partial ? desc.size - offset : desc.size;
    if (Number.isFinite(length) && length !== expected) {
      body.destroy();
      throw new TsrunError(
        'ERR_SIZE',
        `${action}: the registry announces ${length} bytes, the descriptor says ${desc.size}${partial ? ` (from byte ${offset})` : ''}`,
      );
    }
    return { body, skip: partial ? 0 : offset };
  }

  /**
   * For `tsrun login`: check credentials against the registry. Basic: GET /v2/ with them.
   * Bearer: a token for the registry's service (no scope) with them. A 401 means bad credentials.
   * Returns which scheme the registry uses ('none' when it needs no auth at all).
   */
  async checkCredentials(creds: Credentials): Promise<{ scheme: 'none' | 'basic' | 'bearer'; identityToken?: string }> {
    const res = await this.sendRaw({ url: `${baseUrl(this.host, this.endpoint.insecure)}/v2/` }, {});
    await readLimited(res, 64 * 1024).catch(() => undefined);
    if (res.ok) return { scheme: 'none' };
    if (res.status !== 401) throw await registryError(res, { action: `logging in to ${this.host}`, host: this.host });
    const ch = this.learnChallenge(res);
    if (ch?.scheme === 'bearer' && ch.params['realm']) {
      const token = await getToken(
        {
          realm: ch.params['realm'],
          service: ch.params['service'],
          scopes: [],
          credentials: creds,
          insecure: this.endpoint.insecure,
          registryHost: this.host,
          noCache: true,
        },
        { http: this.httpOpts, reporter: this.reporter },
      );
      return token.refreshToken ? { scheme: 'bearer', identityToken: token.refreshToken } : { scheme: 'bearer' };
    }
    if (ch?.scheme === 'basic') {
      if (creds.kind !== 'basic')
        throw new TsrunError(
          'ERR_REGISTRY_AUTH',
          `logging in to ${this.host}: the registry uses Basic auth, which needs a username and password`,
        );
      const again = await this.sendRaw(
        {
          url: `${baseUrl(this.host, this.endpoint.insecure)}/v2/`,
          headers: { Authorization: basicAuthorization(creds.username, creds.password) },
        },
        {},
      );
      await readLimited(again, 64 * 1024).catch(() => undefined);
      if (again.ok) return { scheme: 'basic' };
      if (again.status === 401 || again.status === 403) {
        throw new TsrunError(
          'ERR_REGISTRY_AUTH',
          `logging in to ${this.host}: the registry refused the username or password`,
          { hint: 'check the username and password' },
        );
      }
      throw await registryError(again, { action: `logging in to ${this.host}`, host: this.host });
    }
    throw new TsrunError(
      'ERR_REGISTRY_UNSUPPORTED',
      `logging in to ${this.host}: unsupported authentication scheme "${ch?.scheme ?? 'none'}"`,
    );
  }

  // ---- internals ----

  private learnChallenge(res: Response): Challenge | undefined {
    const header = res.headers.get('www-authenticate');
    if (!header) return undefined;
    const all = parseWWWAuthenticate(header);
    const ch = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (ch) {
      this.challenge = ch;
      this.reporter.emit({
        type: 'debug',
        scope: 'auth',
        message: `${this.host} asks for ${ch.scheme} auth${ch.params['realm'] ? ` (realm ${redact(ch.params['realm'])})` : ''}`,
      });
    }
    return ch;
  }

  private async loadCredentials(): Promise<Credentials | undefined> {
    if (!this.credentialsLoaded) {
      this.credentials = await this.credentialsFn?.();
      this.credentialsLoaded = true;
    }
    return this.credentials;
  }

  /** The Authorization header for the challenge we know, or undefined. */
  private async authorization(): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    const creds = await this.loadCredentials();
    if (ch.scheme === 'basic') {
      return creds?.kind === 'basic' ? basicAuthorization(creds.username, creds.password) : undefined;
    }
    if (ch.scheme === 'bearer') {
      const realm = ch.params['realm'];
      if (!realm)
        throw new TsrunError('ERR_REGISTRY_AUTH', `authenticating to ${this.host}: the Bearer challenge has no realm`);
      // No repository (the catalog): only the extra scopes (registry:catalog:*).
      const scopes = [...(this.repo ? [repositoryScope(this.repo, this.actions)] : []), ...this.extraScopes];
      const token = await getToken(
        {
          realm,
          service: ch.params['service'],
          scopes,
          credentials: creds,
          insecure: this.endpoint.insecure,
          registryHost: this.host,
        },
        { cache: this.cache, http: this.httpOpts, reporter: this.reporter },
      );
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  private sendRaw(req: Omit<SendRequest, 'insecure'>, extra: Record<string, string>): Promise<Response> {
    return send({ ...req, headers: { ...req.headers, ...extra }, insecure: this.endpoint.insecure }, this.httpOpts);
  }

  /** The base URL of this endpoint's v2 API for this repository: …/v2/<name>. */
  repositoryUrl(): string {
    return `${baseUrl(this.host, this.endpoint.insecure)}/v2/${this.repo}`;
  }

  /**
   * An authenticated request of any method to a path under /v2/ or to a URL the registry gave
   * (an upload's Location; relative ones resolve against the endpoint). Authorization goes only
   * to the endpoint's own host. Statuses in `ok` return the response; others become TsrunError.
   * `noRetry` for requests whose body must not be sent twice (upload chunks).
   */
  async call(
    method: NonNullable<SendRequest['method']>,
    pathOrUrl: string,
    o: {
      headers?: Record<string, string>;
      body?: Buffer | string;
      ok: number[];
      action: string;
      noRetry?: boolean;
    },
  ): Promise<Response> {
    return this.request(pathOrUrl, o.headers ?? {}, o.action, undefined, {
      method,
      body: o.body,
      ok: o.ok,
      noRetry: o.noRetry,
    });
  }

  /** With auth: on the first 401, learn the challenge, authenticate and retry once. Unexpected status → TsrunError. */
  private async request(
    path: string,
    headers: Record<string, string>,
    action: string,
    signal?: AbortSignal,
    more: { method?: SendRequest['method']; body?: Buffer | string; ok?: number[]; noRetry?: boolean } = {},
  ): Promise<Response> {
    const base = baseUrl(this.host, this.endpoint.insecure);
    const url = new URL(path, `${base}/`).toString();
    const sameHost = new URL(url).host === new URL(base).host;
    // The challenge this attempt was authorised for (undefined: sent anonymously). Read per
    // attempt, not after the answer: concurrent requests learn the challenge for each other.
    let sentFor: Challenge | undefined;
    const go = async (): Promise<Response> => {
      sentFor = this.challenge;
      const auth = sameHost ? await this.authorization() : undefined;
      const h = auth ? { ...headers, Authorization: auth } : headers;
      const req: SendRequest = { url, headers: h, insecure: this.endpoint.insecure };
      if (more.method) req.method = more.method;
      if (more.body !== undefined) req.body = more.body;
      if (more.noRetry) req.noRetry = true;
      if (signal) req.signal = signal;
      return send(req, this.httpOpts);
    };
    let res = await go();
    if (res.status === 401) {
      const before = sentFor;
      const ch = this.learnChallenge(res);
      // Retry once if we learned something we did not send: a first challenge, or a new one.
      if (ch && (before === undefined || JSON.stringify(before) !== JSON.stringify(ch))) {
        await readLimited(res, 64 * 1024).catch(() => undefined);
        res = await go();
      }
    }
    if (more.ok ? !more.ok.includes(res.status) : !res.ok) {
      const err = await registryError(res, { action, host: this.host });
      if (err.code === 'ERR_REGISTRY_AUTH' && !this.credentials) {
        throw new TsrunError(err.code, err.message, {
          hint: `the image may be private: ${loginHint(this.host)}`,
          detail: err.detail,
        });
      }
      throw err;
    }
    return res;
  }
}

/** Verifies size and sha256 as bytes pass; errors instead of ending when they do not match. */
class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;

  constructor(
    private readonly desc: Descriptor,
    private readonly action: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const room = this.desc.size - this.seen;
    if (chunk.length > room) {
      const part = chunk.subarray(0, room);
      this.seen += chunk.length;
      if (part.length) {
        this.hash.update(part);
        this.push(part);
      }
      cb(
        new TsrunError(
          'ERR_SIZE',
          `${this.action}: the registry sent more than the ${this.desc.size} bytes the descriptor declares`,
        ),
      );
      return;
    }
    this.seen += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.desc.size) {
      cb(
        new TsrunError(
          'ERR_SIZE',
          `${this.action}: got ${this.seen} bytes, the descriptor declares ${this.desc.size}`,
          { retryable: this.seen < this.desc.size },
        ),
      );
      return;
    }
    const got = 'sha256:' + this.hash.digest('hex');
    if (got !== this.desc.digest) {
      cb(new TsrunError('ERR_DIGEST_MISMATCH', `${this.action}: the content has digest ${got}`));
      return;
    }
    cb();
  }
}
