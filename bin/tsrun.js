#!/bin/sh
':' //; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { TSRUN_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSRUN_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; [ -z "${NODE_OPTIONS+x}" ] || { TSRUN_NODE_OPTIONS=$NODE_OPTIONS; export TSRUN_NODE_OPTIONS; unset NODE_OPTIONS; }; [ -O /proc/1 ] || { tsrun_entry=$(readlink -f -- "$0") && [ -r "${tsrun_entry%/*}/rootless-enter.sh" ] && . "${tsrun_entry%/*}/rootless-enter.sh"; }; exec node -- "$0" "$@"
/*
 * tsrun's entry point. Run as a program (`tsrun` through npm's link, `./bin/tsrun.js`), /bin/sh
 * reads the two lines above and starts Node on this same file; to Node (`node bin/tsrun.js`)
 * they are a hashbang, a string statement (`':'`, a directive that means nothing, so the
 * 'use strict' below is still in the directive prologue) and a comment. To sh, `':' //` is the
 * `:` builtin with one argument: no program is started for it (a `//bin/true` line, as before,
 * made sh fork and exec /bin/true on every command). The shell step exists for start-up time: Node reads
 * NODE_EXTRA_CA_CERTS eagerly (~40 ms), so it is handed on as TSRUN_EXTRA_CA_CERTS and loaded
 * only when a verified TLS connection needs it (src/util/ca.ts). NODE_OPTIONS is moved aside the
 * same way (TSRUN_NODE_OPTIONS), and `--` ends Node's options: Node 20 otherwise reads
 * `--env-file FILE` anywhere in argv (a container's env file, and the NODE_OPTIONS line in it)
 * as its own. Flags and variables meant for containers never reach Node (src/util/caller-env.ts).
 * For an unprivileged user (/proc/1 is not theirs) the shell first tries bin/rootless-enter.sh:
 * when the user's rootless namespace is up and the command surely runs in it, Node is started
 * there directly through nsenter (one Node start instead of two; that file says when).
 *
 * The CLI itself is dist/tsrun.cjs, one file made by `npm run build` (scripts/bundle.mjs), loaded
 * with the V8 code cache the build made beside it (dist/tsrun.cjs.cache) when that cache is for
 * this very file: parsing the bundle is otherwise a quarter of a listing command's time. `run`
 * and `create` use a second cache, dist/tsrun.cjs.run-cache, which the first successful one
 * writes as it exits (when it may write there): it holds what making and starting a container
 * compiled, which the build's cache cannot (making it would need root, a runtime and an image),
 * ~20 ms of a `run --rm` here (docs/benchmarks.md). A cache that is missing, for another build of
 * the bundle (its first line) or rejected by this V8 is written again. It is as trusted as the
 * bundle beside it: whoever may write dist/ may change either. A user who may not write dist/
 * (a CI user of a root-owned install) keeps that cache in their own cache directory instead
 * ($XDG_CACHE_HOME or ~/.cache, tsrun/run-cache-HASH of the bundle's path), used only when the
 * file is theirs and nobody else may write it (a code cache is code: as trusted as their own
 * files, never another user's). Where native-helpers'
 * tsrun_source.node is built, the bundle is copied into V8's heap straight from a mapping of the
 * file and the cache is used in place, mapped (source.c: ~10 ms of every command on this kind of
 * VM, whose page faults are dear); both files are only ever replaced by rename(2). The npm
 * packages registry commands need (zod, node-fetch, smol-toml) come the same way, with a cache of
 * their own, from dist/vendor.cjs the first time the bundle asks for one (see `vendor`). This
 * file is CommonJS (bin/package.json says so): an ES-module entry costs Node ~8 ms of CPU more.
 */
'use strict';
const { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { Script } = require('node:vm');

/** The global options that take a value (as src/cli/register.ts and bin/rootless-enter.sh: test/cli/launcher-line.test.ts). */
const GLOBAL_WITH_VALUE = ['--root', '--config'];

/** Whether argv's verb makes a container (`run`, `create`): those use the run cache. */
function makesContainer(argv) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (GLOBAL_WITH_VALUE.includes(a)) i++;
    else if (!a.startsWith('-')) return a === 'run' || a === 'create';
  }
  return false;
}

/** The first line a code cache made for the file of stat `st` starts with (scripts/bundle.mjs writes it). */
function cacheKey(st) {
  return `ascii ${st.size}:${Math.trunc(st.mtimeMs)}`;
}

/** The code in `cache` if its first line names this build of the bundle (`key`), else undefined. */
function fitting(cache, key) {
  if (cache === undefined) return undefined;
  const nl = cache.indexOf(10);
  return nl > 0 && cache.subarray(0, nl).toString() === key ? cache.subarray(nl + 1) : undefined;
}

/**
 * native-helpers' tsrun_source.node (source.c): the bundle and caches as mappings of the files, or
 * undefined where it is not built (the files are then read into memory, as they were before it).
 */
function mapper() {
  try {
    const m = { exports: {} };
    process.dlopen(m, path.join(__dirname, '..', 'native-helpers', 'build', 'Release', 'tsrun_source.node'));
    return m.exports;
  } catch {
    return undefined;
  }
}

/** The file behind `fd`, mapped (`map(fd)`) or else, where it cannot be mapped, read (whose error is thrown). */
function contents(fd, map, read) {
  let mapped;
  try {
    mapped = map && map(fd);
  } catch {
    /* read instead */
  }
  return mapped ?? read(fd);
}

/**
 * The run cache of a user who may not write dist/: in their own cache directory, one per install
 * (a 32-bit FNV-1a of the bundle's path; no node:crypto at start-up). Undefined without a home.
 */
function userRunCache(file) {
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME && path.join(process.env.HOME, '.cache'));
  if (!base || !path.isAbsolute(base)) return undefined;
  let h = 0x811c9dc5;
  for (let i = 0; i < file.length; i++) h = Math.imul(h ^ file.charCodeAt(i), 0x01000193) >>> 0;
  return path.join(base, 'tsrun', `run-cache-${h.toString(16).padStart(8, '0')}`);
}

/** The cache `file` (mapped where it can be), or undefined; `own`: only a file of this user's that only they may write. */
function readCache(file, map, own = false) {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    if (own) {
      const st = fstatSync(fd);
      if (!st.isFile() || st.uid !== process.getuid() || (st.mode & 0o022) !== 0) return undefined;
    }
    return contents(fd, map && map.mapBytes, (f) => readFileSync(f));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function load() {
  const file = path.join(__dirname, '..', 'dist', 'tsrun.cjs');
  const map = mapper();
  const runCache = makesContainer(process.argv.slice(2)) ? `${file}.run-cache` : undefined;
  const userCache = runCache !== undefined ? userRunCache(file) : undefined;
  // The build's cache is read only when the run cache is missing or does not fit.
  let built;
  const builtCache = () => (built ??= readCache(`${file}.cache`, map));
  const fd = openSync(file, 'r');
  let source;
  let key;
  let ownCode;
  let code;
  try {
    key = cacheKey(fstatSync(fd));
    // dist/'s run cache, else (one that does not fit, or none) the user's own.
    ownCode = runCache !== undefined ? fitting(readCache(runCache, map), key) : undefined;
    if (ownCode === undefined && userCache !== undefined) ownCode = fitting(readCache(userCache, map, true), key);
    code = ownCode ?? fitting(builtCache(), key);
    source = sourceOf(fd, code, map);
  } finally {
    closeSync(fd);
  }
  // The file is the module's function, wrapper included (scripts/bundle.mjs says why).
  const script = new Script(source, { filename: file, cachedData: code });
  if (runCache !== undefined && code !== undefined && (ownCode === undefined || script.cachedDataRejected))
    process.on('exit', (status) => {
      if (status === 0) writeRunCache(runCache, userCache, key, script);
    });
  const mod = { exports: {} };
  const req = require('node:module').createRequire(file);
  const vendored = vendor(path.dirname(file), map);
  script
    .runInThisContext()
    .call(
      mod.exports,
      mod.exports,
      (id) => vendored(id) ?? req(id),
      mod,
      file,
      path.dirname(file),
      (s) => {
        const v = vendored(s);
        return v !== undefined ? Promise.resolve(v) : import(s);
      },
    );
  return mod.exports;
}

/**
 * The source behind `fd`. A fitting cache (`code`) says the file is the build's, in ASCII
 * (scripts/bundle.mjs): it may be copied from its mapping as a latin1 string, or read as one
 * (~3 ms sooner than UTF-8). The size and mtime the cache was checked against are this fd's, and
 * so is what is read. The source must be a string on V8's heap (source.c says why): Node makes an
 * external one of a latin1 read over ~1 MB, so that one is joined into a heap copy (V8 flattens
 * the concatenation when it compiles it).
 */
function sourceOf(fd, code, map) {
  if (code === undefined) return readFileSync(fd, 'utf8');
  return contents(fd, map && map.readLatin1, (f) => {
    const s = readFileSync(f, 'latin1');
    return s.slice(0, -1) + s.slice(-1);
  });
}

/** The npm packages in dist/vendor.cjs, by the names the bundle asks for (as scripts/bundle.mjs: test/cli/launcher-line.test.ts). */
const VENDORED = ['zod', 'node-fetch', 'smol-toml'];

/**
 * `id`'s exports from dist/vendor.cjs, loaded (with its code cache, dist/vendor.cjs.cache, where
 * it fits) the first time the bundle asks for one of VENDORED: the packages a registry command
 * needs, which from node_modules cost it ~100 ms of resolving and compiling (scripts/bundle.mjs).
 * Undefined for any other id, and where the file is not built: node_modules serves then.
 */
function vendor(dir, map) {
  let loaded;
  return (id) => {
    if (!VENDORED.includes(id)) return undefined;
    loaded ??= loadVendor(path.join(dir, 'vendor.cjs'), map) ?? null;
    return loaded === null ? undefined : loaded[id];
  };
}

function loadVendor(file, map) {
  let fd;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  let code;
  let source;
  try {
    code = fitting(readCache(`${file}.cache`, map), cacheKey(fstatSync(fd)));
    source = sourceOf(fd, code, map);
  } finally {
    closeSync(fd);
  }
  const mod = { exports: {} };
  new Script(source, { filename: file, cachedData: code })
    .runInThisContext()
    .call(mod.exports, mod.exports, require('node:module').createRequire(file), mod, file, path.dirname(file));
  return mod.exports;
}

/**
 * Write the run cache beside the bundle, else (a dist/ this user may not write) in the user's own
 * cache directory (0700, the file 0600); each by a temp name and rename(2). Failing both, nothing.
 */
function writeRunCache(file, userFile, key, script) {
  let data;
  try {
    data = Buffer.concat([Buffer.from(`${key}\n`), script.createCachedData()]);
  } catch {
    return;
  }
  if (replaceWith(file, data, 0o644)) return;
  if (userFile === undefined) return;
  try {
    mkdirSync(path.dirname(userFile), { recursive: true, mode: 0o700 });
  } catch {
    return;
  }
  replaceWith(userFile, data, 0o600);
}

/** `data` as `file`, by a temp name and rename(2); false where this user may not (nothing is left). */
function replaceWith(file, data, mode) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, file);
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* nothing was made */
    }
    return false;
  }
}

let cli;
try {
  cli = load();
} catch (err) {
  process.stderr.write(`tsrun: cannot start: ${err && err.message ? err.message : err}\n` +
    'hint: run `npm ci && npm run build` in the tsrun checkout\n');
  process.exit(125);
}
cli.main(process.argv.slice(2));
