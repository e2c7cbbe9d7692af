import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TsrunError } from '../../src/errors.js';
import { collectingReporter } from '../../src/events.js';
import {
  TOKEN_RESPONSE_MAX,
  TokenCache,
  getToken,
  parseWWWAuthenticate,
  repositoryScope,
} from '../../src/registry/auth.js';

test('parseWWWAuthenticate: Bearer with realm/service/scope', () => {
  const c = parseWWWAuthenticate(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"',
  );
  assert.equal(c, [
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/node:pull',
      },
    },
  ]);
});

test('parseWWWAuthenticate: Basic, unquoted values, case, spaces, escapes', () => {
  assert.equal(parseWWWAuthenticate('Basic realm="Registry Realm"'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
  ]);
  assert.equal(parseWWWAuthenticate('BASIC Realm=simple'), [{ scheme: 'basic', params: { realm: 'simple' } }]);
  assert.equal(parseWWWAuthenticate('Bearer realm = "a\\"b\\\\c" , error="insufficient_scope"'), [
    { scheme: 'bearer', params: { realm: 'a"b\\c', error: 'insufficient_scope' } },
  ]);
  assert.equal(parseWWWAuthenticate('Bearer realm="x,y",service="s"')[0]!.params, { realm: 'x,y', service: 's' });
});

test('parseWWWAuthenticate: several challenges (one header or joined headers)', () => {
  const c = parseWWWAuthenticate('Basic realm="r1", Bearer realm="https://t/token",service="svc", Negotiate abc123==');
  assert.is(c.length, 3);
  assert.is(c[0]!.scheme, 'basic');
  assert.equal(c[0]!.params, { realm: 'r1' });
  assert.is(c[1]!.scheme, 'bearer');
  assert.equal(c[1]!.params, { realm: 'https://t/token', service: 'svc' });
  assert.is(c[2]!.scheme, 'negotiate');
  assert.equal(parseWWWAuthenticate(''), []);
  assert.equal(parseWWWAuthenticate('Bearer'), [{ scheme: 'bearer', params: {} }]);
});

test('repositoryScope', () => {
  assert.is(repositoryScope('library/node', ['pull']), 'repository:library/node:pull');
  assert.is(repositoryScope('a/b', ['pull', 'push']), 'repository:a/b:pull,push');
});

interface TokenFake {
  realm: string;
  calls: Array<{ method: string; url: URL; auth?: string; body: string }>;
  close(): Promise<void>;
}

async function tokenServer(
  answer: (call: TokenFake['calls'][number]) => { status: number; body: string },
): Promise<TokenFake> {
  const calls: TokenFake['calls'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        body: Buffer.concat(chunks).toString(),
        ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
      };
      calls.push(call);
      const a = answer(call);
      res.writeHead(a.status, { 'Content-Type': 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    calls,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function rejects(p: Promise<unknown>, code: string): Promise<TsrunError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.is((err as TsrunError).code, code, (err as Error).message);
    return err as TsrunError;
  }
  return assert.unreachable(`expected ${code}`) as never;
}

const FAST = { baseDelayMs: 1, maxDelayMs: 10 };

test('getToken: GET with service and several scope params, Basic credentials, token/access_token, expiry default 60 s', async () => {
  const ts = await tokenServer((c) => ({
    status: 200,
    body: JSON.stringify(
      c.url.searchParams.get('service') === 'a' ? { token: 'T1' } : { access_token: 'T2', expires_in: 3600 },
    ),
  }));
  try {
    const cache = new TokenCache();
    const t0 = Date.now();
    const t = await getToken(
      {
        realm: ts.realm,
        service: 'a',
        scopes: ['repository:x:pull', 'repository:y:pull'],
        credentials: { kind: 'basic', username: 'u', password: 'p' },
        registryHost: 'r',
      },
      { cache, http: FAST },
    );
    assert.is(t.token, 'T1');
    assert.ok(t.expiresAt >= t0 + 60_000 && t.expiresAt <= Date.now() + 60_000);
    assert.equal(ts.calls[0]!.url.searchParams.getAll('scope'), ['repository:x:pull', 'repository:y:pull']);
    assert.is(ts.calls[0]!.auth, 'Basic ' + Buffer.from('u:p').toString('base64'));
    const t2 = await getToken({ realm: ts.realm, service: 'b', scopes: [], registryHost: 'r' }, { cache, http: FAST });
    assert.is(t2.token, 'T2');
    assert.ok(t2.expiresAt > Date.now() + 3500_000);
    assert.is(ts.calls[1]!.auth, undefined, 'anonymous: no Authorization');
  } finally {
    await ts.close();
  }
});

test('getToken: cache per (realm, service, scope, user) with expiry', async () => {
  let n = 0;
  const ts = await tokenServer(() => ({ status: 200, body: JSON.stringify({ token: `T${++n}`, expires_in: 10 }) }));
  try {
    const cache = new TokenCache();
    const req = { realm: ts.realm, service: 's', scopes: ['repository:x:pull'], registryHost: 'r' };
    const a = await getToken(req, { cache, http: FAST });
    const b = await getToken(req, { cache, http: FAST });
    assert.is(a.token, b.token);
    assert.is(ts.calls.length, 1);
    assert.ok(a.expiresAt >= Date.now() + 55_000, 'expires_in below 60 s counts as 60 s');
    await getToken({ ...req, scopes: ['repository:y:pull'] }, { cache, http: FAST });
    await getToken({ ...req, credentials: { kind: 'basic', username: 'u', password: 'p' } }, { cache, http: FAST });
    assert.is(ts.calls.length, 3, 'other scope and other user are other tokens');
    const key = TokenCache.key(req);
    assert.ok(cache.get(key));
    assert.is(cache.get(key, a.expiresAt), undefined, 'expired at expiry time');
    const c = await getToken(req, { cache, http: FAST });
    assert.is.not(c.token, a.token, 'fetched anew after expiry');
  } finally {
    await ts.close();
  }
});

test('getToken: identity token by POST grant_type=refresh_token', async () => {
  const ts = await tokenServer(() => ({
    status: 200,
    body: JSON.stringify({ access_token: 'A', refresh_token: 'R2' }),
  }));
  try {
    const t = await getToken(
      {
        realm: ts.realm,
        service: 's',
        scopes: ['repository:x:pull', 'repository:y:pull'],
        credentials: { kind: 'identity', token: 'R1' },
        registryHost: 'r',
      },
      { cache: new TokenCache(), http: FAST },
    );
    assert.is(t.token, 'A');
    assert.is(t.refreshToken, 'R2');
    const call = ts.calls[0]!;
    assert.is(call.method, 'POST');
    const form = new URLSearchParams(call.body);
    assert.is(form.get('grant_type'), 'refresh_token');
    assert.is(form.get('refresh_token'), 'R1');
    assert.is(form.get('service'), 's');
    assert.is(form.get('scope'), 'repository:x:pull repository:y:pull');
  } finally {
    await ts.close();
  }
});

test('getToken: 401/403 → ERR_REGISTRY_AUTH with login hint; no secrets in messages or events', async () => {
  for (const status of [401, 403]) {
    const ts = await tokenServer(() => ({ status, body: '{"details":"incorrect username or password"}' }));
    try {
      const reporter = collectingReporter();
      const e = await rejects(
        getToken(
          {
            realm: ts.realm,
            service: 's',
            scopes: [],
            credentials: { kind: 'basic', username: 'u', password: 'sekrit' },
            registryHost: 'ghcr.io',
          },
          { cache: new TokenCache(), http: FAST, reporter },
        ),
        'ERR_REGISTRY_AUTH',
      );
      assert.is(e.hint, 'run `tsrun login ghcr.io`');
      assert.match(e.message, new RegExp(String(status)));
      assert.not.match(e.message + JSON.stringify(reporter.events), /sekrit/);
    } finally {
      await ts.close();
    }
  }
  const hub = await tokenServer(() => ({ status: 401, body: '{}' }));
  try {
    const e = await rejects(
      getToken(
        { realm: hub.realm, scopes: [], registryHost: 'registry-1.docker.io' },
        { cache: new TokenCache(), http: FAST },
      ),
      'ERR_REGISTRY_AUTH',
    );
    assert.is(e.hint, 'run `tsrun login`');
  } finally {
    await hub.close();
  }
});

test('getToken: oversize, non-JSON and tokenless responses are refused', async () => {
  const huge = await tokenServer(() => ({
    status: 200,
    body: JSON.stringify({ token: 'x'.repeat(TOKEN_RESPONSE_MAX) }),
  }));
  try {
    await rejects(
      getToken({ realm: huge.realm, scopes: [], registryHost: 'r' }, { cache: new TokenCache(), http: FAST }),
      'ERR_SIZE',
    );
  } finally {
    await huge.close();
  }
  const junk = await tokenServer(() => ({ status: 200, body: '<html>' }));
  try {
    await rejects(
      getToken({ realm: junk.realm, scopes: [], registryHost: 'r' }, { cache: new TokenCache(), http: FAST }),
      'ERR_REGISTRY_AUTH',
    );
  } finally {
    await junk.close();
  }
  const empty = await tokenServer(() => ({ status: 200, body: '{"expires_in":300}' }));
  try {
    await rejects(
      getToken({ realm: empty.realm, scopes: [], registryHost: 'r' }, { cache: new TokenCache(), http: FAST }),
      'ERR_REGISTRY_AUTH',
    );
  } finally {
    await empty.close();
  }
  await rejects(
    getToken({ realm: 'not a url', scopes: [], registryHost: 'r' }, { cache: new TokenCache(), http: FAST }),
    'ERR_REGISTRY_AUTH',
  );
  await rejects(
    getToken({ realm: 'ftp://x/token', scopes: [], registryHost: 'r' }, { cache: new TokenCache(), http: FAST }),
    'ERR_REGISTRY_AUTH',
  );
});

test.run();
