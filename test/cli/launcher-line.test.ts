/**
 * bin/tsrun.js's first two lines are read by both /bin/sh and Node: the second must be, to sh, a
 * line whose first command is a shell builtin (no program is forked for it on every command),
 * and, to Node, JavaScript that leaves the file's 'use strict' in force. Both are checked on the
 * file itself: sh's own tracing (`sh -x`) shows the commands it runs, and the file's body is
 * compiled as a function whose `this` tells whether it is strict.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Script } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { GLOBAL_WITH_VALUE } from '../../src/cli/register.js';
import { ensureUser } from '../helpers/users.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const LAUNCHER = path.join(REPO, 'bin', 'tsrun.js');
const lines = readFileSync(LAUNCHER, 'utf8').split('\n');

test('to sh, line 2 starts with the : builtin, not a program', () => {
  assert.is(lines[0], '#!/bin/sh');
  // sh -x prints each simple command it runs; the first is line 2's first command.
  const r = spawnSync('sh', ['-xc', lines[1]?.replace(/exec node .*$/, 'true') ?? ''], {
    env: { PATH: '/usr/bin:/bin' },
  });
  const err = r.stderr.toString();
  assert.match(err.split('\n')[0] ?? '', /^\+ : \/\/$/);
  assert.equal(execFileSync('sh', ['-c', 'command -V :']).toString().includes('builtin'), true);
});

test("to Node, lines 2- are a string statement and a comment, and 'use strict' still holds", () => {
  const body = lines.slice(1).join('\n');
  const strictAt = body.indexOf("'use strict';");
  assert.ok(strictAt > 0);
  // Everything up to and including 'use strict', then a probe of strictness: in sloppy mode a
  // plain function's `this` is the global object.
  const probe = `${body.slice(0, strictAt + "'use strict';".length)}\nreturn (function () { return this; })();`;
  assert.is(new Function(probe)(), undefined);
});

test('the launcher runs as a program and through node', () => {
  assert.match(execFileSync(LAUNCHER, ['--version']).toString(), /^\d+\.\d+\.\d+/);
  assert.match(execFileSync(process.execPath, [LAUNCHER, '--version']).toString(), /^\d+\.\d+\.\d+/);
});

/**
 * A copy of the tree under `tmp` whose bundle's main is replaced by a probe, which prints its
 * process's maps (is the addon loaded?) and then `ran`: the launcher got the file compiled and
 * running (or `body`, a probe of its own). With the build's code cache for the probe, and
 * tsrun_source.node, where asked.
 */
function probeTree(
  tmp: string,
  withNative: boolean,
  withCache: boolean,
  tag = '',
  body = "module.exports = { main: () => process.stdout.write(require('node:fs').readFileSync('/proc/self/maps', 'utf8') + 'ran') }; return; ",
): string {
  const dir = path.join(tmp, `${withNative ? 'n' : 'x'}${withCache ? 'c' : 'x'}${tag}`);
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  mkdirSync(path.join(dir, 'dist'));
  cpSync(LAUNCHER, path.join(dir, 'bin', 'tsrun.js'));
  cpSync(path.join(REPO, 'bin', 'package.json'), path.join(dir, 'bin', 'package.json'));
  const bundle = readFileSync(path.join(REPO, 'dist', 'tsrun.cjs'), 'latin1');
  const probe = bundle.replace(
    /exports, require, module, __filename, __dirname, __tsrunImport\) \{ /,
    (m) => `${m}${body}`,
  );
  writeFileSync(path.join(dir, 'dist', 'tsrun.cjs'), probe, 'latin1');
  if (withCache) {
    const st = statSync(path.join(dir, 'dist', 'tsrun.cjs'));
    const code = new Script(probe, { filename: 'x' }).createCachedData();
    writeFileSync(
      path.join(dir, 'dist', 'tsrun.cjs.cache'),
      Buffer.concat([Buffer.from(`ascii ${st.size}:${Math.trunc(st.mtimeMs)}\n`), code]),
    );
  }
  if (withNative) {
    mkdirSync(path.join(dir, 'native-helpers', 'build', 'Release'), { recursive: true });
    const addon = path.join('native-helpers', 'build', 'Release', 'tsrun_source.node');
    cpSync(path.join(REPO, addon), path.join(dir, addon));
  }
  return path.join(dir, 'bin', 'tsrun.js');
}

test('the bundle: read through tsrun_source.node where it is built, by Node where it is not or no cache fits', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-launcher-'));
  try {
    const copy = (withNative: boolean, withCache: boolean, tag = '') => probeTree(tmp, withNative, withCache, tag);
    const maps = (launcher: string) => execFileSync(process.execPath, [launcher, 'ps']).toString();
    const withAddon = maps(copy(true, true));
    assert.match(withAddon, /tsrun_source\.node/, 'the addon is loaded');
    assert.match(withAddon, /ran$/);
    const read = maps(copy(false, true));
    assert.not.match(read, /tsrun_source\.node/);
    assert.match(read, /ran$/, 'no addon: Node reads the files, and it still runs');
    assert.match(maps(copy(true, false)), /ran$/, 'no cache fits: the bundle is read as UTF-8');
    // A bundle that cannot be read (a directory, with a cache whose first line fits it, so that
    // the mapping and then the latin1 read are tried): 125, and the system's reason, not a guess.
    for (const native of [true, false]) {
      const broken = copy(native, false, '-dir');
      const bundle = path.join(path.dirname(broken), '..', 'dist', 'tsrun.cjs');
      rmSync(bundle);
      mkdirSync(bundle);
      const st = statSync(bundle);
      writeFileSync(`${bundle}.cache`, `ascii ${st.size}:${Math.trunc(st.mtimeMs)}\nnot code`);
      const r = spawnSync(process.execPath, [broken, 'ps']);
      assert.is(r.status, 125);
      assert.match(r.stderr.toString(), /^tsrun: cannot start: EISDIR: illegal operation on a directory, read\n/);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a user who may not write dist/ keeps the run cache in their own cache directory, and uses only a file of theirs', () => {
  // Root's copy of the tree (dist/ is not the user's); the user runs `run` through it (the probe
  // exits 0, so the launcher writes the run cache as a real run would).
  const user = ensureUser('tsrun-launcher', false);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-launcher-user-'));
  try {
    chmodSync(tmp, 0o755);
    const launcher = probeTree(tmp, true, true);
    const dist = path.join(path.dirname(launcher), '..', 'dist');
    const home = path.join(tmp, 'home');
    mkdirSync(home);
    chownSync(home, user.uid, user.gid);
    const run = () =>
      execFileSync(process.execPath, [launcher, 'run'], {
        uid: user.uid,
        gid: user.gid,
        env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      }).toString();
    assert.match(run(), /ran$/);
    assert.not.ok(existsSync(path.join(dist, 'tsrun.cjs.run-cache')), 'nothing in dist/');
    const dir = path.join(home, '.cache', 'tsrun');
    const names = readdirSync(dir);
    assert.is(names.length, 1, names.join(' '));
    assert.match(names[0] ?? '', /^run-cache-[0-9a-f]{8}$/);
    const cache = path.join(dir, names[0] ?? '');
    const made = statSync(cache);
    assert.is(made.uid, user.uid);
    assert.is(made.mode & 0o777, 0o600);
    assert.is(statSync(dir).mode & 0o777, 0o700);
    // The next run uses it: a fitting cache is not written again (same file, same inode).
    assert.match(run(), /ran$/);
    assert.is(statSync(cache).ino, made.ino, 'a fitting cache of the user was written again');
    // One that others may write, or another user's, is not used: written again, as the user's own.
    chmodSync(cache, 0o620);
    assert.match(run(), /ran$/);
    const again = statSync(cache);
    assert.is.not(again.ino, made.ino, 'a group-writable cache was used');
    assert.is(again.mode & 0o777, 0o600);
    chownSync(cache, 0, 0);
    chmodSync(cache, 0o644);
    assert.match(run(), /ran$/);
    const mine = statSync(cache);
    assert.is.not(mine.ino, again.ino, "root's cache was used");
    assert.is(mine.uid, user.uid);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('the registry packages come from dist/vendor.cjs, with a cache made for it; without the file, from node_modules', () => {
  // The probe asks for each package the way the bundle does (require, and import() for
  // node-fetch) and says how many files Node's own loader brought in from node_modules.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-launcher-vendor-'));
  try {
    const probe = [
      'module.exports = { main: async () => {',
      "  const { z } = require('zod');",
      '  const parsed = z.object({ a: z.string() }).safeParse({ a: 1 }).success;',
      "  const toml = require('smol-toml').parse('a = 1').a;",
      "  const fetch = typeof (await __tsrunImport('node-fetch')).default;",
      "  const loaded = Object.keys(require('node:module')._cache).filter((k) => k.includes('node_modules')).length;",
      '  process.stdout.write(JSON.stringify({ parsed, toml, fetch, loaded }));',
      '} }; return; ',
    ].join('\n');
    const launcher = probeTree(tmp, true, true, '', probe);
    const dist = path.join(path.dirname(launcher), '..', 'dist');
    symlinkSync(path.join(REPO, 'node_modules'), path.join(dist, '..', 'node_modules'));
    const run = () => JSON.parse(execFileSync(process.execPath, [launcher, 'pull']).toString());
    const want = { parsed: false, toml: 1, fetch: 'function' };
    // Without dist/vendor.cjs (a tree built before it), node_modules serves as before.
    const before = run();
    assert.equal({ ...before, loaded: undefined }, { ...want, loaded: undefined });
    assert.ok(before.loaded > 50, `node_modules files loaded: ${before.loaded}`);
    for (const f of ['vendor.cjs', 'vendor.cjs.cache']) {
      // The copies keep the build's mtime to the millisecond (the cache's first line names it;
      // mid-millisecond, so no rounding of the copy's time moves it to the next one).
      const from = path.join(REPO, 'dist', f);
      cpSync(from, path.join(dist, f));
      const st = statSync(from);
      utimesSync(path.join(dist, f), st.atimeMs / 1000, (Math.trunc(st.mtimeMs) + 0.5) / 1000);
    }
    assert.equal(run(), { ...want, loaded: 0 });
    // Its cache fits this very file: the build's first line names its size and mtime.
    const st = statSync(path.join(dist, 'vendor.cjs'));
    const first = readFileSync(path.join(dist, 'vendor.cjs.cache')).toString('latin1').split('\n')[0];
    assert.is(first, `ascii ${st.size}:${Math.trunc(st.mtimeMs)}`);
    // A cache for another file is passed over (the source is compiled as it is), never an error.
    writeFileSync(path.join(dist, 'vendor.cjs.cache'), 'ascii 1:1\nnot code');
    assert.equal(run(), { ...want, loaded: 0 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("the launcher's VENDORED list is what dist/vendor.cjs exports, and what scripts/bundle.mjs puts in it", () => {
  const listed = (text: string, name: string) =>
    [...(new RegExp(`const ${name} = \\[([^\\]]*)\\]`).exec(text)?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]);
  const fromLauncher = listed(lines.join('\n'), 'VENDORED').sort();
  const fromBuild = listed(readFileSync(path.join(REPO, 'scripts', 'bundle.mjs'), 'utf8'), 'VENDOR_PACKAGES').sort();
  assert.ok(fromLauncher.length > 0);
  assert.equal(fromBuild, fromLauncher);
  const m = { exports: {} as Record<string, unknown> };
  new Script(readFileSync(path.join(REPO, 'dist', 'vendor.cjs'), 'latin1'))
    .runInThisContext()
    .call(m.exports, m.exports, createRequire(path.join(REPO, 'dist', 'vendor.cjs')), m, 'vendor.cjs', '.');
  assert.equal(Object.keys(m.exports).sort(), fromLauncher);
});

test('the global options that take a value: the same in the launcher, rootless-enter.sh and register.ts', () => {
  // Each skips them to find the verb before the bundle is loaded (a value such as `--root run`
  // must not be read as the verb): a new one added to the CLI must be added to all three.
  const launcher = /const GLOBAL_WITH_VALUE = \[([^\]]*)\]/.exec(lines.join('\n'))?.[1] ?? '';
  const fromLauncher = [...launcher.matchAll(/'(--[a-z-]+)'/g)].map((m) => m[1]);
  const shell = readFileSync(path.join(REPO, 'bin', 'rootless-enter.sh'), 'utf8');
  const skipped = /^\s*((?:--[a-z-]+ \| )*--[a-z-]+)\) tsrun_skip=1 ;;$/m.exec(shell)?.[1] ?? '';
  const fromShell = skipped.split(' | ');
  const want = [...GLOBAL_WITH_VALUE].sort();
  assert.ok(want.length > 0);
  assert.equal([...fromLauncher].sort(), want);
  assert.equal([...fromShell].sort(), want);
});

test.run();
