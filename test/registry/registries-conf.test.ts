import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsrunError } from '../../src/errors.js';
import {
  endpointsFor,
  findRegistry,
  isLoopback,
  loadRegistriesConf,
  matchPrefix,
  mergeRegistriesConf,
  parseRegistriesConf,
  emptyRegistriesConf,
  registriesConfFiles,
  type EnvContext,
  type RegistriesConf,
} from '../../src/registry/registries-conf.js';

/** A conf from one TOML text, as if read from `file`. */
function conf(text: string, file = '/etc/containers/registries.conf'): RegistriesConf {
  return mergeRegistriesConf(emptyRegistriesConf(), parseRegistriesConf(text, file), file);
}

function tmpWorld() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-regconf-'));
  const home = path.join(root, 'home');
  const sys = path.join(root, 'etc');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(sys, { recursive: true });
  const ctx: EnvContext = { env: {}, home, uid: 1000 };
  const write = (p: string, text: string) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
    return p;
  };
  return { root, home, sys, ctx, write, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

function throws(fn: () => unknown, code: string, re?: RegExp): TsrunError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.is((err as TsrunError).code, code);
    if (re) assert.match((err as TsrunError).message, re);
    return err as TsrunError;
  }
  return assert.unreachable(`expected ${code}`) as never;
}

const tag = { byDigest: false };
const digest = { byDigest: true };

test('no entry: docker.io → registry-1.docker.io, library/ kept, secure', () => {
  const eps = endpointsFor(emptyRegistriesConf(), 'docker.io', 'library/node', tag);
  assert.equal(eps, [{ host: 'registry-1.docker.io', repository: 'library/node', insecure: false, mirror: false }]);
  assert.equal(endpointsFor(emptyRegistriesConf(), 'ghcr.io', 'a/b', tag), [
    { host: 'ghcr.io', repository: 'a/b', insecure: false, mirror: false },
  ]);
});

test('matchPrefix: exact, path-component boundary, no port leak, wildcard', () => {
  assert.is(matchPrefix('example.com/foo', 'example.com/foo'), 15);
  assert.is(matchPrefix('example.com/foo/bar', 'example.com/foo'), 15);
  assert.is(matchPrefix('example.com/foobar', 'example.com/foo'), -1);
  assert.is(matchPrefix('example.com:5000/foo', 'example.com'), -1);
  assert.is(matchPrefix('a.example.com/x', '*.example.com'), 13);
  assert.is(matchPrefix('a.b.example.com:5000/x', '*.example.com'), 15);
  assert.is(matchPrefix('example.com/x', '*.example.com'), -1);
  assert.is(matchPrefix('badexample.com/x', '*.example.com'), -1);
  assert.is(matchPrefix('other.com/a.example.com', '*.example.com'), -1);
});

test('longest prefix wins, and path boundary is respected in lookups', () => {
  const c = conf(`
[[registry]]
prefix = "example.com"
location = "plain.example.com"
[[registry]]
prefix = "example.com/foo"
location = "special.example.com/foo"
`);
  assert.is(findRegistry(c, 'example.com', 'foo/app')!.prefix, 'example.com/foo');
  assert.is(findRegistry(c, 'example.com', 'foobar')!.prefix, 'example.com');
  assert.equal(endpointsFor(c, 'example.com', 'foobar', tag)[0]!.host, 'plain.example.com');
  assert.equal(endpointsFor(c, 'example.com', 'foo/app', tag), [
    { host: 'special.example.com', repository: 'foo/app', insecure: false, mirror: false },
  ]);
  // Longest wins by length, not by position in the list.
  const reversed: RegistriesConf = { ...c, registries: [...c.registries].reverse() };
  assert.is(findRegistry(reversed, 'example.com', 'foo/app')!.prefix, 'example.com/foo');
});

test('location rewrite: prefix replaced by location', () => {
  const c = conf(`
[[registry]]
prefix = "example.com/foo"
location = "internal:5000/bar/foo"
`);
  assert.equal(endpointsFor(c, 'example.com', 'foo/app', tag), [
    { host: 'internal:5000', repository: 'bar/foo/app', insecure: false, mirror: false },
  ]);
  // Not matched (boundary): left alone.
  assert.equal(endpointsFor(c, 'example.com', 'foobar/app', tag)[0]!.host, 'example.com');
});

test('wildcard prefix: no location keeps the reference; with location rewrites the host', () => {
  const c = conf(`
[[registry]]
prefix = "*.corp.example"
insecure = true
[[registry]]
prefix = "*.mirror.example"
location = "cache.local"
`);
  assert.equal(endpointsFor(c, 'reg.corp.example', 'team/app', tag), [
    { host: 'reg.corp.example', repository: 'team/app', insecure: true, mirror: false },
  ]);
  assert.equal(endpointsFor(c, 'a.mirror.example', 'x/y', tag), [
    { host: 'cache.local', repository: 'x/y', insecure: false, mirror: false },
  ]);
  assert.equal(endpointsFor(c, 'corp.example', 'team/app', tag)[0]!.insecure, false);
});

test('mirrors first in order, then primary; pull-from-mirror vs byDigest', () => {
  const c = conf(`
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "m-all.example/hub"
[[registry.mirror]]
location = "m-digest.example"
pull-from-mirror = "digest-only"
insecure = true
[[registry.mirror]]
location = "m-tag.example"
pull-from-mirror = "tag-only"
`);
  const byTag = endpointsFor(c, 'docker.io', 'library/node', tag);
  assert.equal(
    byTag.map((e) => `${e.host}/${e.repository}${e.mirror ? ' M' : ''}`),
    ['m-all.example/hub/library/node M', 'm-tag.example/library/node M', 'registry-1.docker.io/library/node'],
  );
  const byDig = endpointsFor(c, 'docker.io', 'library/node', digest);
  assert.equal(
    byDig.map((e) => e.host),
    ['m-all.example', 'm-digest.example', 'registry-1.docker.io'],
  );
  assert.is(byDig[1]!.insecure, true);
  assert.is(byDig[0]!.insecure, false);
});

test('mirror-by-digest-only on the registry: mirrors only for digests; conflicting settings refused', () => {
  const c = conf(`
[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "cache.example"
`);
  assert.is(endpointsFor(c, 'quay.io', 'a/b', tag).length, 1);
  assert.equal(
    endpointsFor(c, 'quay.io', 'a/b', digest).map((e) => e.host),
    ['cache.example', 'quay.io'],
  );
  throws(
    () =>
      conf(`
[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "cache.example"
pull-from-mirror = "all"
`),
    'ERR_CONFIG',
    /mirror-by-digest-only/,
  );
});

test('blocked: ERR_REGISTRY_BLOCKED naming the reference, the registry and the file, with a hint', () => {
  const c = conf(
    `
[[registry]]
location = "evil.example"
blocked = true
`,
    '/cfg/registries.conf',
  );
  const e = throws(() => endpointsFor(c, 'evil.example', 'x/y', tag), 'ERR_REGISTRY_BLOCKED');
  assert.is(e.message, 'evil.example/x/y: registry evil.example is blocked in /cfg/registries.conf');
  assert.ok(e.hint && e.hint.includes('blocked = true'));
  assert.is(endpointsFor(c, 'good.example', 'x/y', tag).length, 1);
});

test('insecure flag and loopback hosts', () => {
  const c = conf(`
[[registry]]
location = "reg.lan:5000"
insecure = true
`);
  assert.is(endpointsFor(c, 'reg.lan:5000', 'a', tag)[0]!.insecure, true);
  assert.is(endpointsFor(c, 'reg.lan:5001', 'a', tag)[0]!.insecure, false);
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.8.9.10:80', '[::1]:5000', '[::1]']) {
    assert.ok(isLoopback(h), h);
    assert.is(endpointsFor(emptyRegistriesConf(), h, 'a/b', tag)[0]!.insecure, true, h);
  }
  for (const h of ['128.0.0.1', 'localhost.example.com', 'mylocalhost:5000', '[::2]']) assert.not.ok(isLoopback(h), h);
});

test('v1 format: ERR_CONFIG with the file and a conversion hint', () => {
  const e = throws(
    () =>
      parseRegistriesConf(
        `
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = []
`,
        '/x/registries.conf',
      ),
    'ERR_CONFIG',
  );
  assert.is(e.message, 'reading /x/registries.conf: the v1 format is not supported');
  assert.is(e.hint, 'convert it to the v2 format (see containers-registries.conf(5))');
});

test('bad TOML: ERR_CONFIG naming the file and the line', () => {
  const e = throws(
    () => parseRegistriesConf('unqualified-search-registries = ["a"]\n\n[[registry]\nlocation = "x"\n', '/y/bad.conf'),
    'ERR_CONFIG',
  );
  assert.match(e.message, /^reading \/y\/bad\.conf: invalid TOML at line 3\b/);
});

test('schema errors: wrong types, bad pull-from-mirror, schemes, missing location', () => {
  throws(
    () => conf('[[registry]]\nlocation = "a"\ninsecure = "yes"\n', '/f'),
    'ERR_CONFIG',
    /reading \/f: registry\[0\]\.insecure/,
  );
  throws(
    () => conf('[[registry]]\nlocation = "a"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"\n'),
    'ERR_CONFIG',
    /pull-from-mirror/,
  );
  throws(() => conf('[[registry]]\nlocation = "https://a.example"\n'), 'ERR_CONFIG', /URI schemes/);
  throws(() => conf('[[registry]]\nprefix = "a.example/x"\n'), 'ERR_CONFIG', /no location/);
  throws(() => conf('[[registry]]\ninsecure = true\n'), 'ERR_CONFIG', /neither prefix nor location/);
});

test('unqualified-search-registries and short-name-mode are read (not used for resolution)', () => {
  const c = conf('unqualified-search-registries = ["quay.io", "docker.io"]\nshort-name-mode = "enforcing"\n');
  assert.equal(c.unqualifiedSearchRegistries, ['quay.io', 'docker.io']);
  assert.is(c.shortNameMode, 'enforcing');
  throws(() => conf('short-name-mode = "sometimes"\n'), 'ERR_CONFIG', /short-name-mode/);
});

test('loadRegistriesConf: missing everything is an empty config', () => {
  const w = tmpWorld();
  try {
    const c = loadRegistriesConf(w.ctx, w.sys);
    assert.equal(c.registries, []);
    assert.equal(c.sources, []);
  } finally {
    w.cleanup();
  }
});

test('loadRegistriesConf: system file + drop-ins in lexical order, later overriding by prefix, then user drop-ins', () => {
  const w = tmpWorld();
  try {
    const main = w.write(
      path.join(w.sys, 'registries.conf'),
      '[[registry]]\nlocation = "a.example"\ninsecure = true\n[[registry]]\nlocation = "b.example"\n',
    );
    const d10 = w.write(
      path.join(w.sys, 'registries.conf.d', '10-a.conf'),
      '[[registry]]\nlocation = "a.example"\nblocked = true\n',
    );
    const d20 = w.write(
      path.join(w.sys, 'registries.conf.d', '20-a.conf'),
      '[[registry]]\nprefix = "a.example"\nlocation = "a2.example"\n',
    );
    w.write(path.join(w.sys, 'registries.conf.d', 'ignored.txt'), 'not toml [[[');
    const user = w.write(
      path.join(w.home, '.config', 'containers', 'registries.conf.d', '05-b.conf'),
      '[[registry]]\nlocation = "b.example"\ninsecure = true\n',
    );
    const c = loadRegistriesConf(w.ctx, w.sys);
    assert.equal(c.sources, [main, d10, d20, user]);
    // 20-a replaced 10-a (not blocked any more) and the main entry (not insecure any more).
    assert.equal(endpointsFor(c, 'a.example', 'r', tag), [
      { host: 'a2.example', repository: 'r', insecure: false, mirror: false },
    ]);
    assert.is(findRegistry(c, 'a.example', 'r')!.source, d20);
    // The user drop-in comes after the system ones even though "05" sorts first.
    assert.is(endpointsFor(c, 'b.example', 'r', tag)[0]!.insecure, true);
  } finally {
    w.cleanup();
  }
});

test('loadRegistriesConf: a user registries.conf replaces the system file and system drop-ins', () => {
  const w = tmpWorld();
  try {
    w.write(path.join(w.sys, 'registries.conf'), '[[registry]]\nlocation = "a.example"\nblocked = true\n');
    w.write(path.join(w.sys, 'registries.conf.d', '10.conf'), '[[registry]]\nlocation = "c.example"\nblocked = true\n');
    const userFile = w.write(
      path.join(w.home, '.config', 'containers', 'registries.conf'),
      '[[registry]]\nlocation = "b.example"\ninsecure = true\n',
    );
    assert.equal(registriesConfFiles(w.ctx, w.sys), [userFile]);
    const c = loadRegistriesConf(w.ctx, w.sys);
    assert.is(endpointsFor(c, 'a.example', 'r', tag).length, 1, 'system file not read');
    assert.is(endpointsFor(c, 'c.example', 'r', tag).length, 1, 'system drop-in not read');
    assert.is(endpointsFor(c, 'b.example', 'r', tag)[0]!.insecure, true);
  } finally {
    w.cleanup();
  }
});

test('loadRegistriesConf: CONTAINERS_REGISTRIES_CONF is the only file read', () => {
  const w = tmpWorld();
  try {
    w.write(path.join(w.sys, 'registries.conf'), '[[registry]]\nlocation = "a.example"\nblocked = true\n');
    w.write(path.join(w.sys, 'registries.conf.d', '10.conf'), '[[registry]]\nlocation = "c.example"\nblocked = true\n');
    w.write(
      path.join(w.home, '.config', 'containers', 'registries.conf'),
      '[[registry]]\nlocation = "d.example"\nblocked = true\n',
    );
    const only = w.write(path.join(w.root, 'custom.conf'), '[[registry]]\nlocation = "b.example"\nblocked = true\n');
    const ctx = { ...w.ctx, env: { CONTAINERS_REGISTRIES_CONF: only } };
    const c = loadRegistriesConf(ctx, w.sys);
    assert.equal(c.sources, [only]);
    for (const h of ['a.example', 'c.example', 'd.example']) assert.is(endpointsFor(c, h, 'r', tag).length, 1);
    throws(() => endpointsFor(c, 'b.example', 'r', tag), 'ERR_REGISTRY_BLOCKED', /custom\.conf/);
  } finally {
    w.cleanup();
  }
});

test('loadRegistriesConf: an error in a drop-in names that file', () => {
  const w = tmpWorld();
  try {
    const bad = w.write(path.join(w.sys, 'registries.conf.d', '50-bad.conf'), 'x = = 1\n');
    const e = throws(() => loadRegistriesConf(w.ctx, w.sys), 'ERR_CONFIG');
    assert.ok(e.message.startsWith(`reading ${bad}: invalid TOML at line 1`), e.message);
  } finally {
    w.cleanup();
  }
});

test.run();
