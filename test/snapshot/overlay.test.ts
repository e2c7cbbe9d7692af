import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256Digest } from '../../src/oci/digest.js';
import { mountAll, planOverlay, unmountAll, PAGE_SIZE } from '../../src/snapshot/overlay.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-overlay-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Make `count` layers under layers/<hex>/diff, layer i holding file `f<i>` and a shared file `which`. */
function layers(root: string, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = sha256Digest(`${root}-${i}`);
    const diff = path.join(root, 'layers', id.slice(7), 'diff');
    mkdirSync(diff, { recursive: true });
    writeFileSync(path.join(diff, `f${i}`), String(i));
    writeFileSync(path.join(diff, 'which'), String(i));
    ids.push(id);
  }
  return ids;
}

function dirs(root: string) {
  const c = path.join(root, 'c');
  for (const d of ['upper', 'work', 'rootfs']) mkdirSync(path.join(c, d), { recursive: true });
  return { upper: path.join(c, 'upper'), work: path.join(c, 'work'), target: path.join(c, 'rootfs') };
}

test('a 50-layer image mounts within one page of options; the top layer wins; writes go to upper', async () => {
  const root = path.join(tmp, 'a');
  const ids = layers(root, 50);
  const d = dirs(root);
  const m = planOverlay({ layersDir: path.join(root, 'layers'), chainIds: ids, ...d });
  assert.ok(m.options.join(',').length < PAGE_SIZE);
  await mountAll([m]);
  try {
    assert.is(readFileSync(path.join(d.target, 'which'), 'utf8'), '49');
    assert.is(readFileSync(path.join(d.target, 'f0'), 'utf8'), '0');
    writeFileSync(path.join(d.target, 'new'), 'x');
  } finally {
    await unmountAll([m]);
  }
  assert.equal(readdirSync(d.upper), ['new']);
  assert.is(existsSync(path.join(d.target, 'f0')), false, 'unmounted');
  await unmountAll([m]); // idempotent
});

test('a volatile root (run --rm) mounts without syncs, and mounts again after an unmount', async () => {
  const root = path.join(tmp, 'v');
  const ids = layers(root, 2);
  const d = dirs(root);
  const m = planOverlay({ layersDir: path.join(root, 'layers'), chainIds: ids, ...d, volatile: true });
  assert.ok(m.options.includes('volatile'));
  const fuse = planOverlay({ ...d, layersDir: '/x', chainIds: ids, driver: 'fuse-overlayfs' });
  assert.not.ok(fuse.options.includes('volatile'), 'only the kernel overlay knows volatile');
  for (let i = 0; i < 2; i++) {
    // The second mount meets work/work/incompat/volatile, left by the first (a reboot's case).
    await mountAll([m]);
    try {
      assert.match(readFileSync('/proc/self/mountinfo', 'utf8'), /volatile/);
      assert.is(readFileSync(path.join(d.target, 'which'), 'utf8'), '1');
    } finally {
      await unmountAll([m]);
    }
  }
});

test('too many layers for one page is a clear error before anything is mounted', () => {
  const ids = Array.from({ length: 80 }, (_, i) => sha256Digest(String(i)));
  assert.throws(
    () => planOverlay({ layersDir: '/x', chainIds: ids, upper: '/u', work: '/w', target: '/t' }),
    /more than the kernel/,
  );
});

test('a failed mount leaves nothing mounted', async () => {
  const root = path.join(tmp, 'b');
  const ids = layers(root, 2);
  const d = dirs(root);
  const good = planOverlay({ layersDir: path.join(root, 'layers'), chainIds: ids, ...d });
  const bad = { ...good, target: path.join(root, 'missing') };
  let err: unknown;
  try {
    await mountAll([good, bad]);
  } catch (e) {
    err = e;
  }
  assert.match(String((err as Error)?.message), 'mounting overlay');
  assert.is(readFileSync('/proc/self/mountinfo', 'utf8').includes(d.target), false);
});

test.run();
