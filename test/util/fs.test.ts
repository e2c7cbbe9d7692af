/**
 * util/fs.ts and util/fs-quick.ts: removeTree removes a small tree at once and a large one
 * through fs.rm, never following a symbolic link (at the top or inside); quickFs settles with
 * the value or the same error as a rejection; writeFileAtomic's volatile (synchronous) path
 * writes whole files with their mode and leaves no temp file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree, writeFileAtomic } from '../../src/util/fs.js';
import { quickFs } from '../../src/util/fs-quick.js';

function scratch(): { dir: string; outside: string; done: () => void } {
  const top = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fs-test-'));
  const outside = path.join(top, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'keep'), 'kept');
  return { dir: path.join(top, 'tree'), outside, done: () => rmSync(top, { recursive: true, force: true }) };
}

/** A tree with nested directories, a mode-000 directory, and links to a directory outside it. */
function makeTree(dir: string, outside: string, files = 3): void {
  mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(path.join(dir, 'a', 'b', `f${i}`), `${i}`);
  symlinkSync(outside, path.join(dir, 'link-dir'));
  symlinkSync(outside, path.join(dir, 'a', 'link-dir'));
  mkdirSync(path.join(dir, 'work', 'work'), { recursive: true });
  chmodSync(path.join(dir, 'work', 'work'), 0);
}

test('removeTree: a small tree goes, links in it are unlinked, not followed', async () => {
  const s = scratch();
  try {
    makeTree(s.dir, s.outside);
    await removeTree(s.dir);
    assert.not.ok(existsSync(s.dir));
    assert.is(readFileSync(path.join(s.outside, 'keep'), 'utf8'), 'kept');
  } finally {
    s.done();
  }
});

test('removeTree: a tree larger than atOnce goes too (through fs.rm), links not followed', async () => {
  const s = scratch();
  try {
    makeTree(s.dir, s.outside, 50);
    await removeTree(s.dir, 10);
    assert.not.ok(existsSync(s.dir));
    assert.equal(readdirSync(s.outside), ['keep']);
  } finally {
    s.done();
  }
});

test('removeTree: a link at the top is unlinked, its target kept; a file goes; absent is no error', async () => {
  const s = scratch();
  try {
    symlinkSync(s.outside, s.dir);
    await removeTree(s.dir);
    assert.not.ok(existsSync(s.dir));
    assert.equal(readdirSync(s.outside), ['keep']);
    writeFileSync(s.dir, 'x');
    await removeTree(s.dir);
    assert.not.ok(existsSync(s.dir));
    await removeTree(s.dir);
  } finally {
    s.done();
  }
});

test('quickFs: a value resolves, an error rejects with its code (as fs.promises)', async () => {
  const s = scratch();
  try {
    assert.is(await quickFs.readFile(path.join(s.outside, 'keep'), 'utf8'), 'kept');
    const err = (await quickFs.readFile(path.join(s.outside, 'absent'), 'utf8').catch((e: unknown) => e)) as
      NodeJS.ErrnoException | undefined;
    assert.is(err?.code, 'ENOENT');
    // The error is a rejection, not a throw: the caller's .catch sees it.
    assert.is(await quickFs.readlink(path.join(s.outside, 'keep')).catch(() => 'caught'), 'caught');
  } finally {
    s.done();
  }
});

test('writeFileAtomic volatile: whole content, its mode, no temp file left; a synced write the same', async () => {
  const s = scratch();
  try {
    const file = path.join(s.outside, 'state.json');
    await writeFileAtomic(file, 'one', 0o600, { volatile: true });
    await writeFileAtomic(file, 'two', 0o600, { volatile: true });
    assert.is(readFileSync(file, 'utf8'), 'two');
    assert.is(statSync(file).mode & 0o777, 0o600);
    await writeFileAtomic(path.join(s.outside, 'synced'), Buffer.from('three'), 0o644);
    assert.is(readFileSync(path.join(s.outside, 'synced'), 'utf8'), 'three');
    assert.equal(readdirSync(s.outside).sort(), ['keep', 'state.json', 'synced']);
    // A missing directory fails as a rejection, and leaves nothing.
    const err = (await writeFileAtomic(path.join(s.outside, 'no', 'x'), 'y', 0o644, { volatile: true }).catch(
      (e: unknown) => e,
    )) as NodeJS.ErrnoException;
    assert.is(err.code, 'ENOENT');
  } finally {
    s.done();
  }
});

test.run();
