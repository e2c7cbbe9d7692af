import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import type { Descriptor, Index } from '../../src/oci/schemas.js';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  selectManifest,
} from '../../src/registry/resolve.js';

const dig = (c: string) => 'sha256:' + c.repeat(64);
const M = 'application/vnd.oci.image.manifest.v1+json';
const entry = (c: string, platform?: Descriptor['platform'], annotations?: Record<string, string>): Descriptor => ({
  mediaType: M,
  digest: dig(c),
  size: 100,
  ...(platform ? { platform } : {}),
  ...(annotations ? { annotations } : {}),
});
const index = (...manifests: Descriptor[]): Index => ({ schemaVersion: 2, manifests });

function platformError(fn: () => unknown, re?: RegExp): TsrunError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.is((err as TsrunError).code, 'ERR_PLATFORM');
    if (re) assert.match((err as TsrunError).message, re);
    return err as TsrunError;
  }
  return assert.unreachable('expected ERR_PLATFORM') as never;
}

test('hostPlatform maps process.arch', () => {
  const p = hostPlatform();
  assert.is(p.os, 'linux');
  const expected: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  assert.is(p.architecture, expected[process.arch] ?? process.arch);
  if (process.arch === 'arm64') assert.is(p.variant, 'v8');
  if (process.arch === 'x64') assert.is(p.variant, undefined);
});

test('parsePlatform / formatPlatform', () => {
  assert.equal(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.equal(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.equal(parsePlatform('Linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.equal(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  assert.equal(parsePlatform('linux/arm/7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  assert.is(parsePlatform('linux').architecture, hostPlatform().architecture);
  assert.is(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64/v8');
  assert.is(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
  for (const bad of ['', 'linux/amd64/v1/x', 'linux//amd64', 'linux/am d64', 'nonsense']) {
    const e = platformError(() => parsePlatform(bad), /parsing platform/);
    assert.ok(e.hint?.includes('os/arch'), bad);
  }
});

test('normalizePlatform fills containerd default variants', () => {
  assert.is(normalizePlatform({ os: 'linux', architecture: 'arm64' }).variant, 'v8');
  assert.is(normalizePlatform({ os: 'linux', architecture: 'aarch64', variant: '8' }).variant, 'v8');
  assert.is(normalizePlatform({ os: 'linux', architecture: 'arm' }).variant, 'v7');
  assert.is(normalizePlatform({ os: 'linux', architecture: 'amd64' }).variant, 'v1');
  assert.is(normalizePlatform({ os: 'Linux', architecture: 'x86_64' }).architecture, 'amd64');
});

test('selectManifest: os/architecture, arm64 "" ≡ v8', () => {
  const idx = index(
    entry('a', { os: 'linux', architecture: 'amd64' }),
    entry('b', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    entry('c', { os: 'linux', architecture: 'arm', variant: 'v7' }),
    entry('d', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }),
  );
  assert.is(selectManifest(idx, { os: 'linux', architecture: 'amd64' }).digest, dig('a'));
  assert.is(selectManifest(idx, { os: 'linux', architecture: 'arm64' }).digest, dig('b'));
  assert.is(selectManifest(idx, parsePlatform('linux/arm64/v8')).digest, dig('b'));
  assert.is(selectManifest(idx, parsePlatform('linux/arm/v7')).digest, dig('c'));
  assert.is(selectManifest(idx, parsePlatform('windows/amd64')).digest, dig('d'));
  // and the other way round: entry without variant, wanted v8
  const idx2 = index(entry('e', { os: 'linux', architecture: 'arm64' }));
  assert.is(selectManifest(idx2, parsePlatform('linux/arm64/v8')).digest, dig('e'));
});

test('selectManifest: exact variant preferred, older compatible variants accepted', () => {
  const idx = index(
    entry('5', { os: 'linux', architecture: 'arm', variant: 'v5' }),
    entry('6', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry('7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
  );
  assert.is(selectManifest(idx, parsePlatform('linux/arm/v7')).digest, dig('7'));
  assert.is(selectManifest(idx, parsePlatform('linux/arm')).digest, dig('7'), 'no variant means the default v7');
  assert.is(selectManifest(idx, parsePlatform('linux/arm/v6')).digest, dig('6'));
  const onlyV6 = index(entry('6', { os: 'linux', architecture: 'arm', variant: 'v6' }));
  assert.is(selectManifest(onlyV6, parsePlatform('linux/arm/v7')).digest, dig('6'), 'v7 runs v6');
  platformError(() =>
    selectManifest(
      index(entry('7', { os: 'linux', architecture: 'arm', variant: 'v7' })),
      parsePlatform('linux/arm/v6'),
    ),
  );
  // amd64 with no variant prefers the v1 build over a v3 one, and does not take v3 alone
  const amd = index(
    entry('3', { os: 'linux', architecture: 'amd64', variant: 'v3' }),
    entry('1', { os: 'linux', architecture: 'amd64' }),
  );
  assert.is(selectManifest(amd, { os: 'linux', architecture: 'amd64' }).digest, dig('1'));
  assert.is(selectManifest(amd, parsePlatform('linux/amd64/v3')).digest, dig('3'));
  platformError(() =>
    selectManifest(index(entry('3', { os: 'linux', architecture: 'amd64', variant: 'v3' })), {
      os: 'linux',
      architecture: 'amd64',
    }),
  );
  // same rank: the index order decides
  const twice = index(
    entry('a', { os: 'linux', architecture: 'amd64' }),
    entry('b', { os: 'linux', architecture: 'amd64' }),
  );
  assert.is(selectManifest(twice, { os: 'linux', architecture: 'amd64' }).digest, dig('a'));
});

test('selectManifest skips attestations and platform-less entries; the error lists platforms', () => {
  const idx = index(
    entry('0'),
    entry(
      'f',
      { os: 'unknown', architecture: 'unknown' },
      { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': dig('a') },
    ),
    entry('a', { os: 'linux', architecture: 'amd64' }),
    entry('b', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
  );
  assert.is(selectManifest(idx, { os: 'linux', architecture: 'amd64' }).digest, dig('a'));
  const attOnly = index(
    entry('f', { os: 'linux', architecture: 's390x' }, { 'vnd.docker.reference.type': 'attestation-manifest' }),
  );
  platformError(() => selectManifest(attOnly, { os: 'linux', architecture: 's390x' }));
  const e = platformError(() => selectManifest(idx, parsePlatform('linux/ppc64le')), /linux\/ppc64le/);
  assert.match(e.message, /available: linux\/amd64, linux\/arm64\/v8/);
  assert.not.match(e.message, /unknown/);
  assert.match(e.hint ?? '', /--platform/);
  assert.equal(e.detail?.['available'], ['linux/amd64', 'linux/arm64/v8']);
});

test.run();
