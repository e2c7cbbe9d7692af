/**
 * The quick start's local registry mirror, for machines that cannot reach Docker Hub.
 *
 *   node dist/scripts/demo-mirror.js start   # start docker-registry on 127.0.0.1:5000, seed it, register it
 *   node dist/scripts/demo-mirror.js stop    # stop it and remove the registries.conf drop-in
 *
 * `start` runs Debian's docker-registry (the reference implementation of the distribution API)
 * with its storage in /var/lib/tsrun-demo-mirror, seeds `library/busybox:latest` built here from
 * Debian's busybox-static binary (one layer: /bin/busybox plus a symlink per applet, a minimal
 * /etc), and writes /etc/containers/registries.conf.d/50-tsrun-demo-mirror.conf declaring it a
 * mirror of docker.io. tsrun then pulls `busybox` exactly as it would from a pull-through mirror:
 * the name stays docker.io/library/busybox. Nothing here pretends to be Docker Hub.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { layerBlob, makeTar, type TarEntrySpec } from '../test/helpers/tar-writer.js';
import { pushImage } from '../test/helpers/push.js';
import type { TestRegistry } from '../test/helpers/registry.js';

const DIR = process.env.TSRUN_DEMO_MIRROR_DIR ?? '/var/lib/tsrun-demo-mirror';
const HOST = process.env.TSRUN_DEMO_MIRROR_ADDR ?? '127.0.0.1:5000';
const DROPIN = '/etc/containers/registries.conf.d/50-tsrun-demo-mirror.conf';
const PIDFILE = path.join(DIR, 'registry.pid');

async function answering(): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}/v2/`);
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startRegistry(): Promise<void> {
  if (await answering()) return;
  mkdirSync(path.join(DIR, 'data'), { recursive: true });
  const config = path.join(DIR, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:', '  level: error',
    'storage:', '  filesystem:', `    rootdirectory: ${path.join(DIR, 'data')}`, '  delete:', '    enabled: true',
    'http:', `  addr: ${HOST}`, '',
  ].join('\n'));
  const log = openSync(path.join(DIR, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', config], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  writeFileSync(PIDFILE, String(child.pid));
  for (let i = 0; i < 100; i++) {
    if (await answering()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${HOST}; see ${path.join(DIR, 'registry.log')}`);
}

function busyboxLayer() {
  const busybox = readFileSync('/bin/busybox');
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  const entries: TarEntrySpec[] = [
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', content: busybox, mode: 0o755 },
    ...applets.map((a): TarEntrySpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { name: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    { name: 'root/', type: 'dir', mode: 0o700 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'home/', type: 'dir' },
  ];
  return layerBlob(makeTar(entries.map((e) => ({ ...e, mtime: 1700000000 }))));
}

async function seed(): Promise<string> {
  const reg: TestRegistry = {
    host: HOST, url: `http://${HOST}`, auth: 'anonymous', users: {}, dir: DIR,
    tokenRequests: () => 0, tokenRequestLog: () => [], stop: async () => {},
  };
  const img = await pushImage(reg, 'library/busybox', 'latest', {
    layers: [busyboxLayer()],
    config: {
      created: '2026-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'tsrun demo-mirror: /bin/busybox from Debian busybox-static' }],
    },
  });
  return img.manifestDigest;
}

function register(): void {
  mkdirSync(path.dirname(DROPIN), { recursive: true });
  writeFileSync(DROPIN, [
    '# Written by tsrun scripts/demo-mirror.js: a local mirror of docker.io for machines without',
    '# access to Docker Hub. Remove with `node dist/scripts/demo-mirror.js stop`.',
    '[[registry]]', 'prefix = "docker.io"', 'location = "registry-1.docker.io"',
    '[[registry.mirror]]', `location = "${HOST}"`, 'insecure = true', '',
  ].join('\n'));
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  if (cmd === 'start') {
    await startRegistry();
    const digest = await seed();
    register();
    console.log(`local mirror of docker.io on ${HOST} (storage ${DIR}) serves library/busybox:latest@${digest}`);
    console.log(`registered in ${DROPIN}`);
  } else if (cmd === 'stop') {
    if (existsSync(PIDFILE)) {
      try { process.kill(Number(readFileSync(PIDFILE, 'utf8')), 'SIGTERM'); } catch { /* already gone */ }
      rmSync(PIDFILE, { force: true });
    }
    rmSync(DROPIN, { force: true });
    console.log(`stopped the mirror and removed ${DROPIN} (storage left in ${DIR})`);
  } else {
    console.error('usage: demo-mirror.js start|stop');
    process.exit(2);
  }
}

main().catch((err) => { console.error(`demo-mirror: ${(err as Error).message}`); process.exit(1); });
