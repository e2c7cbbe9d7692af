import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { corruptMessage, onCorrupt, type CorruptReport } from '../../src/util/corrupt.js';
import { Store } from '../../src/store/store.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { findImage } from '../../src/store/lookup.js';
import { emptyImagesFile, type ImageRecord } from '../../src/store/images.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-store-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('putBlob refuses content that does not hash to the digest, and stores nothing', async () => {
  const store = await Store.open(path.join(tmp, 's1'));
  const digest = sha256Digest('hello');
  const err = await store.putBlob(digest, Buffer.from('tampered')).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(err?.message), /hashes to/);
  assert.is(await store.hasBlob(digest), false);
  await store.putBlob(digest, Buffer.from('hello'));
  assert.is((await store.readBlob(digest)).toString(), 'hello');
});

test('store root and its folders are private (0700)', async () => {
  const store = await Store.open(path.join(tmp, 's2'));
  assert.is((await fs.stat(store.root)).mode & 0o777, 0o700);
  assert.is((await fs.stat(path.join(store.root, 'layers'))).mode & 0o777, 0o700);
});

test('a prepared layer is invisible until committed; a second commit of the same chain id is discarded', async () => {
  const store = await Store.open(path.join(tmp, 's3'));
  const chainId = sha256Digest('layer');
  const a = await store.prepareLayer();
  await fs.writeFile(path.join(a.diff, 'f'), 'a');
  assert.is(await store.hasLayer(chainId), false);
  await store.commitLayer(a.dir, { chainId, diffId: chainId, tarSize: 1, unpackedSize: 1 });
  assert.is(await store.hasLayer(chainId), true);
  const b = await store.prepareLayer();
  await fs.writeFile(path.join(b.diff, 'f'), 'b');
  await store.commitLayer(b.dir, { chainId, diffId: chainId, tarSize: 1, unpackedSize: 1 });
  assert.is(await fs.readFile(path.join(store.layerDiff(chainId), 'f'), 'utf8'), 'a');
  assert.is(
    await fs.stat(b.dir).then(
      () => true,
      () => false,
    ),
    false,
  );
});

test('layers are unpacked under a tmp/ marked +T (top-level spreading) where the filesystem has the flag', async () => {
  const store = await Store.open(path.join(tmp, 's3t'));
  await store.prepareLayer();
  const fstype = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', store.root], { encoding: 'utf8' }).stdout.trim();
  const attrs = spawnSync('lsattr', ['-d', path.join(store.root, 'tmp')], { encoding: 'utf8' });
  if (/^ext[234]$/.test(fstype)) assert.match(attrs.stdout.split(' ')[0] ?? '', /T/, attrs.stdout + attrs.stderr);
  else assert.ok(fstype !== '', 'findmnt names the filesystem');
});

test('stale temp entries of dead processes are removed, live ones kept', async () => {
  const store = await Store.open(path.join(tmp, 's4'));
  const dead = path.join(store.root, 'tmp', '999999-layer-x');
  const mine = store.tempPath('layer');
  await fs.mkdir(dead);
  await fs.mkdir(mine);
  assert.is(await store.cleanTemp(), 1);
  assert.is(
    await fs.stat(dead).then(
      () => true,
      () => false,
    ),
    false,
  );
  assert.is(
    await fs.stat(mine).then(
      () => true,
      () => false,
    ),
    true,
  );
});

test('gc frees layers and blobs no image refers to, keeps the rest', async () => {
  const store = await Store.open(path.join(tmp, 's5'));
  const keep = sha256Digest('keep');
  const drop = sha256Digest('drop');
  for (const c of [keep, drop]) {
    const l = await store.prepareLayer();
    await store.commitLayer(l.dir, { chainId: c, diffId: c, tarSize: 0, unpackedSize: 0 });
  }
  const cfg = Buffer.from('{}');
  const id = sha256Digest(cfg);
  await store.putBlob(id, cfg);
  await store.putBlob(drop, Buffer.from('drop'));
  await store.updateImages((f) => {
    f.images[id] = {
      id,
      manifestDigest: id,
      manifestMediaType: 'x',
      repoDigests: [],
      size: 0,
      storedAt: 'now',
      layers: [{ digest: id, mediaType: 'x', size: 0, diffId: keep, chainId: keep }],
    };
  });
  const removed = await store.gc();
  assert.equal(removed.layers, [drop]);
  assert.equal(removed.blobs, [drop]);
  assert.is(await store.hasLayer(keep), true);
  assert.is(await store.hasBlob(id), true);
});

test('gc interrupted while deleting a layer leaves no layer.json over what remains of it (chaos: rmi)', async () => {
  // A kill in the middle of the deletion, made to stay: two files that cannot be unlinked
  // (immutable), one deep in diff/ and the layer.json itself. Deleting in place left layer.json
  // over a half-emptied diff/, which a pull took as present (diff/'s stamp had not changed).
  const store = await Store.open(path.join(tmp, 's9'));
  const chainId = sha256Digest('half-deleted');
  const l = await store.prepareLayer();
  await fs.mkdir(path.join(l.diff, 'bulk'));
  for (let i = 0; i < 8; i++) await fs.writeFile(path.join(l.diff, 'bulk', `f${i}`), 'x');
  await store.commitLayer(l.dir, { chainId, diffId: chainId, tarSize: 0, unpackedSize: 0 });
  const dir = store.layerDir(chainId);
  const stuck = [path.join(dir, 'diff', 'bulk', 'f3'), path.join(dir, 'layer.json')];
  for (const f of stuck) assert.is(spawnSync('chattr', ['+i', f]).status, 0, `chattr +i ${f}`);
  try {
    await store.gc().catch(() => undefined);
    assert.is(await store.hasLayer(chainId), false, 'the layer is still listed');
    assert.equal(await fs.readdir(path.join(store.root, 'layers')), []);
    const left = await fs.readdir(path.join(store.root, 'tmp'));
    assert.ok(
      left.some((n) => n.includes('gc-layer-')),
      `the rest waits under tmp/: ${left.join(', ')}`,
    );
  } finally {
    spawnSync('chattr', ['-R', '-i', store.root]);
  }
});

test('a corrupted images.json is set aside and reported, and the store reads as empty', async () => {
  const store = await Store.open(path.join(tmp, 's6'));
  const reports: CorruptReport[] = [];
  const prev = onCorrupt((r) => reports.push(r));
  try {
    for (const bad of [
      '{not json',
      '',
      JSON.stringify({ version: 1, images: {}, tags: { 'x:1': sha256Digest('missing') } }),
    ]) {
      const file = path.join(store.root, 'images.json');
      await fs.writeFile(file, bad);
      assert.equal(await store.readImages(), emptyImagesFile());
      const r = reports.pop();
      assert.is(r?.file, file);
      assert.is(await fs.readFile(r?.movedTo ?? '', 'utf8'), bad);
      assert.match(corruptMessage(r!), file);
      assert.is(await fs.stat(file).catch(() => undefined), undefined);
    }
  } finally {
    onCorrupt(prev);
  }
});

test('findImage resolves names, digests and id prefixes as Docker does', () => {
  const file = emptyImagesFile();
  const id = sha256Digest('img');
  const rec: ImageRecord = {
    id,
    manifestDigest: sha256Digest('m'),
    manifestMediaType: 'x',
    storedAt: 'now',
    size: 0,
    layers: [],
    repoDigests: [`docker.io/library/busybox@${sha256Digest('idx')}`],
  };
  file.images[id] = rec;
  file.tags['docker.io/library/busybox:latest'] = id;
  assert.is(findImage(file, 'busybox').record.id, id);
  assert.is(findImage(file, 'docker.io/library/busybox:latest').tag, 'docker.io/library/busybox:latest');
  assert.is(findImage(file, `busybox@${sha256Digest('idx')}`).record.id, id);
  assert.is(findImage(file, id.slice(7, 19)).record.id, id);
  assert.is(findImage(file, id).record.id, id);
  assert.throws(() => findImage(file, 'busybox:1'), /no such image/);
});

test.run();

test('a volume record is read back as written; a damaged one (bad JSON, wrong shape) is ERR_STORE naming it', async () => {
  const { VolumeStore } = await import('../../src/store/volumes.js');
  const root = path.join(tmp, 'vols');
  const vols = new VolumeStore(root);
  const dir = path.join(root, 'volumes', 'data1');
  await fs.mkdir(dir, { recursive: true });
  const good = { Name: 'data1', CreatedAt: '2026-12-01T00:00:00Z', Labels: { a: 'b' }, Options: null, Extra: 1 };
  await fs.writeFile(path.join(dir, 'volume.json'), JSON.stringify(good));
  assert.equal(await vols.get('data1'), {
    Name: 'data1',
    CreatedAt: good.CreatedAt,
    Labels: { a: 'b' },
    Options: null,
  });
  for (const bad of ['{not json', JSON.stringify({ ...good, Labels: { a: 1 } }), JSON.stringify({ Name: 'data1' })]) {
    await fs.writeFile(path.join(dir, 'volume.json'), bad);
    const err = await vols.get('data1').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    assert.is(err?.code, 'ERR_STORE', bad);
    assert.match(String(err?.message), 'reading volume data1: its record is damaged');
  }
});
