/**
 * End to end: removing and pruning images as Docker does, with containers that use them, and the
 * layer accounting on disk afterwards (counted layer directories and bytes, never a listing).
 * Containers here use `--network none`: the network side of prune is in network.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { native } from '../../src/native/index.js';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { baseLayer, busyboxLayer, pushBusybox, topLayer } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-images-'));
let n = 0;
const freshRoot = () => path.join(tmp, `root${n++}`);
let BUSYBOX = '';
let OTHER = '';
const roots: string[] = [];

const I = suite('e2e images');

I.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  const bb = busyboxLayer();
  await pushImage(reg, 'e2e/busybox', 'latest', {
    layers: [bb],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  await pushImage(reg, 'e2e/other', '1', {
    layers: [bb, topLayer()],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  BUSYBOX = `${reg.host}/e2e/busybox`;
  OTHER = `${reg.host}/e2e/other:1`;
});
I.after(async () => {
  for (const r of roots) {
    const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root: r });
    for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root: r });
    rmSync(runDir(r), { recursive: true, force: true });
  }
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

async function store(...images: string[]): Promise<string> {
  const root = freshRoot();
  roots.push(root);
  for (const i of images) {
    const r = await tsrun(['pull', '-q', i], { root });
    assert.is(r.code, 0, r.stderr);
  }
  return root;
}
const layerDirs = (root: string) => readdirSync(path.join(root, 'layers')).length;
const blobs = (root: string) => readdirSync(path.join(root, 'blobs', 'sha256')).length;
const idOf = async (root: string, name: string) =>
  (await tsrun(['image', 'inspect', '-f', '{{.Id}}', name], { root })).stdout.trim();

I(
  'rmi of an image a stopped container uses: refused before anything is untagged; -f deletes, rm frees the layers',
  async () => {
    const root = await store(BUSYBOX);
    const cli = (args: string[]) => tsrun(args, { root });
    assert.is((await cli(['run', '--network', 'none', '--name', 'done', BUSYBOX, 'true'])).code, 0);
    const id = await idOf(root, BUSYBOX);

    const byName = await cli(['rmi', BUSYBOX]);
    assert.is(byName.code, 1, byName.stderr);
    assert.is(byName.stdout, '', 'nothing untagged');
    assert.match(
      byName.stderr,
      new RegExp(
        `conflict: unable to remove repository reference "${BUSYBOX}" \\(must force\\) - container [0-9a-f]{12} is using its referenced image ${id.slice(7, 19)}`,
      ),
    );
    assert.match((await cli(['images'])).stdout, new RegExp(`^${BUSYBOX}\\s+latest\\s`, 'm'), 'the tag stays');

    const byId = await cli(['rmi', id.slice(7, 19)]);
    assert.is(byId.code, 1);
    assert.match(
      byId.stderr,
      `conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is being used by stopped container`,
    );

    const forced = await cli(['rmi', '-f', BUSYBOX]);
    assert.is(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, `Untagged: ${BUSYBOX}:latest`);
    assert.match(forced.stdout, `Deleted: ${id}`);
    assert.is((await cli(['images', '-q'])).stdout, '');
    assert.is(layerDirs(root), 1, 'the stopped container still needs its layer');
    assert.is((await cli(['start', '-a', 'done'])).code, 0, 'and still runs');
    assert.is((await cli(['rm', 'done'])).code, 0);
    assert.is(layerDirs(root), 0, 'removing the last user frees the layer');
    assert.is(blobs(root), 0);
  },
);

I(
  'rmi of an image a running container uses: by id never, by name -f only untags; prune frees it once the container is gone',
  async () => {
    const root = await store(BUSYBOX, OTHER);
    const cli = (args: string[]) => tsrun(args, { root });
    const run = await cli(['run', '-d', '--network', 'none', '--name', 'busy', BUSYBOX, 'sleep', '60']);
    assert.is(run.code, 0, run.stderr);
    const id = await idOf(root, BUSYBOX);
    for (const args of [
      ['rmi', id],
      ['rmi', '-f', id],
    ]) {
      const r = await cli(args);
      assert.is(r.code, 1, args.join(' '));
      assert.is(r.stdout, '');
      assert.match(
        r.stderr,
        `conflict: unable to delete ${id.slice(7, 19)} (cannot be forced) - image is being used by running container`,
      );
    }
    const untag = await cli(['rmi', '-f', BUSYBOX]);
    assert.is(untag.code, 0, untag.stderr);
    assert.match(untag.stdout, `Untagged: ${BUSYBOX}:latest`);
    assert.not.match(untag.stdout, 'Deleted:');
    assert.match((await cli(['images', '-a'])).stdout, /^<none>\s+<none>\s/m, 'kept, dangling');
    assert.is(layerDirs(root), 2);

    // Prune leaves the running container's image alone.
    const p1 = await cli(['image', 'prune', '-f']);
    assert.is(p1.code, 0, p1.stderr);
    assert.not.match(p1.stdout, 'deleted:');
    assert.is((await cli(['rm', '-f', 'busy'])).code, 0);
    const p2 = await cli(['system', 'prune', '-f']);
    assert.is(p2.code, 0, p2.stderr);
    assert.match(p2.stdout, `Deleted Images:\ndeleted: ${id}\n`);
    assert.match(p2.stdout, /Total reclaimed space: [1-9][0-9.]*(B|kB|MB)\n$/);
    assert.is(layerDirs(root), 2, 'the layers of the image still tagged stay');
    assert.match((await cli(['images'])).stdout, new RegExp(`${reg.host}/e2e/other\\s+1\\s`));
    // This store's own leftovers (the host-wide network ones are network.test.ts's to check).
    assert.equal(
      (await leftovers(root)).filter((l) => /^(record|name|mount|state|runc) /.test(l)),
      [],
    );
  },
);

I(
  'system prune and image prune ask first: no answer or N removes nothing; y does; -a removes unused tagged images',
  async () => {
    const root = await store(BUSYBOX, OTHER);
    const cli = (args: string[], input?: string) => tsrun(args, { root, input });
    assert.is((await cli(['tag', OTHER, 'keep:me'])).code, 0);
    assert.is((await cli(['rmi', OTHER])).code, 0);
    // Re-point busybox's tag: the old image becomes dangling.
    assert.is((await cli(['tag', 'keep:me', BUSYBOX])).code, 0);
    assert.is(layerDirs(root), 2);

    const noInput = await cli(['system', 'prune']);
    assert.is(noInput.code, 0, noInput.stderr);
    assert.match(noInput.stdout, 'WARNING! This will remove:\n  - all stopped containers\n');
    assert.match(noInput.stdout, '  - all dangling images\n');
    assert.ok(noInput.stdout.endsWith('Are you sure you want to continue? [y/N] '), noInput.stdout);
    assert.is((await cli(['images', '-q'])).stdout.split('\n').filter(Boolean).length, 2, 'nothing removed');
    const no = await cli(['image', 'prune'], 'N\n');
    assert.match(
      no.stdout,
      'WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] Total reclaimed space: 0B\n',
    );
    assert.is(layerDirs(root), 2);

    const yes = await cli(['image', 'prune'], 'y\n');
    assert.is(yes.code, 0, yes.stderr);
    assert.match(
      yes.stdout,
      /Deleted Images:\nuntagged: [^\n]*e2e\/busybox@sha256:[0-9a-f]{64}\ndeleted: sha256:[0-9a-f]{64}\n/,
    );
    assert.is(layerDirs(root), 2, 'the busybox layer is shared with the image left');
    assert.is((await cli(['images', '-q'])).stdout.split('\n').filter(Boolean).length, 1);

    const all = await cli(['system', 'prune', '-a'], 'yes\n');
    assert.is(all.code, 0, all.stderr + all.stdout);
    assert.match(all.stdout, '  - all images without at least one container associated to them\n');
    assert.match(all.stdout, 'untagged: keep:me\n');
    assert.is((await cli(['images', '-qa'])).stdout, '');
    assert.is(layerDirs(root), 0);
    assert.is(blobs(root), 0);
  },
);

I(
  'pull: a re-created tag is "Downloaded newer image"; -a pulls every tag; another platform warns as Docker does',
  async () => {
    await pushImage(reg, 'e2e/tags', '1', { layers: [topLayer()] });
    await pushImage(reg, 'e2e/tags', '2', { layers: [baseLayer()] });
    await pushImage(reg, 'e2e/arm', '1', {
      layers: [topLayer()],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    const root = await store();
    const cli = (args: string[]) => tsrun(args, { root });
    const t1 = `${reg.host}/e2e/tags:1`;
    assert.match((await cli(['pull', t1])).stdout, 'Status: Downloaded newer image for');
    assert.match((await cli(['pull', t1])).stdout, 'Status: Image is up to date for');
    assert.is((await cli(['tag', t1, 'keep:1'])).code, 0);
    assert.match(
      (await cli(['rmi', t1])).stdout,
      new RegExp(`^Untagged: ${t1}\nUntagged: ${reg.host}/e2e/tags@sha256:[0-9a-f]{64}\n$`),
    );
    const again = await cli(['pull', t1]);
    assert.match(again.stdout, `Status: Downloaded newer image for ${t1}\n`, 'the tag was made again');

    const all = await cli(['pull', '-a', `${reg.host}/e2e/tags`]);
    assert.is(all.code, 0, all.stderr + all.stdout);
    assert.match(all.stdout, '1: Pulling from e2e/tags\n');
    assert.match(all.stdout, '2: Pulling from e2e/tags\n');
    assert.match(all.stdout, `Status: Downloaded newer image for ${reg.host}/e2e/tags\n${reg.host}/e2e/tags\n`);
    assert.is(all.stdout.split('Status:').length, 2, 'one status line');
    assert.match((await cli(['images', `${reg.host}/e2e/tags`])).stdout, new RegExp(`tags\\s+2\\s`));
    const withTag = await cli(['pull', '-a', t1]);
    assert.is(withTag.code, 1);
    assert.match(withTag.stderr, "tag can't be used with --all-tags/-a");

    const arm = await cli(['pull', `${reg.host}/e2e/arm:1`]);
    assert.is(arm.code, 0, arm.stderr);
    if (process.arch === 'x64') {
      assert.match(
        arm.stderr,
        "WARNING: The requested image's platform (linux/arm64/v8) does not match the detected host platform (linux/amd64) and no specific platform was requested\n",
      );
      const run = await cli(['create', '--network', 'none', `${reg.host}/e2e/arm:1`, 'sh']);
      assert.match(
        run.stderr,
        "WARNING: The requested image's platform (linux/arm64/v8) does not match the detected host platform",
      );
      const rm = await cli(['rm', run.stdout.trim()]);
      assert.is(rm.code, 0, `${rm.stderr}${run.stdout}${run.stderr}`);
    }
    const wanted = await cli(['pull', '--platform', 'linux/s390x', t1]);
    assert.is(wanted.code, 0, wanted.stderr);
    assert.match(
      wanted.stderr,
      `WARNING: image with reference ${t1} was found but does not match the specified platform: wanted linux/s390x, actual: linux/amd64`,
    );
  },
);

I('images: REPOSITORY[:TAG], --filter dangling/reference/before/since/label; history -H=false', async () => {
  await pushImage(reg, 'e2e/old', '1', { layers: [topLayer()], config: { created: '2020-05-01T10:00:00Z' } });
  await pushImage(reg, 'e2e/new', '1', {
    layers: [baseLayer()],
    config: { created: '2024-05-01T10:00:00Z', config: { Labels: { team: 'a', tier: 'web' } } },
  });
  const root = await store(`${reg.host}/e2e/old:1`, `${reg.host}/e2e/new:1`);
  const names = async (...args: string[]) => {
    const r = await tsrun(['images', ...args], { root });
    assert.is(r.code, 0, r.stderr);
    return r.stdout
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => l.split(/\s+/).slice(0, 2).join(':').replace(`${reg.host}/`, ''));
  };
  assert.equal(await names(), ['e2e/new:1', 'e2e/old:1']);
  assert.equal(await names(`${reg.host}/e2e/new`), ['e2e/new:1']);
  assert.equal(await names(`${reg.host}/e2e/new:2`), []);
  assert.equal(await names('-f', `reference=${reg.host}/e2e/o*`), ['e2e/old:1']);
  assert.equal(await names('-f', 'reference=*'), [], 'a star does not cross a slash');
  assert.equal(await names('-f', `before=${reg.host}/e2e/new:1`), ['e2e/old:1']);
  assert.equal(await names('--filter', `since=${reg.host}/e2e/old:1`), ['e2e/new:1']);
  assert.equal(await names('-f', 'label=team=a'), ['e2e/new:1']);
  assert.equal(await names('-f', 'label=team', '-f', 'label=tier=db'), []);
  assert.equal(await names('-f', 'dangling=true'), []);
  assert.equal(await names('-a', '-f', 'dangling=false'), ['e2e/new:1', 'e2e/old:1']);
  assert.is((await tsrun(['tag', `${reg.host}/e2e/old:1`, `${reg.host}/e2e/new:1`], { root })).code, 0);
  assert.equal(await names('-f', 'dangling=true'), ['e2e/new:<none>']);
  const bad = await tsrun(['images', '-f', 'colour=blue'], { root });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, "invalid filter 'colour'");

  const h = await tsrun(['history', '-H=false', `${reg.host}/e2e/old:1`], { root });
  assert.is(h.code, 0, h.stderr);
  assert.match(h.stdout, /2024-01-01T00:00:00Z\s+test layer 0\s+\d+\s/);
  const hh = await tsrun(['image', 'history', `${reg.host}/e2e/old:1`], { root });
  assert.match(hh.stdout, /years ago\s+test layer 0\s+\d+(\.\d+)?[kM]?B/);
});

I(
  'a copied store: a faithful copy (cp -a) is trusted; one that lost owners, modes and xattrs is detected and fetched again by pull and by run',
  async () => {
    await pushImage(reg, 'e2e/owners', '1', {
      layers: [baseLayer(), topLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    await pushBusybox(reg, 'e2e/runme', '1');
    const name = `${reg.host}/e2e/owners:1`;
    const runme = `${reg.host}/e2e/runme:1`;
    const src = await store(name, runme);
    const faithful = freshRoot();
    const lossy = freshRoot();
    roots.push(faithful, lossy);
    execFileSync('cp', ['-a', src, faithful]);
    // What a copy without owners and xattrs does (cp without -a; as a user, tar or cp -a lose the same).
    execFileSync('cp', ['-r', src, lossy]);

    const kept = await tsrun(['pull', name], { root: faithful });
    assert.is(kept.code, 0, kept.stderr);
    assert.match(kept.stdout, 'Status: Image is up to date');
    assert.not.match(kept.stderr, 'damaged');

    const pulled = await tsrun(['pull', name], { root: lossy });
    assert.is(pulled.code, 0, pulled.stderr);
    assert.match(
      pulled.stderr,
      /WARNING: layer [0-9a-f]{12} in the store is damaged \(owners, modes, xattrs or contents changed since it was committed; /,
    );
    assert.match(pulled.stdout, 'Pull complete');
    assert.match(pulled.stdout, 'Status: Downloaded newer image');
    const layers = path.join(lossy, 'layers');
    const diffs = readdirSync(layers).map((h) => path.join(layers, h, 'diff'));
    const notes = diffs.map((d) => path.join(d, 'home/app/notes')).find((f) => existsSync(f)) as string;
    assert.equal([statSync(notes).uid, statSync(notes).mode & 0o777], [1000, 0o600], 'owner and mode back');
    assert.ok(
      diffs.some(
        (d) =>
          existsSync(path.join(d, 'var/cache')) &&
          native().lgetxattr(path.join(d, 'var/cache'), 'trusted.overlay.opaque')?.toString() === 'y',
      ),
      'opaque xattr back',
    );
    assert.match(
      (await tsrun(['pull', name], { root: lossy })).stdout,
      'Status: Image is up to date',
      'and now trusted',
    );

    const run = await tsrun(
      ['run', '--rm', '--network', 'none', runme, 'stat', '-c', '%u %a', '/home/app/hello.txt', '/bin/busybox'],
      { root: lossy },
    );
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stderr, /WARNING: layer [0-9a-f]{12} of .* is damaged .*: pulling the image again/);
    assert.is(run.stdout, '1000 644\n0 755\n');
  },
);

I.run();
