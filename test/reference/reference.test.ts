import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import {
  familiarName,
  familiarRepository,
  formatReference,
  parseNormalizedNamed,
  parseReference,
  repositoryName,
} from '../../src/reference/reference.js';

const D = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
const HEX = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

function refuses(input: string, re?: RegExp): void {
  try {
    parseReference(input);
  } catch (err) {
    assert.instance(err, TsrunError, input);
    assert.is((err as TsrunError).code, 'ERR_REFERENCE', input);
    assert.ok((err as TsrunError).message.startsWith(`parsing reference "${input}": `), (err as TsrunError).message);
    assert.ok((err as TsrunError).hint, 'has a hint');
    if (re) assert.match((err as TsrunError).message, re);
    return;
  }
  assert.unreachable(`"${input}" should be refused`);
}

test('defaults: docker.io, library/, latest', () => {
  assert.equal(parseReference('node'), { registry: 'docker.io', repository: 'library/node', tag: 'latest' });
  assert.equal(parseReference('user/app'), { registry: 'docker.io', repository: 'user/app', tag: 'latest' });
  assert.equal(parseReference('user/app:1'), { registry: 'docker.io', repository: 'user/app', tag: '1' });
  assert.equal(parseNormalizedNamed('node'), { registry: 'docker.io', repository: 'library/node' });
  assert.is(formatReference(parseReference('node')), 'docker.io/library/node:latest');
  assert.is(familiarName(parseReference('node')), 'node:latest');
  assert.is(repositoryName(parseReference('node')), 'docker.io/library/node');
  assert.is(familiarRepository(parseReference('node')), 'node');
});

test('index.docker.io and docker.io normalise alike', () => {
  for (const s of [
    'index.docker.io/library/debian',
    'docker.io/debian',
    'docker.io/library/debian',
    'debian',
    'library/debian',
  ]) {
    assert.is(formatReference(parseReference(s)), 'docker.io/library/debian:latest', s);
    assert.is(familiarName(parseReference(s)), 'debian:latest', s);
  }
  assert.is(formatReference(parseReference('index.docker.io/docker/docker')), 'docker.io/docker/docker:latest');
});

test('registry detection: ".", ":" or localhost', () => {
  const cases: Array<[string, string, string]> = [
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
    ['localhost/foo', 'localhost', 'foo'],
    ['localhost:5000/x', 'localhost:5000', 'x'],
    ['127.0.0.1:5000/docker/docker', '127.0.0.1:5000', 'docker/docker'],
    ['[fc00::1%eth0]:5000/debian', '[fc00::1%eth0]:5000', 'debian'],
    ['[::1]:5000/debian', '[::1]:5000', 'debian'],
    ['localhostx/foo', 'docker.io', 'localhostx/foo'],
  ];
  for (const [input, registry, repository] of cases) {
    const r = parseReference(input);
    assert.is(r.registry, registry, input);
    assert.is(r.repository, repository, input);
  }
});

test('Docker TestParseRepositoryInfo table: familiar and full names', () => {
  const rows: Array<{ remote: string; familiar: string; full: string; ambiguous?: string; domain: string }> = [
    {
      remote: 'fooo/bar',
      familiar: 'fooo/bar',
      full: 'docker.io/fooo/bar',
      ambiguous: 'index.docker.io/fooo/bar',
      domain: 'docker.io',
    },
    {
      remote: 'library/ubuntu',
      familiar: 'ubuntu',
      full: 'docker.io/library/ubuntu',
      ambiguous: 'library/ubuntu',
      domain: 'docker.io',
    },
    {
      remote: 'nonlibrary/ubuntu',
      familiar: 'nonlibrary/ubuntu',
      full: 'docker.io/nonlibrary/ubuntu',
      domain: 'docker.io',
    },
    { remote: 'other/library', familiar: 'other/library', full: 'docker.io/other/library', domain: 'docker.io' },
    {
      remote: 'private/moonbase',
      familiar: '127.0.0.1:8000/private/moonbase',
      full: '127.0.0.1:8000/private/moonbase',
      domain: '127.0.0.1:8000',
    },
    {
      remote: 'privatebase',
      familiar: '127.0.0.1:8000/privatebase',
      full: '127.0.0.1:8000/privatebase',
      domain: '127.0.0.1:8000',
    },
    {
      remote: 'private/moonbase',
      familiar: 'example.com/private/moonbase',
      full: 'example.com/private/moonbase',
      domain: 'example.com',
    },
    {
      remote: 'privatebase',
      familiar: 'example.com/privatebase',
      full: 'example.com/privatebase',
      domain: 'example.com',
    },
    {
      remote: 'private/moonbase',
      familiar: 'example.com:8000/private/moonbase',
      full: 'example.com:8000/private/moonbase',
      domain: 'example.com:8000',
    },
    {
      remote: 'privatebasee',
      familiar: 'example.com:8000/privatebasee',
      full: 'example.com:8000/privatebasee',
      domain: 'example.com:8000',
    },
    {
      remote: 'library/ubuntu-12.04-base',
      familiar: 'ubuntu-12.04-base',
      full: 'docker.io/library/ubuntu-12.04-base',
      ambiguous: 'index.docker.io/library/ubuntu-12.04-base',
      domain: 'docker.io',
    },
    {
      remote: 'library/foo',
      familiar: 'foo',
      full: 'docker.io/library/foo',
      ambiguous: 'docker.io/foo',
      domain: 'docker.io',
    },
    { remote: 'library/foo/bar', familiar: 'library/foo/bar', full: 'docker.io/library/foo/bar', domain: 'docker.io' },
    { remote: 'store/foo/bar', familiar: 'store/foo/bar', full: 'docker.io/store/foo/bar', domain: 'docker.io' },
  ];
  for (const row of rows) {
    for (const s of [row.familiar, row.full, ...(row.ambiguous ? [row.ambiguous] : [])]) {
      const r = parseNormalizedNamed(s);
      assert.is(familiarRepository(r), row.familiar, s);
      assert.is(familiarName(r), row.familiar, s);
      assert.is(formatReference(r), row.full, s);
      assert.is(repositoryName(r), row.full, s);
      assert.is(r.registry, row.domain, s);
      assert.is(r.repository, row.remote, s);
    }
  }
});

test('tags, digests, and both', () => {
  assert.equal(parseReference(`redis@${D}`), { registry: 'docker.io', repository: 'library/redis', digest: D });
  assert.is(formatReference(parseReference(`redis@${D}`)), `docker.io/library/redis@${D}`);
  assert.is(familiarName(parseReference(`redis@${D}`)), `redis@${D}`);
  assert.is(formatReference(parseReference(`dmcgowan/myapp@${D}`)), `docker.io/dmcgowan/myapp@${D}`);
  const both = parseReference(`busybox:latest@${D}`);
  assert.equal(both, { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: D });
  assert.is(formatReference(both), `docker.io/library/busybox:latest@${D}`);
  assert.is(familiarName(both), `busybox:latest@${D}`);
  const withPort = parseReference('localhost:5000/x:y');
  assert.equal(withPort, { registry: 'localhost:5000', repository: 'x', tag: 'y' });
  assert.is(familiarName(withPort), 'localhost:5000/x:y');
  assert.is(familiarName(parseReference('user/app:1')), 'user/app:1');
  assert.is(formatReference(parseReference('localhost:5000/a/b:1.2_3-x')), 'localhost:5000/a/b:1.2_3-x');
  // "192.168.0.1:80" is docker.io/library/192.168.0.1 with tag 80, as Docker reads it
  assert.equal(parseReference('192.168.0.1:80'), {
    registry: 'docker.io',
    repository: 'library/192.168.0.1',
    tag: '80',
  });
  assert.equal(parseReference('localhost:5000'), {
    registry: 'docker.io',
    repository: 'library/localhost',
    tag: '5000',
  });
  assert.is(parseReference('a:' + 'x'.repeat(128)).tag, 'x'.repeat(128));
});

test('valid names from Docker TestValidateReferenceName / TestValidateRemoteName', () => {
  const valid = [
    'docker/docker',
    'library/debian',
    'debian',
    'docker.io/docker/docker',
    'docker.io/library/debian',
    'docker.io/debian',
    'index.docker.io/docker/docker',
    'index.docker.io/library/debian',
    'index.docker.io/debian',
    '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian',
    '127.0.0.1:5000/debian',
    '[fc00::1%eth0]:5000/docker/docker',
    '[fc00::1%eth0]:5000/library/debian',
    '[fc00::1%eth0]:5000/debian',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    `docker.io/${HEX}`,
    'docker-rules/docker',
    'docker---rules/docker',
    'doc/docker',
    'd/docker',
    'jess/t',
    'dock__er/docker',
    'example.com/some_separator__underscore/myimage',
    'xn--7o8h.com/myimage',
  ];
  for (const s of valid) assert.ok(parseReference(s).repository.length > 0, s);
});

test('invalid names from Docker tables, and bad tags and digests', () => {
  const invalid = [
    'https://github.com/docker/docker',
    'docker/Docker',
    '-docker',
    '-docker/docker',
    '-docker.io/docker/docker',
    'docker///docker',
    'docker.io/docker/Docker',
    'docker.io/docker///docker',
    HEX,
    'docker-/docker',
    '-docker-/docker',
    '____/____',
    '_docker/_docker',
    'dock..er/docker',
    'dock_.er/docker',
    'dock-.er/docker',
    'docker/',
    '',
    ':tag',
    '@' + D,
    'a/b/',
    '/a',
    'UPPER',
    'Foo/bar',
    'example.com/UPPER:tag',
    'a:-bad',
    'a:.bad',
    'a:' + 'x'.repeat(129),
    'a:b:c',
    'a:tag with space',
    'a@sha256:abc',
    `a@sha256:${'A'.repeat(64)}`,
    `a@md5:${'a'.repeat(32)}`,
    'a@sha256',
    `a@${D}@${D}`,
    'example.com:port/x',
    'exa_mple.com/x',
  ];
  for (const s of invalid) refuses(s);
  refuses('docker/Docker', /must be lowercase/);
  refuses(HEX, /64-byte hexadecimal/);
  refuses('a@sha256:abc', /digest/);
  refuses(`a@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/);
  refuses('a:-bad', /invalid tag/);
});

test('name length: at most 255 characters', () => {
  const long =
    'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker';
  refuses(long, /255/);
  const ok = 'a/' + 'b'.repeat(253);
  assert.is(ok.length, 255);
  assert.is(parseReference(ok).repository, ok);
  refuses('a/' + 'b'.repeat(254), /255/);
  // the tag does not count toward the name's length
  assert.is(parseReference(ok + ':' + 't'.repeat(100)).tag, 't'.repeat(100));
});

test('round trip: parse(format(r)) === r, parse(familiar(r)) === r', () => {
  for (const s of [
    'node',
    'user/app:1',
    'localhost:5000/x:y',
    `redis@${D}`,
    `busybox:1@${D}`,
    'ghcr.io/a/b/c:v1',
    'docker.io/library/foo/bar',
  ]) {
    const r = parseReference(s);
    assert.equal(parseReference(formatReference(r)), r, s);
    assert.equal(parseReference(familiarName(r)), r, s);
  }
});

test.run();
