/**
 * The quick start's local registry mirror, for machines that cannot reach Docker Hub.
 *
 *   node dist/scripts/demo-mirror.js start         # start docker-registry on 127.0.0.1:5000, seed it, register it
 *   node dist/scripts/demo-mirror.js stop [--purge] # stop it, remove the registries.conf drop-in (--purge: and its storage)
 *
 * `start` runs Debian's docker-registry (the reference implementation of the distribution API)
 * with its storage in /var/lib/tsrun-demo-mirror, seeds `library/busybox:latest` built here from
 * Debian's busybox-static binary (one layer: /bin/busybox plus a symlink per applet, a minimal
 * /etc) and `library/node:17-alpine`, a LOCAL STAND-IN for the official image: that busybox layer,
 * this machine's node and npm (scripts/node-image.ts) and the official image's entrypoint, labelled
 * as a stand-in with what it was built from. Then it writes
 * /etc/containers/registries.conf.d/50-tsrun-demo-mirror.conf declaring the registry a mirror of
 * docker.io. tsrun then pulls `busybox` exactly as it would from a pull-through mirror: the name
 * stays docker.io/library/busybox. Nothing here pretends to be Docker Hub.
 *
 * Idempotent: the images are built deterministically and blobs the registry has are not sent
 * again, so a second `start` changes nothing. The environment can move everything elsewhere (the
 * quick start's test does): TSRUN_DEMO_MIRROR_DIR, TSRUN_DEMO_MIRROR_ADDR, TSRUN_DEMO_MIRROR_CONF.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { layerBlob, makeTar, type TarEntrySpec } from '../test/helpers/tar-writer.js';
import { pushImage } from '../test/helpers/push.js';
import type { TestRegistry } from '../test/helpers/registry.js';
import { nodeLayer, standInConfig, standInLayer } from './node-image.js';

const DIR = process.env.TSRUN_DEMO_MIRROR_DIR ?? '/var/lib/tsrun-demo-mirror';
const HOST = process.env.TSRUN_DEMO_MIRROR_ADDR ?? '127.0.0.1:5000';
const DROPIN = process.env.TSRUN_DEMO_MIRROR_CONF ?? '/etc/containers/registries.conf.d/50-tsrun-demo-mirror.conf';
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
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(DIR, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${HOST}`,
      '',
    ].join('\n'),
  );
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

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\n';

function busyboxLayer() {
  const busybox = readFileSync('/bin/busybox');
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((a) => a && a !== 'busybox');
  const entries: TarEntrySpec[] = [
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', content: busybox, mode: 0o755 },
    ...applets.map((a): TarEntrySpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: PASSWD },
    { name: 'etc/group', content: GROUP },
    { name: 'root/', type: 'dir', mode: 0o700 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'home/', type: 'dir' },
  ];
  return layerBlob(makeTar(entries.map((e) => ({ ...e, mtime: 1700000000 }))));
}

async function seed(): Promise<{ busybox: string; node: string }> {
  const reg: TestRegistry = {
    host: HOST,
    url: `http://${HOST}`,
    auth: 'anonymous',
    users: {},
    dir: DIR,
    tokenRequests: () => 0,
    tokenRequestLog: () => [],
    stop: async () => {},
  };
  const busybox = busyboxLayer();
  const img = await pushImage(reg, 'library/busybox', 'latest', {
    skipExisting: true,
    layers: [busybox],
    config: {
      created: '2026-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      history: [
        { created: '2026-01-01T00:00:00Z', created_by: 'tsrun demo-mirror: /bin/busybox from Debian busybox-static' },
      ],
    },
  });
  const nodeLayers = [busybox, nodeLayer(), standInLayer(PASSWD, GROUP)];
  const node = await pushImage(reg, 'library/node', '17-alpine', {
    skipExisting: true,
    layers: nodeLayers,
    config: standInConfig(nodeLayers.length),
  });
  return { busybox: img.manifestDigest, node: node.manifestDigest };
}

function register(): void {
  mkdirSync(path.dirname(DROPIN), { recursive: true });
  writeFileSync(
    DROPIN,
    [
      '# Written by tsrun scripts/demo-mirror.js: a local mirror of docker.io for machines without',
      '# access to Docker Hub. Remove with `node dist/scripts/demo-mirror.js stop`.',
      '[[registry]]',
      'prefix = "docker.io"',
      'location = "registry-1.docker.io"',
      '[[registry.mirror]]',
      `location = "${HOST}"`,
      'insecure = true',
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  if (cmd === 'start') {
    await startRegistry();
    const seeded = await seed();
    register();
    console.log(`local mirror of docker.io on ${HOST} (storage ${DIR}) serves:`);
    console.log(`  library/busybox:latest@${seeded.busybox}  (Debian's busybox-static)`);
    console.log(
      `  library/node:17-alpine@${seeded.node}  (a LOCAL STAND-IN built from this machine's node ${process.version} and npm, not the official image)`,
    );
    console.log(`registered as a mirror of docker.io in ${DROPIN}`);
  } else if (cmd === 'stop') {
    if (existsSync(PIDFILE)) {
      const pid = Number(readFileSync(PIDFILE, 'utf8'));
      // Only our registry: the pid may have been reused since.
      const ours = () => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('docker-registry');
        } catch {
          return false;
        }
      };
      if (pid > 0 && ours()) {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 100 && ours(); i++) await new Promise((r) => setTimeout(r, 50));
      }
      rmSync(PIDFILE, { force: true });
    }
    rmSync(DROPIN, { force: true });
    const purge = process.argv.includes('--purge');
    if (purge) rmSync(DIR, { recursive: true, force: true });
    console.log(
      `stopped the mirror and removed ${DROPIN} (${purge ? `and its storage ${DIR}` : `storage left in ${DIR}; --purge removes it`})`,
    );
  } else {
    console.error('usage: demo-mirror.js start | stop [--purge]');
    process.exit(2);
  }
}

main().catch((err) => {
  console.error(`demo-mirror: ${(err as Error).message}`);
  process.exit(1);
});
