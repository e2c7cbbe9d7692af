/**
 * RegistryClient against real distribution 2.8 registries started by the harness:
 * anonymous, htpasswd (Basic) and token (Bearer, Docker Hub style).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import { MediaType } from '../../src/oci/media-types.js';
import { TokenCache } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseManifestOrIndex } from '../../src/registry/manifest.js';
import { selectManifest } from '../../src/registry/resolve.js';
import type { Credentials, Endpoint } from '../../src/registry/types.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { readAll, rejects } from '../helpers/assert.js';

const FAST = { baseDelayMs: 5, maxDelayMs: 50 };

function endpoint(reg: TestRegistry, repository: string): Endpoint {
  return { host: reg.host, repository, insecure: true, mirror: false };
}

function client(reg: TestRegistry, repository: string, creds?: Credentials, cache = new TokenCache()): RegistryClient {
  const opts: ConstructorParameters<typeof RegistryClient>[0] = {
    endpoint: endpoint(reg, repository),
    http: FAST,
    tokenCache: cache,
  };
  if (creds) opts.credentials = async () => creds;
  return new RegistryClient(opts);
}

const layer = (name: string, content: string) => layerBlob(makeTar([{ name, content }]));

// ---------------------------------------------------------------- anonymous
const Anon = suite('client: anonymous registry');
let anon: TestRegistry;
Anon.before(async () => {
  anon = await startRegistry({ auth: 'anonymous' });
});
Anon.after(async () => {
  await anon?.stop();
});

Anon('OCI image: manifest by tag and by digest, config and layers streamed and verified', async () => {
  const l1 = layer('a.txt', 'hello');
  const l2 = layer('b.txt', 'x'.repeat(200_000));
  const img = await pushImage(anon, 'test/oci', 'v1', { layers: [l1, l2] });
  const c = client(anon, 'test/oci');
  await c.ping();
  const byTag = await c.getManifest('v1');
  assert.is(byTag.digest, img.manifestDigest);
  assert.is(byTag.mediaType, MediaType.OCIManifest);
  assert.ok(byTag.bytes.equals(img.manifest), 'exact bytes');
  const byDigest = await c.getManifest(img.manifestDigest);
  assert.is(byDigest.digest, img.manifestDigest);
  const parsed = parseManifestOrIndex(byDigest.bytes, byDigest.mediaType);
  assert.is(parsed.kind, 'manifest');
  if (parsed.kind !== 'manifest') return;
  assert.is(parsed.manifest.layers.length, 2);
  const config = await readAll(await c.fetchBlob(parsed.manifest.config));
  assert.ok(config.equals(img.config));
  const blob = await readAll(await c.fetchBlob(parsed.manifest.layers[1]!));
  assert.ok(blob.equals(l2.blob), 'layer bytes intact');
});

Anon('Docker v2 media types', async () => {
  const img = await pushImage(anon, 'test/docker', 'v1', { layers: [layer('d', 'docker')], docker: true });
  const c = client(anon, 'test/docker');
  const m = await c.getManifest('v1');
  assert.is(m.mediaType, MediaType.DockerManifest);
  assert.is(m.digest, img.manifestDigest);
  const parsed = parseManifestOrIndex(m.bytes, m.mediaType);
  assert.is(parsed.kind, 'manifest');
  if (parsed.kind === 'manifest') assert.is(parsed.manifest.layers[0]!.mediaType, MediaType.DockerLayerGzip);
});

Anon('index → platform selection → manifest (OCI index and Docker manifest list)', async () => {
  for (const docker of [false, true]) {
    const repo = docker ? 'test/list' : 'test/index';
    const amd = await pushImage(anon, repo, 'amd', {
      layers: [layer('amd', 'amd64')],
      docker,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const arm = await pushImage(anon, repo, 'arm', {
      layers: [layer('arm', 'arm64')],
      docker,
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    const idx = await pushIndex(
      anon,
      repo,
      'multi',
      [
        { digest: amd.manifestDigest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        {
          digest: arm.manifestDigest,
          size: arm.manifest.length,
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        },
      ],
      docker,
    );
    const c = client(anon, repo);
    const top = await c.getManifest('multi');
    assert.is(top.digest, idx.digest);
    assert.is(top.mediaType, docker ? MediaType.DockerManifestList : MediaType.OCIIndex);
    const parsed = parseManifestOrIndex(top.bytes, top.mediaType);
    assert.is(parsed.kind, 'index');
    if (parsed.kind !== 'index') return;
    const chosen = selectManifest(parsed.index, { os: 'linux', architecture: 'arm64' });
    assert.is(chosen.digest, arm.manifestDigest);
    const m = await c.getManifest(chosen.digest);
    assert.ok(m.bytes.equals(arm.manifest));
  }
});

Anon('unknown tag and unknown repository are ERR_REGISTRY_NOT_FOUND naming the reference', async () => {
  await pushImage(anon, 'test/exists', 'v1', { layers: [layer('e', 'e')] });
  const e = await rejects(
    client(anon, 'test/exists').getManifest('nope'),
    'ERR_REGISTRY_NOT_FOUND',
    /test\/exists:nope/,
  );
  assert.equal(e.detail?.['registryCodes'] as string[], ['MANIFEST_UNKNOWN']);
  await rejects(client(anon, 'test/missing').getManifest('v1'), 'ERR_REGISTRY_NOT_FOUND', /test\/missing:v1/);
  const missingBlob = { mediaType: MediaType.OCILayerGzip, digest: 'sha256:' + 'e'.repeat(64), size: 3 };
  await rejects(client(anon, 'test/exists').fetchBlob(missingBlob), 'ERR_REGISTRY_NOT_FOUND');
});

Anon('a blob whose descriptor lies about digest or size errors the stream', async () => {
  const l = layer('f', 'some content');
  await pushImage(anon, 'test/lie', 'v1', { layers: [l] });
  const c = client(anon, 'test/lie');
  // The registry serves by digest, so a lying size is caught from Content-Length (or the stream);
  // wrong bytes under a right digest need a fake registry (http.test.ts).
  await rejects(
    (async () => readAll(await c.fetchBlob({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length + 5 })))(),
    'ERR_SIZE',
  );
  await rejects(
    (async () => readAll(await c.fetchBlob({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length - 1 })))(),
    'ERR_SIZE',
  );
  // and the honest descriptor streams fine
  const ok = await readAll(await c.fetchBlob({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length }));
  assert.ok(ok.equals(l.blob));
});

Anon(
  'a manifest fetched by a digest the registry does not have is not found, and a bad digest is refused',
  async () => {
    await rejects(client(anon, 'test/oci').getManifest('sha256:' + '0'.repeat(64)), 'ERR_REGISTRY_NOT_FOUND');
    await rejects(client(anon, 'test/oci').getManifest('sha256:xyz'), 'ERR_REFERENCE');
  },
);

Anon('fetchBlob honours an abort signal', async () => {
  const big = layerBlob(makeTar([{ name: 'big', content: Buffer.alloc(4 * 1024 * 1024, 7) }]), 'none');
  await pushImage(anon, 'test/abort', 'v1', { layers: [big] });
  const c = client(anon, 'test/abort');
  const ctl = new AbortController();
  const s = await c.fetchBlob(
    { mediaType: big.mediaType, digest: big.digest, size: big.blob.length },
    { signal: ctl.signal },
  );
  let got = 0;
  const err = await (async () => {
    try {
      for await (const chunk of s) {
        got += (chunk as Buffer).length;
        if (got > 0) ctl.abort();
      }
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.instance(err, TsrunError, 'the stream errored after abort');
  assert.is((err as TsrunError).code, 'ERR_NETWORK');
  assert.is((err as TsrunError).retryable, false, 'an abort is not worth a retry');
  assert.ok(got < big.blob.length, 'did not read the whole blob');
});

Anon.run();

// ---------------------------------------------------------------- htpasswd
const Basic = suite('client: htpasswd (Basic) registry');
let basic: TestRegistry;
Basic.before(async () => {
  basic = await startRegistry({ auth: 'htpasswd', users: { alice: 'wonderland' } });
});
Basic.after(async () => {
  await basic?.stop();
});

Basic('good credentials pull; lookup happens once', async () => {
  const img = await pushImage(basic, 'priv/app', 'v1', { layers: [layer('p', 'private')] });
  let lookups = 0;
  const c = new RegistryClient({
    endpoint: endpoint(basic, 'priv/app'),
    http: FAST,
    credentials: async () => {
      lookups++;
      return { kind: 'basic', username: 'alice', password: 'wonderland' };
    },
  });
  const m = await c.getManifest('v1');
  assert.is(m.digest, img.manifestDigest);
  const parsed = parseManifestOrIndex(m.bytes, m.mediaType);
  if (parsed.kind !== 'manifest') return assert.unreachable('manifest');
  const cfg = await readAll(await c.fetchBlob(parsed.manifest.config));
  assert.ok(cfg.equals(img.config));
  assert.is(lookups, 1);
});

Basic('bad or missing credentials: ERR_REGISTRY_AUTH with a login hint', async () => {
  const bad = await rejects(
    client(basic, 'priv/app', { kind: 'basic', username: 'alice', password: 'nope' }).getManifest('v1'),
    'ERR_REGISTRY_AUTH',
    /401/,
  );
  assert.match(bad.hint ?? '', new RegExp(`tsrun login ${basic.host.replace('.', '\\.')}`));
  assert.not.match(bad.message, /nope/, 'never shows the password');
  const none = await rejects(client(basic, 'priv/app').getManifest('v1'), 'ERR_REGISTRY_AUTH');
  assert.match(none.hint ?? '', /tsrun login/);
});

Basic('checkCredentials: good → basic, bad → ERR_REGISTRY_AUTH', async () => {
  const c = client(basic, 'priv/app');
  assert.equal(await c.checkCredentials({ kind: 'basic', username: 'alice', password: 'wonderland' }), {
    scheme: 'basic',
  });
  await rejects(c.checkCredentials({ kind: 'basic', username: 'alice', password: 'wrong' }), 'ERR_REGISTRY_AUTH');
  await rejects(
    c.checkCredentials({ kind: 'basic', username: 'mallory', password: 'wonderland' }),
    'ERR_REGISTRY_AUTH',
  );
});

Basic.run();

// ---------------------------------------------------------------- token
const Token = suite('client: token (Bearer) registry, Docker Hub style');
let tok: TestRegistry;
Token.before(async () => {
  tok = await startRegistry({
    auth: 'token',
    users: { alice: 'wonderland' },
    isPublic: (r) => r.startsWith('public/'),
    refreshTokens: { 'refresh-abc': 'alice' },
  });
});
Token.after(async () => {
  await tok?.stop();
});

Token('anonymous pull of a public repository, one token for many requests', async () => {
  const l1 = layer('1', 'one');
  const l2 = layer('2', 'two');
  const img = await pushImage(tok, 'public/app', 'v1', { layers: [l1, l2] });
  const before = tok.tokenRequests();
  const c = client(tok, 'public/app');
  const m = await c.getManifest('v1');
  assert.is(m.digest, img.manifestDigest);
  await c.getManifest(img.manifestDigest);
  const parsed = parseManifestOrIndex(m.bytes, m.mediaType);
  if (parsed.kind !== 'manifest') return assert.unreachable('manifest');
  await readAll(await c.fetchBlob(parsed.manifest.config));
  for (const d of parsed.manifest.layers) await readAll(await c.fetchBlob(d));
  assert.is(tok.tokenRequests() - before, 1, 'the token service was asked once for five requests');
  const last = tok.tokenRequestLog().at(-1)!;
  assert.is(last.user, undefined, 'anonymous');
  assert.match(last.url, /scope=repository%3Apublic%2Fapp%3Apull/);
  assert.match(last.url, /service=tsrun-test-registry/);
});

Token('a second client sharing the cache reuses the token', async () => {
  const cache = new TokenCache();
  await client(tok, 'public/app', undefined, cache).getManifest('v1');
  const before = tok.tokenRequests();
  await client(tok, 'public/app', undefined, cache).getManifest('v1');
  assert.is(tok.tokenRequests(), before);
});

Token('private repository: anonymous is refused with a login hint; alice pulls with one token', async () => {
  const img = await pushImage(tok, 'private/app', 'v1', { layers: [layer('s', 'secret')] });
  const e = await rejects(client(tok, 'private/app').getManifest('v1'), 'ERR_REGISTRY_AUTH');
  assert.match(e.hint ?? '', /tsrun login/);
  const before = tok.tokenRequests();
  const c = client(tok, 'private/app', { kind: 'basic', username: 'alice', password: 'wonderland' });
  const m = await c.getManifest('v1');
  assert.is(m.digest, img.manifestDigest);
  const parsed = parseManifestOrIndex(m.bytes, m.mediaType);
  if (parsed.kind !== 'manifest') return assert.unreachable('manifest');
  await readAll(await c.fetchBlob(parsed.manifest.config));
  await readAll(await c.fetchBlob(parsed.manifest.layers[0]!));
  await c.getManifest('v1');
  assert.is(tok.tokenRequests() - before, 1, 'one token request for four registry requests');
  assert.is(tok.tokenRequestLog().at(-1)!.user, 'alice');
});

Token('wrong password: the token service 401 becomes ERR_REGISTRY_AUTH, no secret in the message', async () => {
  const e = await rejects(
    client(tok, 'private/app', { kind: 'basic', username: 'alice', password: 'hunter2' }).getManifest('v1'),
    'ERR_REGISTRY_AUTH',
    /token service answered 401/,
  );
  assert.match(e.hint ?? '', /tsrun login/);
  assert.not.match(e.message, /hunter2/);
});

Token('identity token (refresh_token grant by POST)', async () => {
  const img = await pushImage(tok, 'private/idt', 'v1', { layers: [layer('i', 'idt')] });
  const m = await client(tok, 'private/idt', { kind: 'identity', token: 'refresh-abc' }).getManifest('v1');
  assert.is(m.digest, img.manifestDigest);
  const last = tok.tokenRequestLog().at(-1)!;
  assert.is(last.method, 'POST');
  assert.is(last.user, 'alice');
  await rejects(
    client(tok, 'private/idt', { kind: 'identity', token: 'bogus' }).getManifest('v1'),
    'ERR_REGISTRY_AUTH',
  );
});

Token('checkCredentials with bearer auth', async () => {
  const c = client(tok, 'public/app');
  assert.equal(await c.checkCredentials({ kind: 'basic', username: 'alice', password: 'wonderland' }), {
    scheme: 'bearer',
  });
  await rejects(c.checkCredentials({ kind: 'basic', username: 'alice', password: 'bad' }), 'ERR_REGISTRY_AUTH');
});

Token.run();
