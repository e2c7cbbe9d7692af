/**
 * End to end: the real CLI pulls from a real docker-registry on loopback into a temp store.
 * Checks what a user would: exit codes, output, `images`/`inspect`, and the store on disk,
 * including an overlayfs mount of the pulled layers to prove the whiteouts are in kernel form.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage, pushIndex } from '../helpers/push.js';
import { startFlakyFront } from '../helpers/flaky-front.js';
import { tsrun, spawnTsrun } from './cli.js';
import { baseLayer, bulkLayer, hostileLayers, topLayer, zstdLayer, CAP_NET_BIND } from './fixtures.js';
import { chainIds } from '../../src/oci/digest.js';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-pull-'));
let reg: TestRegistry;
let n = 0;
const freshRoot = () => path.join(tmp, `root${n++}`);
const hex = (d: string) => d.slice(7);

const Pull = suite('e2e pull');
Pull.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
});
Pull.after(async () => {
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

Pull('pull stores a faithful, overlay-ready image and reports it like docker', async () => {
  const base = baseLayer();
  const top = topLayer();
  const img = await pushImage(reg, 'e2e/multi', '1', {
    layers: [base, top],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  const root = freshRoot();
  const name = `${reg.host}/e2e/multi:1`;
  const r = await tsrun(['pull', name], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `1: Pulling from e2e/multi`);
  assert.match(r.stdout, `${hex(base.digest).slice(0, 12)}: Pull complete`);
  assert.match(r.stdout, `Digest: ${img.manifestDigest}`);
  assert.match(r.stdout, 'Status: Downloaded newer image for');
  assert.ok(r.stdout.trimEnd().endsWith(name), r.stdout);

  const [l1, l2] = chainIds([base.diffId, top.diffId]) as [string, string];
  const d1 = path.join(root, 'layers', hex(l1), 'diff');
  const d2 = path.join(root, 'layers', hex(l2), 'diff');
  // Faithful unpacking of the base layer.
  const busybox = statSync(path.join(d1, 'bin/busybox'));
  assert.is(busybox.mode & 0o7777, 0o4755, 'setuid kept');
  assert.is(statSync(path.join(d1, 'bin/ls')).ino, busybox.ino, 'hardlink shares the inode');
  assert.is(await fs.readlink(path.join(d1, 'bin/sh')), '/bin/busybox', 'absolute symlink target kept');
  const notes = statSync(path.join(d1, 'home/app/notes'));
  assert.equal([notes.uid, notes.gid, notes.mode & 0o777], [1000, 1000, 0o600]);
  assert.is(statSync(path.join(d1, 'tmp')).mode & 0o7777, 0o1777, 'sticky dir');
  const devnull = statSync(path.join(d1, 'dev/null'));
  assert.ok(devnull.isCharacterDevice());
  assert.is(devnull.rdev, (1 << 8) | 3);
  assert.equal(native().lgetxattr(path.join(d1, 'usr/bin/ping'), 'security.capability'), CAP_NET_BIND);
  // Whiteouts in overlayfs form in the top layer.
  const wh = statSync(path.join(d2, 'opt/a'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
  assert.is(existsSync(path.join(d2, 'opt/.wh.a')), false);
  assert.equal(native().lgetxattr(path.join(d2, 'var/cache'), 'trusted.overlay.opaque'), Buffer.from('y'));

  // The kernel agrees: mount the layers as overlayfs lowers and look.
  const mnt = path.join(tmp, 'mnt');
  await fs.mkdir(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d2}:${d1}`, mnt]);
  try {
    assert.is(existsSync(path.join(mnt, 'opt/a')), false, 'deleted file hidden');
    assert.is(await fs.readFile(path.join(mnt, 'opt/b'), 'utf8'), 'b');
    assert.equal(readdirSync(path.join(mnt, 'var/cache')), ['new'], 'opaque dir hides the lower contents');
    assert.is(await fs.readFile(path.join(mnt, 'etc/hostname'), 'utf8'), 'fixture\n');
  } finally {
    execFileSync('umount', [mnt]);
  }

  // images and inspect.
  const images = await tsrun(['images'], { root });
  assert.is(images.code, 0);
  assert.match(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
  assert.match(
    images.stdout,
    new RegExp(`^${reg.host}/e2e/multi\\s+1\\s+${hex(img.configDigest).slice(0, 12)}\\s`, 'm'),
  );
  const inspect = await tsrun(['image', 'inspect', name], { root });
  assert.is(inspect.code, 0, inspect.stderr);
  const [info] = JSON.parse(inspect.stdout) as Array<Record<string, any>>;
  assert.is(info!.Id, img.configDigest);
  assert.equal(info!.RepoTags, [name]);
  assert.equal(info!.RepoDigests, [`${reg.host}/e2e/multi@${img.manifestDigest}`]);
  assert.equal(info!.RootFS, { Type: 'layers', Layers: [base.diffId, top.diffId] });
  assert.equal(info!.Config.Cmd, ['sh']);
  assert.is(info!.Os, 'linux');

  // A second pull downloads nothing.
  const again = await tsrun(['pull', name], { root });
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, 'Already exists');
  assert.match(again.stdout, 'Status: Image is up to date');
  assert.not.match(again.stdout, 'Pull complete');
});

Pull(
  'a pull of an image the store has fetches no blob; a stored config that no longer hashes right is fetched again',
  async () => {
    const img = await pushImage(reg, 'e2e/current', '1', { layers: [topLayer()], config: { config: { Cmd: ['sh'] } } });
    const front = await startFlakyFront(reg.host, 'pass');
    try {
      const root = freshRoot();
      const name = `${front.host}/e2e/current:1`;
      assert.is((await tsrun(['pull', '-q', name], { root })).code, 0);
      assert.equal(front.requests.get(img.configDigest), [''], 'the first pull fetched the config');
      const again = await tsrun(['pull', name], { root });
      assert.is(again.code, 0, again.stderr);
      assert.match(again.stdout, 'Status: Image is up to date');
      assert.is(front.requests.get(img.configDigest)?.length, 1, 'no second request for the config');
      // The store's copy is read only while it still hashes to its digest.
      const stored = path.join(root, 'blobs', 'sha256', hex(img.configDigest));
      const bytes = await fs.readFile(stored);
      await fs.writeFile(stored, Buffer.from(bytes.toString().replace('"sh"', '"xx"')));
      const third = await tsrun(['pull', name], { root });
      assert.is(third.code, 0, third.stderr);
      assert.is(front.requests.get(img.configDigest)?.length, 2, 'the damaged config was fetched again');
    } finally {
      await front.stop();
    }
  },
);

Pull('-q prints only the name; pulling by digest works and records no tag', async () => {
  const img = await pushImage(reg, 'e2e/quiet', 'v1', { layers: [topLayer()] });
  const root = freshRoot();
  const r = await tsrun(['pull', '-q', `${reg.host}/e2e/quiet@${img.manifestDigest}`], { root });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${reg.host}/e2e/quiet@${img.manifestDigest}\n`);
  const images = await tsrun(['images'], { root });
  assert.match(images.stdout, new RegExp(`${reg.host}/e2e/quiet\\s+<none>`));
});

Pull(
  'a multi-platform index: host platform by default, --platform picks another, a missing one is a clear error',
  async () => {
    const amd = await pushImage(reg, 'e2e/multiarch', 'amd64-only', {
      layers: [topLayer()],
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const arm = await pushImage(reg, 'e2e/multiarch', 'arm64-only', {
      layers: [baseLayer()],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    await pushIndex(reg, 'e2e/multiarch', 'latest', [
      { digest: amd.manifestDigest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
      {
        digest: arm.manifestDigest,
        size: arm.manifest.length,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
    ]);
    const root = freshRoot();
    const name = `${reg.host}/e2e/multiarch`;
    const host = await tsrun(['pull', '-q', name], { root });
    assert.is(host.code, 0, host.stderr);
    const armPull = await tsrun(['pull', '-q', '--platform', 'linux/arm64', name], { root });
    assert.is(armPull.code, 0, armPull.stderr);
    const [info] = JSON.parse((await tsrun(['image', 'inspect', name], { root })).stdout) as Array<Record<string, any>>;
    assert.is(info!.Architecture, 'arm64', 'the tag now points at the arm64 image');
    assert.is(info!.Id, arm.configDigest);
    const missing = await tsrun(['pull', '--platform', 'linux/s390x', name], { root });
    assert.is(missing.code, 1);
    assert.match(missing.stderr, 'linux/s390x');
    assert.match(missing.stderr, 'linux/arm64');
  },
);

Pull('zstd and uncompressed layers', async () => {
  const plain = bulkLayer(1, 2);
  const { layerBlob, makeTar } = await import('../helpers/tar-writer.js');
  const raw = layerBlob(makeTar([{ name: 'raw/file', content: 'raw' }]), 'none');
  await pushImage(reg, 'e2e/zstd', '1', { layers: [zstdLayer(), raw, plain] });
  const root = freshRoot();
  const r = await tsrun(['pull', `${reg.host}/e2e/zstd:1`], { root });
  assert.is(r.code, 0, r.stderr);
  const diffs = readdirSync(path.join(root, 'layers')).map((h) => path.join(root, 'layers', h, 'diff'));
  assert.ok(diffs.some((d) => existsSync(path.join(d, 'zstd/hello'))));
  assert.ok(diffs.some((d) => existsSync(path.join(d, 'raw/file'))));
});

Pull('concurrent pulls of the same image into one store do the work once and agree', async () => {
  const layers = [bulkLayer(8), bulkLayer(8), topLayer()];
  await pushImage(reg, 'e2e/concurrent', '1', { layers });
  const root = freshRoot();
  const runs = await Promise.all([0, 1, 2].map(() => spawnTsrun(['pull', `${reg.host}/e2e/concurrent:1`], { root })));
  for (const r of runs) assert.is(r.exitCode, 0, String(r.stderr));
  const completes = runs.map((r) => (String(r.stdout).match(/Pull complete/g) ?? []).length).reduce((a, b) => a + b, 0);
  assert.is(completes, 3, 'each of the 3 layers was unpacked exactly once across the 3 processes');
  assert.is(readdirSync(path.join(root, 'layers')).length, 3);
  assert.equal(readdirSync(path.join(root, 'tmp')), []);
  const file = JSON.parse(await fs.readFile(path.join(root, 'images.json'), 'utf8'));
  assert.is(Object.keys(file.images).length, 1);
});

Pull('a pull killed at any moment leaves nothing a later command mistakes for complete', async () => {
  const layers = [bulkLayer(24), bulkLayer(24), baseLayer()];
  await pushImage(reg, 'e2e/killed', '1', { layers });
  const name = `${reg.host}/e2e/killed:1`;
  for (const delay of [50, 150, 300, 500, 800]) {
    const root = freshRoot();
    const child = spawnTsrun(['pull', name], { root });
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await child;
    if (existsSync(path.join(root, 'layers'))) {
      for (const h of readdirSync(path.join(root, 'layers'))) {
        assert.ok(existsSync(path.join(root, 'layers', h, 'layer.json')), `layer ${h} is complete`);
      }
    }
    const images = await tsrun(['images', '-q'], { root });
    const imagesFile = path.join(root, 'images.json');
    if (images.stdout.trim() !== '') {
      // It finished before the kill: then it must be whole.
      assert.is(JSON.parse(await fs.readFile(imagesFile, 'utf8')).images !== undefined, true);
    }
    const again = await tsrun(['pull', name], { root });
    assert.is(again.code, 0, `re-pull after kill at ${delay}ms: ${again.stderr}`);
    assert.equal(readdirSync(path.join(root, 'tmp')), [], 'stale work of the killed pull was removed');
    assert.is(readdirSync(path.join(root, 'layers')).length, 3);
  }
});

Pull('hostile layers never write outside the store, and a refused pull leaves no image', async () => {
  const outside = path.join(tmp, 'outside');
  await fs.mkdir(outside);
  const passwdLinks = statSync('/etc/passwd').nlink;
  for (const [label, layer] of Object.entries(hostileLayers(outside))) {
    await pushImage(reg, `e2e/hostile-${label.toLowerCase()}`, '1', { layers: [layer] });
    const root = freshRoot();
    const r = await tsrun(['pull', `${reg.host}/e2e/hostile-${label.toLowerCase()}:1`], { root });
    assert.equal(readdirSync(outside), [], `${label}: nothing written outside`);
    assert.is(statSync('/etc/passwd').nlink, passwdLinks, `${label}: no hardlink to /etc/passwd`);
    if (r.code !== 0) {
      assert.is(r.code, 1);
      assert.match(r.stderr, /^Error: pulling /m);
      assert.equal(readdirSync(path.join(root, 'layers')), [], `${label}: no layer committed`);
      assert.equal(readdirSync(path.join(root, 'tmp')), [], `${label}: work removed`);
      assert.is((await tsrun(['images', '-q'], { root })).stdout, '');
    }
  }
  const esc = await tsrun(['pull', `${reg.host}/e2e/hostile-symlinkescape:1`], { root: freshRoot() });
  assert.is(esc.code, 1, 'a write through a symlink is refused');
});

Pull('large layers unpack in worker threads: faithful, and hostile entries refused there too', async () => {
  // Two layers of 6 MB (random, so the blobs are that large too): pull takes app/layer-thread.ts.
  const { layerBlob, makeTar } = await import('../helpers/tar-writer.js');
  const big = (tag: string) => ({ name: `big/${tag}`, content: randomBytes(6 << 20) });
  const base = baseLayer();
  const faithfulTop = layerBlob(
    makeTar([
      big('a'),
      { name: 'opt/.wh.a', content: '' },
      { name: 'var/cache/.wh..wh..opq', content: '' },
      { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750, mtime: 1600000000 },
      { name: 'home/app/key', content: 'k', uid: 1000, gid: 1000, mode: 0o600 },
    ]),
  );
  const first = layerBlob(makeTar([big('b'), { name: 'bin/true', content: 'x', mode: 0o4755 }]));
  await pushImage(reg, 'e2e/threaded', '1', { layers: [first, faithfulTop] });
  const root = freshRoot();
  const r = await tsrun(['pull', '-q', `${reg.host}/e2e/threaded:1`], { root });
  assert.is(r.code, 0, r.stderr);
  const [c1, c2] = chainIds([first.diffId, faithfulTop.diffId]) as [string, string];
  const d1 = path.join(root, 'layers', hex(c1), 'diff');
  const d2 = path.join(root, 'layers', hex(c2), 'diff');
  assert.is(statSync(path.join(d1, 'bin/true')).mode & 0o7777, 0o4755);
  assert.is(statSync(path.join(d1, 'big/b')).size, 6 << 20);
  const wh = statSync(path.join(d2, 'opt/a'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout made in the thread');
  assert.equal(native().lgetxattr(path.join(d2, 'var/cache'), 'trusted.overlay.opaque'), Buffer.from('y'));
  const home = statSync(path.join(d2, 'home/app'));
  assert.equal([home.uid, home.gid, home.mode & 0o7777, home.mtimeMs], [1000, 1000, 0o750, 1600000000000]);
  assert.equal(readdirSync(path.join(root, 'tmp')), []);
  // The store's fingerprint made in the thread is what a later check computes: nothing is refetched.
  const again = await tsrun(['pull', `${reg.host}/e2e/threaded:1`], { root });
  assert.is(again.code, 0, again.stderr);
  assert.not.match(again.stdout + again.stderr, 'damaged');
  assert.match(again.stdout, 'Image is up to date');

  const outside = path.join(tmp, 'outside-threaded');
  await fs.mkdir(outside);
  const hostile = layerBlob(
    makeTar([big('c'), { name: 'x', type: 'symlink', linkname: outside }, { name: 'x/pwned', content: 'x' }]),
  );
  await pushImage(reg, 'e2e/threaded-hostile', '1', { layers: [bulkLayer(6, 2), hostile, base] });
  const hroot = freshRoot();
  const h = await tsrun(['pull', `${reg.host}/e2e/threaded-hostile:1`], { root: hroot });
  assert.is(h.code, 1, h.stderr);
  assert.match(h.stderr, /^Error: pulling /m);
  assert.match(h.stderr, 'x/pwned');
  assert.equal(readdirSync(outside), [], 'nothing written outside');
  assert.equal(readdirSync(path.join(hroot, 'tmp')), [], 'work removed');
  assert.is((await tsrun(['images', '-q'], { root: hroot })).stdout, '');
});

Pull('rmi untags, deletes, and frees only layers no other image uses', async () => {
  const shared = baseLayer();
  await pushImage(reg, 'e2e/rmi-a', '1', { layers: [shared, topLayer()] });
  await pushImage(reg, 'e2e/rmi-b', '1', { layers: [shared, bulkLayer(1, 1)] });
  const root = freshRoot();
  for (const repo of ['e2e/rmi-a', 'e2e/rmi-b'])
    assert.is((await tsrun(['pull', '-q', `${reg.host}/${repo}:1`], { root })).code, 0);
  assert.is(readdirSync(path.join(root, 'layers')).length, 3);
  const tag = await tsrun(['tag', `${reg.host}/e2e/rmi-a:1`, 'mine/app:2'], { root });
  assert.is(tag.code, 0, tag.stderr);
  assert.match((await tsrun(['images'], { root })).stdout, /^mine\/app\s+2\s/m);
  const byId = await tsrun(['rmi', JSON.parse((await tsrun(['inspect', 'mine/app:2'], { root })).stdout)[0].Id], {
    root,
  });
  assert.is(byId.code, 1, 'an id with two tags needs -f');
  assert.match(byId.stderr, 'must be forced');
  const untag = await tsrun(['rmi', 'mine/app:2'], { root });
  assert.is(untag.stdout, 'Untagged: mine/app:2\n');
  const del = await tsrun(['rmi', `${reg.host}/e2e/rmi-a:1`], { root });
  assert.is(del.code, 0, del.stderr);
  assert.match(del.stdout, /^Deleted: sha256:/m);
  assert.is(readdirSync(path.join(root, 'layers')).length, 2, 'shared base layer kept for rmi-b');
  assert.is((await tsrun(['rmi', `${reg.host}/e2e/rmi-b:1`], { root })).code, 0);
  assert.equal(readdirSync(path.join(root, 'layers')), []);
  assert.equal(readdirSync(path.join(root, 'blobs', 'sha256')), []);
  const missing = await tsrun(['rmi', 'nope:1'], { root });
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'no such image: nope:1');
});

Pull(
  'errors name the thing and exit 1 as docker pull does: bad reference, unknown tag, unreachable registry',
  async () => {
    const root = freshRoot();
    const bad = await tsrun(['pull', 'UPPER/case'], { root });
    assert.is(bad.code, 1);
    assert.match(bad.stderr, 'UPPER/case');
    const unknown = await tsrun(['pull', `${reg.host}/e2e/multi:does-not-exist`], { root });
    assert.is(unknown.code, 1);
    assert.match(unknown.stderr, 'does-not-exist');
    const down = await tsrun(['pull', '127.0.0.1:1/x:1'], { root });
    assert.is(down.code, 1);
    assert.match(down.stderr, '127.0.0.1:1');
  },
);

Pull('registries.conf: a mirror serves docker.io names; a blocked registry is refused', async () => {
  await pushImage(reg, 'library/busybox', 'latest', { layers: [topLayer()] });
  const conf = path.join(tmp, 'registries.conf');
  writeFileSync(
    conf,
    [
      '[[registry]]',
      'prefix = "docker.io"',
      'location = "registry-1.docker.io"',
      '[[registry.mirror]]',
      `location = "${reg.host}"`,
      '',
      '[[registry]]',
      'location = "blocked.example.com"',
      'blocked = true',
      '',
    ].join('\n'),
  );
  const root = freshRoot();
  const r = await tsrun(['pull', 'busybox'], { root, env: { CONTAINERS_REGISTRIES_CONF: conf } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, 'Using default tag: latest');
  assert.ok(r.stdout.trimEnd().endsWith('docker.io/library/busybox:latest'));
  assert.match((await tsrun(['images'], { root })).stdout, /^busybox\s+latest\s/m);
  const blocked = await tsrun(['pull', 'blocked.example.com/x:1'], { root, env: { CONTAINERS_REGISTRIES_CONF: conf } });
  assert.is(blocked.code, 1);
  assert.match(blocked.stderr, 'blocked');
});

Pull.run();
