/**
 * `build --add-host`, `--shm-size`, `--ulimit` as Docker parses them, and what they do to a RUN
 * step's spec; and how `build -` tells a context archive from a Dockerfile.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  extraHostsLines,
  parseAddHost,
  parseStepLimits,
  parseUlimit,
  withStepLimits,
} from '../../src/build/run-options.js';
import { defaultDockerfile } from '../../src/build/context-input.js';
import { archiveKindOf } from '../../src/layers/sniff.js';
import { parseOutput } from '../../src/build/output.js';
import { defaultSpec } from '../../src/spec/defaults.js';
import { RLIM_INFINITY } from '../../src/spec/types.js';
import { makeTar } from '../helpers/tar-writer.js';

test('--ulimit NAME=SOFT[:HARD], -1 or unlimited for no limit; bad names and soft > hard refused', () => {
  assert.equal(parseUlimit('nofile=1024:2048'), { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
  assert.equal(parseUlimit('nproc=100'), { type: 'RLIMIT_NPROC', soft: 100, hard: 100 });
  assert.equal(parseUlimit('core=-1'), { type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY });
  assert.throws(() => parseUlimit('files=1'), /invalid ulimit "files=1"/);
  assert.throws(() => parseUlimit('nofile=x'), /is not a number/);
  assert.throws(() => parseUlimit('nofile=10:5'), /soft limit must be less than or equal to hard limit/);
});

test('--add-host NAME:IP or NAME=IP (IPv6 bracketed or not); host-gateway and bad addresses refused', () => {
  assert.equal(parseAddHost('db:10.0.0.5'), { name: 'db', ip: '10.0.0.5' });
  assert.equal(parseAddHost('v6=[2001:db8::1]'), { name: 'v6', ip: '2001:db8::1' });
  assert.equal(parseAddHost('v6:::1'), { name: 'v6', ip: '::1' });
  assert.throws(() => parseAddHost('db:300.0.0.1'), /invalid IP address/);
  assert.throws(() => parseAddHost('db'), /invalid IP address/);
  assert.throws(() => parseAddHost('gw:host-gateway'), /invalid IP address/);
  assert.is(extraHostsLines(parseStepLimits({ addHosts: ['a:1.2.3.4', 'b=::1'] })), '1.2.3.4\ta\n::1\tb\n');
});

test('--shm-size and --ulimit in the spec: /dev/shm size replaced, rlimits added after the inherited ones', () => {
  const spec = defaultSpec();
  spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }];
  withStepLimits(parseStepLimits({ shmSize: '32m', ulimits: ['nofile=10:20', 'nproc=5'] }))(spec);
  const shm = spec.mounts.find((m) => m.destination === '/dev/shm');
  assert.equal(
    shm?.options?.filter((o) => o.startsWith('size=')),
    ['size=32768k'],
  );
  assert.equal(spec.process.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 10, hard: 20 },
    { type: 'RLIMIT_NPROC', soft: 5, hard: 5 },
  ]);
  assert.throws(() => parseStepLimits({ shmSize: '0' }), /greater than 0/);
  assert.throws(() => parseStepLimits({ shmSize: 'lots' }), /invalid size/);
});

test('build -: tars (plain or compressed) are contexts, anything else a Dockerfile', () => {
  const tar = makeTar([{ name: 'Dockerfile', content: 'FROM scratch\n' }]);
  assert.is(archiveKindOf(tar), 'none');
  assert.is(archiveKindOf(gzipSync(tar)), 'gzip');
  assert.is(archiveKindOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1])), 'xz');
  assert.is(archiveKindOf(Buffer.from('BZh91AY')), 'bzip2');
  assert.is(archiveKindOf(Buffer.from('FROM busybox\nRUN echo hi\n')), undefined);
});

test('the Dockerfile: Dockerfile first, then dockerfile', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-df-'));
  try {
    mkdirSync(path.join(dir, 'a'));
    writeFileSync(path.join(dir, 'a', 'dockerfile'), '');
    assert.is(await defaultDockerfile(path.join(dir, 'a')), path.join(dir, 'a', 'dockerfile'));
    writeFileSync(path.join(dir, 'a', 'Dockerfile'), '');
    assert.is(await defaultDockerfile(path.join(dir, 'a')), path.join(dir, 'a', 'Dockerfile'));
    mkdirSync(path.join(dir, 'b'));
    assert.is(await defaultDockerfile(path.join(dir, 'b')), path.join(dir, 'b', 'Dockerfile'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--output: local and tar destinations, - for stdout; image/docker accepted; others refused', () => {
  assert.equal(parseOutput('out'), { type: 'local', dest: 'out' });
  assert.equal(parseOutput('-'), { type: 'tar', dest: '-' });
  assert.equal(parseOutput('type=local,dest=/x'), { type: 'local', dest: '/x' });
  assert.equal(parseOutput('type=tar,dest=-'), { type: 'tar', dest: '-' });
  assert.equal(parseOutput('type=docker'), { type: 'image' });
  assert.throws(() => parseOutput('type=tar'), /invalid --output "type=tar"/);
  assert.throws(() => parseOutput('type=registry'), /invalid --output/);
});

test.run();
