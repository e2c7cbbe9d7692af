/**
 * Error paths of the HTTP layer and the client against fake registries (node:http in this
 * process): retries, Retry-After, redirects to another host, size caps, schema 1, tampered and
 * truncated blobs, resets, and the https-first rule.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectingReporter } from '../../src/events.js';
import { MediaType } from '../../src/oci/media-types.js';
import { TokenCache } from '../../src/registry/auth.js';
import { MANIFEST_MAX, RegistryClient } from '../../src/registry/client.js';
import { USER_AGENT, retryAfterMs } from '../../src/registry/http.js';
import { readAll, rejects } from '../helpers/assert.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
interface Fake {
  host: string;
  url: string;
  close(): Promise<void>;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
}

async function fake(handler: Handler): Promise<Fake> {
  const requests: Fake['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const FAST = { baseDelayMs: 5, maxDelayMs: 50 };

function clientFor(f: Fake, opts: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient {
  return new RegistryClient({
    endpoint: { host: f.host, repository: 'test/app', insecure: true, mirror: false },
    http: FAST,
    tokenCache: new TokenCache(),
    ...opts,
  });
}

const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCIManifest,
    config: { mediaType: MediaType.OCIConfig, digest: 'sha256:' + 'a'.repeat(64), size: 2 },
    layers: [],
  }),
);

function serveManifest(res: http.ServerResponse, body = manifest): void {
  res.writeHead(200, { 'Content-Type': MediaType.OCIManifest, 'Content-Length': String(body.length) });
  res.end(body);
}

test('429 then 200: retried once, honouring Retry-After; User-Agent is tsrun/<version>', async () => {
  let n = 0;
  const f = await fake((_req, res) => {
    if (n++ === 0) {
      res.writeHead(429, { 'Retry-After': '0' });
      res.end();
      return;
    }
    serveManifest(res);
  });
  try {
    const reporter = collectingReporter();
    const m = await clientFor(f, { reporter }).getManifest('v1');
    assert.is(m.digest, sha(manifest));
    assert.is(f.requests.length, 2);
    assert.match(USER_AGENT, /^tsrun\/\d+\.\d+\.\d+/);
    assert.is(f.requests[0]!.headers['user-agent'], USER_AGENT);
    assert.match(String(f.requests[0]!.headers['accept']), /application\/vnd\.oci\.image\.index\.v1\+json/);
    assert.ok(
      reporter.events.some((e) => e.type === 'debug' && /retrying .* HTTP 429/.test(e.message)),
      'the retry is reported',
    );
  } finally {
    await f.close();
  }
});

test('Retry-After (seconds) is waited for, within the bound', async () => {
  let n = 0;
  const f = await fake((_req, res) => {
    if (n++ === 0) {
      res.writeHead(503, { 'Retry-After': '1' });
      res.end();
      return;
    }
    serveManifest(res);
  });
  try {
    const t0 = Date.now();
    await clientFor(f, { http: { baseDelayMs: 5, maxDelayMs: 5000 } }).getManifest('v1');
    assert.ok(Date.now() - t0 >= 900, `waited ${Date.now() - t0} ms`);
    assert.is(n, 2);
  } finally {
    await f.close();
  }
  assert.is(retryAfterMs('3'), 3000);
  assert.is(retryAfterMs(new Date(Date.now() + 10_000).toUTCString(), Date.now())! > 8000, true);
  assert.is(retryAfterMs('soon'), undefined);
});

test('500 forever: 4 attempts, then ERR_REGISTRY (retryable) with the registry error JSON in detail', async () => {
  const f = await fake((_req, res) => {
    res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'storage exploded' }] }));
  });
  try {
    const e = await rejects(clientFor(f).getManifest('v1'), 'ERR_REGISTRY', /storage exploded/);
    assert.is(f.requests.length, 4);
    assert.is(e.retryable, true);
    assert.is(e.detail?.['status'], 500);
    assert.equal(e.detail?.['registryCodes'], ['UNKNOWN']);
  } finally {
    await f.close();
  }
});

test('a 400 is not retried', async () => {
  const f = await fake((_req, res) => {
    res.writeHead(400);
    res.end('{"errors":[{"code":"TAG_INVALID","message":"bad"}]}');
  });
  try {
    await rejects(clientFor(f).getManifest('v1'), 'ERR_REGISTRY', /TAG_INVALID/);
    assert.is(f.requests.length, 1);
  } finally {
    await f.close();
  }
});

test('connection reset is retried; a connection that keeps resetting is ERR_NETWORK retryable', async () => {
  let n = 0;
  const f = await fake((req, res) => {
    if (n++ === 0) {
      req.socket.destroy();
      return;
    }
    serveManifest(res);
  });
  try {
    const m = await clientFor(f).getManifest('v1');
    assert.is(m.digest, sha(manifest));
    assert.is(n, 2);
  } finally {
    await f.close();
  }
  const always = await fake((req) => {
    req.socket.destroy();
  });
  try {
    const e = await rejects(clientFor(always).getManifest('v1'), 'ERR_NETWORK');
    assert.is(e.retryable, true);
    assert.is(always.requests.length, 4);
  } finally {
    await always.close();
  }
});

test('redirect to another host: Authorization is dropped there, kept on the registry', async () => {
  const blob = Buffer.from('blob bytes from storage');
  const storage = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(blob.length) });
    res.end(blob);
  });
  const reg = await fake((req, res) => {
    if (req.headers['authorization'] !== 'Basic ' + Buffer.from('u:p').toString('base64')) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"' });
      res.end();
      return;
    }
    res.writeHead(307, { Location: `${storage.url}/storage/blob?sig=secret` });
    res.end();
  });
  try {
    const c = clientFor(reg, { credentials: async () => ({ kind: 'basic', username: 'u', password: 'p' }) });
    const got = await readAll(
      await c.fetchBlob({ mediaType: 'application/octet-stream', digest: sha(blob), size: blob.length }),
    );
    assert.ok(got.equals(blob));
    assert.is(reg.requests.length, 2, 'one anonymous, one authenticated');
    assert.ok(reg.requests[1]!.headers['authorization'], 'the registry got credentials');
    assert.is(storage.requests.length, 1);
    assert.is(storage.requests[0]!.headers['authorization'], undefined, 'storage got no Authorization');
    assert.is(storage.requests[0]!.url, '/storage/blob?sig=secret');
  } finally {
    await reg.close();
    await storage.close();
  }
});

test('redirect loops stop after 10 hops', async () => {
  const f = await fake((_req, res) => {
    res.writeHead(302, { Location: '/v2/again' });
    res.end();
  });
  try {
    await rejects(clientFor(f).getManifest('v1'), 'ERR_REGISTRY', /redirects/);
    assert.is(f.requests.length, 11);
  } finally {
    await f.close();
  }
});

test('oversize manifest: ERR_SIZE, with and without Content-Length, reading no more than cap+1', async () => {
  const big = Buffer.alloc(MANIFEST_MAX + 10, 0x20);
  const withLength = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Type': MediaType.OCIManifest, 'Content-Length': String(big.length) });
    res.end(big);
  });
  const chunked = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Type': MediaType.OCIManifest });
    // write in pieces, without a length
    for (let i = 0; i < big.length; i += 65536) res.write(big.subarray(i, i + 65536));
    res.end();
  });
  try {
    await rejects(clientFor(withLength).getManifest('v1'), 'ERR_SIZE', /4194304/);
    await rejects(clientFor(chunked).getManifest('v1'), 'ERR_SIZE');
  } finally {
    await withLength.close();
    await chunked.close();
  }
});

test('schema 1 manifests are refused with a hint', async () => {
  const s1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'test/app', tag: 'v1', fsLayers: [], history: [] }));
  const f = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Type': MediaType.DockerSchema1Signed, 'Content-Length': String(s1.length) });
    res.end(s1);
  });
  try {
    const e = await rejects(
      clientFor(f).getManifest('v1'),
      'ERR_REGISTRY_UNSUPPORTED',
      /manifest schema 1 is deprecated and not supported/,
    );
    assert.match(e.hint ?? '', /push the image again/);
  } finally {
    await f.close();
  }
});

test('manifest by digest: content that does not match is ERR_DIGEST_MISMATCH; mediaType falls back to Content-Type', async () => {
  const noType = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  const f = await fake((req, res) => {
    if (req.url?.endsWith('/plain')) {
      res.writeHead(200, { 'Content-Type': `${MediaType.OCIIndex}; charset=utf-8` });
      res.end(noType);
      return;
    }
    serveManifest(res);
  });
  try {
    const wrong = 'sha256:' + 'b'.repeat(64);
    await rejects(clientFor(f).getManifest(wrong), 'ERR_DIGEST_MISMATCH', new RegExp(sha(manifest).slice(7)));
    const ok = await clientFor(f).getManifest(sha(manifest));
    assert.is(ok.mediaType, MediaType.OCIManifest);
    const plain = await clientFor(f).getManifest('plain');
    assert.is(plain.mediaType, MediaType.OCIIndex);
  } finally {
    await f.close();
  }
});

test('tampered blob (right length, wrong bytes): the stream errors with ERR_DIGEST_MISMATCH, never ends cleanly', async () => {
  const good = Buffer.from('the real layer bytes');
  const bad = Buffer.from(good);
  bad[3] = bad[3]! ^ 0xff;
  const f = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(bad.length) });
    res.end(bad);
  });
  try {
    const s = await clientFor(f).fetchBlob({ mediaType: 'x', digest: sha(good), size: good.length });
    let ended = false;
    s.on('end', () => {
      ended = true;
    });
    const e = await rejects(readAll(s), 'ERR_DIGEST_MISMATCH');
    assert.match(e.message, /fetching blob/);
    assert.is(ended, false);
  } finally {
    await f.close();
  }
});

test('blob longer than its descriptor (no Content-Length): ERR_SIZE, and never more than size bytes yielded', async () => {
  const good = Buffer.alloc(1000, 1);
  const f = await fake((_req, res) => {
    res.writeHead(200);
    res.write(good);
    res.end(Buffer.alloc(500, 2));
  });
  try {
    const s = await clientFor(f).fetchBlob({ mediaType: 'x', digest: sha(good), size: good.length });
    let seen = 0;
    s.on('data', (c: Buffer) => {
      seen += c.length;
    });
    await rejects(readAll(s), 'ERR_SIZE');
    assert.ok(seen <= good.length, `yielded ${seen} bytes`);
  } finally {
    await f.close();
  }
});

test('Content-Length that disagrees with the descriptor fails before streaming', async () => {
  const good = Buffer.alloc(100, 1);
  const f = await fake((_req, res) => {
    res.writeHead(200, { 'Content-Length': '101' });
    res.end(Buffer.alloc(101, 1));
  });
  try {
    await rejects(clientFor(f).fetchBlob({ mediaType: 'x', digest: sha(good), size: good.length }), 'ERR_SIZE', /101/);
  } finally {
    await f.close();
  }
});

test('a connection cut mid-stream is resumed with Range; when every resume is cut too, a final ERR_NETWORK', async () => {
  const good = Buffer.alloc(200_000, 3);
  const ranges: string[] = [];
  const f = await fake((req, res) => {
    ranges.push(String(req.headers.range ?? ''));
    res.writeHead(200, { 'Content-Length': String(good.length) });
    res.write(good.subarray(0, 50_000), () => setTimeout(() => req.socket.destroy(), 20));
  });
  try {
    const s = await clientFor(f, { blob: { stallMs: 30_000, maxResumes: 1 } }).fetchBlob({
      mediaType: 'x',
      digest: sha(good),
      size: good.length,
    });
    const e = await rejects(
      readAll(s),
      'ERR_NETWORK',
      /failed at byte \d+ of 200000.*1 resumed requests did not finish it/,
    );
    assert.is(e.retryable, false, 'the resumes were the retries');
    assert.is(ranges.length, 2);
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  } finally {
    await f.close();
  }
});

test('a resumed blob answered 206 continues where it stopped, and the digest covers the whole', async () => {
  const good = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const ranges: string[] = [];
  const f = await fake((req, res) => {
    const range = String(req.headers.range ?? '');
    ranges.push(range);
    const from = Number(/^bytes=(\d+)-$/.exec(range)?.[1] ?? 0);
    if (from === 0) {
      res.writeHead(200, { 'Content-Length': String(good.length) });
      res.write(good.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    res.writeHead(206, {
      'Content-Length': String(good.length - from),
      'Content-Range': `bytes ${from}-${good.length - 1}/${good.length}`,
    });
    res.end(good.subarray(from));
  });
  try {
    const s = await clientFor(f).fetchBlob({ mediaType: 'x', digest: sha(good), size: good.length });
    assert.ok((await readAll(s)).equals(good));
    assert.is(ranges.length, 2);
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  } finally {
    await f.close();
  }
});

test('https first: an insecure endpoint falls back to http; a secure one does not', async () => {
  const f = await fake((_req, res) => serveManifest(res));
  try {
    const secure = new RegistryClient({
      endpoint: { host: f.host, repository: 'test/app', insecure: false, mirror: false },
      http: FAST,
      tokenCache: new TokenCache(),
    });
    const e = await rejects(secure.getManifest('v1'), 'ERR_NETWORK');
    assert.is(f.requests.length, 0, 'the plain-http server never saw a valid HTTP request');
    assert.not.match(e.message, /http:\/\//);
    const m = await clientFor(f).getManifest('v1');
    assert.is(m.digest, sha(manifest));
    assert.is(f.requests.length, 1);
    // Having learned that this host speaks http for insecure endpoints must not downgrade secure ones.
    await rejects(secure.getManifest('v1'), 'ERR_NETWORK');
    assert.is(f.requests.length, 1);
  } finally {
    await f.close();
  }
});

test('an insecure endpoint that answers neither scheme: one message, naming the http URL that failed last', async () => {
  const f = await fake((_req, res) => serveManifest(res));
  const host = f.host;
  await f.close();
  const c = new RegistryClient({
    endpoint: { host, repository: 'test/app', insecure: true, mirror: false },
    http: { ...FAST, maxAttempts: 1 },
    tokenCache: new TokenCache(),
  });
  const e = await rejects(c.getManifest('v1'), 'ERR_NETWORK');
  assert.match(
    e.message,
    `requesting http://${host}/v2/test/app/manifests/v1 (https failed first): connect ECONNREFUSED`,
  );
  assert.not.match(e.message, 'https://');
});

test('Bearer challenge against a token service that only sends access_token; 401 retried once, then used up front', async () => {
  const token = 'tok-' + 'x'.repeat(20);
  let tokenCalls = 0;
  const ts = await fake((req, res) => {
    tokenCalls++;
    const url = new URL(req.url ?? '/', 'http://x');
    assert.equal(url.searchParams.getAll('scope'), ['repository:test/app:pull']);
    assert.is(url.searchParams.get('service'), 'fake-svc');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ access_token: token }));
  });
  const reg = await fake((req, res) => {
    if (req.headers['authorization'] !== `Bearer ${token}`) {
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="${ts.url}/token",service="fake-svc",scope="repository:test/app:pull"`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    serveManifest(res);
  });
  try {
    const reporter = collectingReporter();
    const c = clientFor(reg, { reporter });
    await c.getManifest('v1');
    await c.getManifest('v2');
    await c.getManifest('v3');
    assert.is(tokenCalls, 1);
    assert.is(reg.requests.length, 4, 'one 401, then three authorised requests');
    assert.not.ok(JSON.stringify(reporter.events).includes(token), 'the token is never reported');
  } finally {
    await reg.close();
    await ts.close();
  }
});

test('a registry that keeps answering 401 after authentication: ERR_REGISTRY_AUTH, no loop', async () => {
  const reg = await fake((_req, res) => {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' });
    res.end();
  });
  try {
    const c = clientFor(reg, { credentials: async () => ({ kind: 'basic', username: 'u', password: 'p' }) });
    const e = await rejects(c.getManifest('v1'), 'ERR_REGISTRY_AUTH', /401/);
    assert.match(e.hint ?? '', /tsrun login 127\.0\.0\.1/);
    assert.is(reg.requests.length, 2);
  } finally {
    await reg.close();
  }
});

test.run();
