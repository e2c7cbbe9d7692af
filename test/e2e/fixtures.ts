/**
 * Fixture layers for the end-to-end tests, built by code (no checked-in binaries).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { layerBlob, makeTar, type LayerBlob } from '../helpers/tar-writer.js';
import { pushImage, type PushedImage } from '../helpers/push.js';
import type { TestRegistry } from '../helpers/registry.js';

/** cap_net_bind_service, as `setcap cap_net_bind_service=ep` writes it (VFS_CAP_REVISION_2). */
export const CAP_NET_BIND = Buffer.from('0100000200040000000000000000000000000000', 'hex');

/** A base layer with every kind of entry the unpacker must keep faithfully. */
export function baseLayer(): LayerBlob {
  return layerBlob(
    makeTar([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', content: '#!fake busybox\n', mode: 0o4755 },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'bin/ls', type: 'hardlink', linkname: 'bin/busybox' },
      { name: 'etc/', type: 'dir' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
      { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 },
      { name: 'home/app/notes', content: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
      { name: 'usr/bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': CAP_NET_BIND } },
      { name: 'dev/', type: 'dir' },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
      { name: 'opt/a', content: 'a' },
      { name: 'opt/b', content: 'b' },
      { name: 'var/cache/old', content: 'old' },
    ]),
  );
}

/** A layer on top of baseLayer that deletes opt/a and makes var/cache opaque. */
export function topLayer(): LayerBlob {
  return layerBlob(
    makeTar([
      { name: 'opt/', type: 'dir' },
      { name: 'opt/.wh.a', content: '' },
      { name: 'var/cache/', type: 'dir' },
      { name: 'var/cache/.wh..wh..opq', content: '' },
      { name: 'var/cache/new', content: 'new' },
      { name: 'etc/hostname', content: 'fixture\n' },
    ]),
  );
}

/** A layer of `mb` MiB of incompressible data in several files (for kill and parallelism tests). */
export function bulkLayer(mb: number, files = 8): LayerBlob {
  const per = Math.ceil((mb * 1024 * 1024) / files);
  return layerBlob(
    makeTar(Array.from({ length: files }, (_, i) => ({ name: `bulk/f${i}`, content: randomBytes(per) }))),
  );
}

export function zstdLayer(): LayerBlob {
  const tar = makeTar([{ name: 'zstd/hello', content: 'compressed with zstd\n' }]);
  const r = spawnSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
  const blob = r.stdout;
  const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
  return { blob, digest: sha(blob), diffId: sha(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' };
}

/** Hostile layers: each must fail the pull and leave the store and the host untouched. */
export function hostileLayers(outside: string): Record<string, LayerBlob> {
  return {
    dotdot: layerBlob(makeTar([{ name: '../../../../../../..' + outside + '/dotdot', content: 'x' }])),
    symlinkEscape: layerBlob(
      makeTar([
        { name: 'x', type: 'symlink', linkname: outside },
        { name: 'x/pwned', content: 'x' },
      ]),
    ),
    hardlinkOut: layerBlob(
      makeTar([{ name: 'passwd', type: 'hardlink', linkname: '../../../../../../../etc/passwd' }]),
    ),
  };
}

/**
 * A real, runnable busybox image layer from Debian's busybox-static: the binary, one symlink per
 * applet, and the /etc files a base image has (root, a user `app` 1000 with a supplementary
 * group, nobody). No /tmp or WORKDIR on purpose: run must create what it needs.
 */
export function busyboxLayer(): LayerBlob {
  const bin = readFileSync('/bin/busybox');
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((a) => a && a !== 'busybox');
  return layerBlob(
    makeTar([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', content: bin, mode: 0o755 },
      ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
      { name: 'etc/', type: 'dir' },
      {
        name: 'etc/passwd',
        content:
          'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
      },
      { name: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n' },
      { name: 'root/', type: 'dir', mode: 0o700 },
      { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000, mode: 0o755 },
      { name: 'home/app/hello.txt', content: 'hello from the image\n', uid: 1000, gid: 1000 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
    ]),
  );
}

/** The image config most tests want of the busybox fixture: a shell, and /bin on the PATH. */
export const BUSYBOX_CONFIG = { Cmd: ['sh'], Env: ['PATH=/bin'] };

/**
 * Pushes the busybox fixture (one layer, busyboxLayer()) as `repo:tag` to `reg`. `config` is the
 * image's run config (`config.config` of the image config), BUSYBOX_CONFIG unless given; given, it
 * replaces that default whole (nothing of it is merged in).
 */
export function pushBusybox(
  reg: TestRegistry,
  repo: string,
  tag: string,
  config: Record<string, unknown> = BUSYBOX_CONFIG,
): Promise<PushedImage> {
  return pushImage(reg, repo, tag, { layers: [busyboxLayer()], config: { config } });
}

/** This machine's node and npm as a layer (the tests' stand-in for node:17-alpine); shared with the quick start. */
export { nodeLayer } from '../../scripts/node-image.js';

/** The getting-started tutorial's Dockerfile, word for word. */
export const TUTORIAL_DOCKERFILE = `FROM node:17-alpine
WORKDIR /app
COPY package*.json ./
RUN npm install
COPY . .
EXPOSE 3000
CMD ["npm", "start"]
`;

/**
 * The tutorial's app in `dir`: package.json with a start script, a server on port 3000 that
 * answers with src/message.txt, a .dockerignore (node_modules, *.secret) and a secret file it
 * must keep out of the image.
 */
export function writeTutorialApp(dir: string, message: string): void {
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), TUTORIAL_DOCKERFILE);
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'getting-started', version: '1.0.0', scripts: { start: 'node src/index.js' } }, null, 2),
  );
  writeFileSync(
    path.join(dir, 'src', 'index.js'),
    [
      "const http = require('http');",
      "const fs = require('fs');",
      "http.createServer((req, res) => res.end(fs.readFileSync(__dirname + '/message.txt'))).listen(3000, () => console.log('Listening on port 3000'));",
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'src', 'message.txt'), message);
  writeFileSync(path.join(dir, '.dockerignore'), 'node_modules\n*.secret\n');
  writeFileSync(path.join(dir, 'deploy.secret'), 'do not ship me');
}

/** A registries.conf making `host` (plain HTTP, loopback) the mirror of docker.io, for tsrun and podman. */
export function dockerHubMirror(host: string): string {
  return [
    '[[registry]]',
    'prefix = "docker.io"',
    'location = "registry-1.docker.io"',
    '[[registry.mirror]]',
    `location = "${host}"`,
    'insecure = true',
    '',
  ].join('\n');
}
