/**
 * The copying snapshotter on its own: layers in overlayfs form applied in order (whiteouts,
 * opaque directories, hardlinks, owners), and the comparison that finds a step's changes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diffTrees, populate } from '../../src/snapshot/copy.js';
import { unpackTar } from '../../src/layers/unpack.js';
import { makeTar, type TarEntrySpec } from '../helpers/tar-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-copysnap-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function layer(name: string, entries: TarEntrySpec[]): Promise<string> {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  await unpackTar(
    (async function* () {
      yield makeTar(entries);
    })(),
    dir,
    { preserveOwnership: true, overlayXattrPrefix: 'user.overlay.', canMknod: false },
  );
  return dir;
}

let base = '';
let top = '';

test('populate applies layers in order: deletions, opaque directories, owners, hardlinks', async () => {
  base = await layer('base', [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: 'root\n' },
    { name: 'opt/a', content: 'a' },
    { name: 'var/cache/old', content: 'old' },
    { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 },
    { name: 'bin/tool', content: 'tool', mode: 0o755 },
    { name: 'bin/alias', type: 'hardlink', linkname: 'bin/tool' },
  ]);
  top = await layer('top', [
    { name: 'opt/.wh.a', content: '' },
    { name: 'var/cache/', type: 'dir' },
    { name: 'var/cache/.wh..wh..opq', content: '' },
    { name: 'var/cache/new', content: 'new' },
  ]);
  const target = path.join(tmp, 'root');
  mkdirSync(target);
  await populate([base, top], target);
  assert.not.ok(existsSync(path.join(target, 'opt/a')), 'whiteout deleted opt/a');
  assert.equal(readdirSync(path.join(target, 'var/cache')), ['new'], 'opaque directory hides the lower content');
  const home = lstatSync(path.join(target, 'home/app'));
  assert.equal([home.uid, home.gid, home.mode & 0o777], [1000, 1000, 0o750]);
  assert.is(lstatSync(path.join(target, 'bin/tool')).ino, lstatSync(path.join(target, 'bin/alias')).ino);
  assert.is(readFileSync(path.join(target, 'etc/passwd'), 'utf8'), 'root\n');
});

test('diffTrees finds what a step added, changed and deleted, in overlayfs form', async () => {
  const lower = path.join(tmp, 'lower');
  const upper = path.join(tmp, 'upper');
  const out = path.join(tmp, 'out');
  for (const d of [lower, upper, out]) mkdirSync(d);
  await populate([base, top], lower);
  await populate([base, top], upper);
  writeFileSync(path.join(upper, 'etc/passwd'), 'root\napp\n');
  utimesSync(path.join(upper, 'etc/passwd'), 1800000000, 1800000000);
  rmSync(path.join(upper, 'bin/alias'));
  mkdirSync(path.join(upper, 'srv/data'), { recursive: true });
  writeFileSync(path.join(upper, 'srv/data/f'), 'f');
  chmodSync(path.join(upper, 'home/app'), 0o700);
  await diffTrees(lower, upper, out);
  const list = (d: string, rel = ''): string[] =>
    readdirSync(path.join(d, rel))
      .sort()
      .flatMap((n) => {
        const r = rel ? `${rel}/${n}` : n;
        const st = lstatSync(path.join(d, r));
        return st.isDirectory() ? [`${r}/`, ...list(d, r)] : [st.isCharacterDevice() ? `${r} (whiteout)` : r];
      });
  assert.equal(list(out), [
    'bin/',
    'bin/alias (whiteout)',
    'etc/',
    'etc/passwd',
    'home/',
    'home/app/',
    'srv/',
    'srv/data/',
    'srv/data/f',
  ]);
  assert.is(lstatSync(path.join(out, 'home/app')).mode & 0o777, 0o700);
  assert.is(readFileSync(path.join(out, 'etc/passwd'), 'utf8'), 'root\napp\n');
});
test.run();
