/**
 * src/snapshot/layer-read.ts: the merged view of layer directories in overlayfs form, without a
 * mount — the topmost layer wins, a 0/0 character device deletes, an opaque directory hides the
 * layers below it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { dirInLayers, readFromLayers } from '../../src/snapshot/layer-read.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-layer-read-'));
const layer = (name: string, files: Record<string, string | null>, opaque: string[] = []) => {
  const dir = path.join(tmp, name);
  for (const [p, content] of Object.entries(files)) {
    const full = path.join(dir, p);
    mkdirSync(path.dirname(full), { recursive: true });
    if (content === null) execFileSync('mknod', [full, 'c', '0', '0']);
    else if (p.endsWith('/')) mkdirSync(full, { recursive: true });
    else writeFileSync(full, content);
  }
  for (const o of opaque) native().lsetxattr(path.join(dir, o), 'trusted.overlay.opaque', Buffer.from('y'));
  return dir;
};

const bottom = layer('bottom', {
  'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
  'etc/group': 'root:x:0:\n',
  'srv/old': 'x',
});
const middle = layer('middle', { 'etc/passwd': 'app:x:1000:1000::/home/app:/bin/sh\n', 'etc/group': null });
const top = layer('top', { 'srv/': '', 'etc/hosts': '' }, ['srv']);

test('the topmost layer that has the file wins', () => {
  assert.is(readFromLayers([top, middle, bottom], 'etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  assert.is(readFromLayers([bottom], 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
});

test('a whiteout deletes the file of the layers below', () => {
  assert.is(readFromLayers([top, middle, bottom], 'etc/group'), undefined);
  assert.is(readFromLayers([bottom], 'etc/group'), 'root:x:0:\n');
});

test('an opaque directory hides what the layers below have in it', () => {
  assert.is(readFromLayers([middle, bottom], 'srv/old'), 'x');
  assert.is(readFromLayers([top, middle, bottom], 'srv/old'), undefined);
});

test('directories: an opaque one is still there, a missing one is not', () => {
  assert.ok(dirInLayers([top, middle, bottom], 'srv'));
  assert.ok(dirInLayers([top, middle, bottom], 'etc'));
  assert.not.ok(dirInLayers([top, middle, bottom], 'srv/app'));
  assert.not.ok(dirInLayers([top, middle, bottom], 'etc/passwd'));
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
