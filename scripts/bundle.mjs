#!/usr/bin/env node
// `npm run build`, second step: the CLI as one CommonJS file, dist/tsrun.cjs, which bin/tsrun.js
// loads (the file is the module's function expression, wrapper included: see WRAP). Why: Node
// 20's ES-module loader costs ~1 ms per module on this kind of machine and a `run` touches ~45 of
// them; one CommonJS file with lazily initialised modules (esbuild keeps our
// `await import()` boundaries as lazy initialisers) starts ~30 ms sooner (docs/benchmarks.md).
// The tsc output in dist/src stays what the tests import. npm packages but commander are not in
// the bundle: zod, node-fetch and smol-toml come from dist/vendor.cjs (the fourth step, below),
// the others from node_modules; import.meta.url becomes the bundle's own URL, which
// src/util/project.ts walks up from to find tsrun's files.
//
// Third step: a V8 code cache for the bundle, dist/tsrun.cjs.cache, which bin/tsrun.js hands to
// vm.Script. Without it Node parses all ~750 kB before the first line of main() runs (15–20 ms
// of a ~65 ms `tsrun ps -a` here: docs/benchmarks.md, "Listing commands"). The cache is made
// after running the bundle's top level (which only defines things), so those functions are in
// it compiled. Its first line, `ascii SIZE:MTIME`, names the bundle: the launcher uses the cache
// only for that very file (V8's own check is the source's length alone), and reads that file as
// latin1, which the build made sure is ASCII (asciiOnly below). A script compiled with a cache
// loses its importModuleDynamically callback (Node 20), so the bundle's import() of npm
// packages goes through `__tsrunImport`, a parameter of the wrapper that the launcher (and the
// warm-up below) pass in.
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { build } from 'esbuild';
import ts from 'typescript';

const externals = Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).dependencies);

const file = path.resolve('dist/tsrun.cjs');
const result = await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: file,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // npm packages stay in node_modules, except commander: every command needs it, and bundled it
  // is in the code cache (resolving and compiling it from node_modules was ~8 ms).
  external: externals.filter((p) => p !== 'commander'),
  define: { 'import.meta.url': '__tsrunModuleUrl' },
  banner: {
    js: [
      "const __tsrunModuleUrl = require('node:url').pathToFileURL(__filename).href;",
      'const __tsrunBuiltins = new Map();',
      'const __tsrunNamespace = (m) => Object.create(m, { default: { value: m, enumerable: true } });',
      'const __tsrunBuiltin = (id) => __tsrunBuiltins.get(id) ?? __tsrunBuiltins.set(id, __tsrunNamespace(require(id))).get(id);',
    ].join('\n'),
  },
  plugins: [commanderLazyChildProcess()],
  logLevel: 'warning',
  write: false,
});
// import() of a Node built-in becomes require(): an import() loads Node's ES-module loader (~25
// internal modules) even for `node:os`. And every module's import of a built-in shares one
// namespace object per built-in (`__tsrunBuiltin`): esbuild makes one per importing module, each
// a copy of all the built-in's names as getters (the bundle has 102: 65 of node:path, 14 of
// node:os, 8 of node:fs; ~2 ms of `run`'s start). Those copies were read-only views of the same
// module, so one serves them all; and it copies nothing (`__tsrunNamespace`: its `default` is the
// module, every other name is read through to the module, its prototype; ~0.5 ms for node:fs's
// 104 names). Only default and named imports of built-ins reach it (no `import * as`), and no
// accessor they read depends on `this`.
const text = asciiOnly(
  builtinsOnce(result.outputFiles[0]?.text ?? '')
    .replace(/\bimport\(("node:[a-z_/]+")\)/g, 'Promise.resolve().then(() => __tsrunBuiltin($1))')
    .replace(/\bimport\((?="[^"\n]+"\))/g, '__tsrunImport('),
);
/**
 * The bundle's function wrapper, in the file itself: Node's CommonJS parameters plus the
 * launcher's import(). bin/tsrun.js compiles the file as it is into this one function (with the
 * code cache) and calls it; the file holds the wrapper so that the launcher hands V8 the one
 * copy it makes of the file (native-helpers/src/source.c), not a second, concatenated one.
 * Such a file is no module for require(): only the launcher loads it.
 */
const WRAP = ['(function (exports, require, module, __filename, __dirname, __tsrunImport) { ', '\n});'];
const source = WRAP[0] + text + WRAP[1];
replaceFile(file, source);

/**
 * `file`.cache: the code `script` (compiled from `file`) holds now, after a first line naming the
 * file (`ascii SIZE:MTIME`, which bin/tsrun.js checks before it hands the cache to V8).
 */
function writeCodeCache(file, script) {
  const st = statSync(file);
  replaceFile(
    `${file}.cache`,
    Buffer.concat([Buffer.from(`ascii ${st.size}:${Math.trunc(st.mtimeMs)}\n`), script.createCachedData()]),
  );
}

/**
 * Write by a temp name and rename(2): a running tsrun may hold the cache mapped (and reads the
 * bundle as it starts), so a file is never changed in place while one may be reading it.
 */
function replaceFile(to, data) {
  const tmp = `${to}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, to);
}

/** esbuild's per-module `__toESM(require("node:x"), 1)` becomes the shared `__tsrunBuiltin("node:x")`. */
function builtinsOnce(src) {
  const out = src.replace(/\b__toESM\(require\(("node:[a-z_/]+")\), 1\)/g, '__tsrunBuiltin($1)');
  if (out === src) throw new Error('bundle.mjs: no __toESM(require("node:..."), 1) in esbuild\'s output: look again');
  return out;
}

/**
 * commander's command.js requires node:child_process at its top (which loads net, dgram and
 * more: ~1.3 ms of every command) for one use, spawning an executable subcommand, which tsrun
 * has none of. In the bundle it is required on that first spawn instead; the build fails if
 * commander's line or its uses change.
 */
function commanderLazyChildProcess() {
  const from = "const childProcess = require('node:child_process');";
  const to = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
  return {
    name: 'commander-lazy-child-process',
    setup(b) {
      b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        const uses = src.match(/childProcess\.\w+/g) ?? [];
        if (!src.includes(from) || uses.some((u) => u !== 'childProcess.spawn'))
          throw new Error(`bundle.mjs: commander's use of child_process changed (${args.path}): look again`);
        return { contents: src.replace(from, to), loader: 'js' };
      });
    },
  };
}

/**
 * The bundle in ASCII, so that the launcher can read it as latin1: a file with any other
 * character reads into a two-byte string, and decoding it as UTF-8 was ~4 ms of a listing
 * command (latin1 of an ASCII file: ~1.5 ms). esbuild escapes strings and templates itself but
 * leaves regular expressions (`/(ns|us|µs)/`), comments and tagged templates' raw text as they
 * are; every such character becomes `\uXXXX`, the same character in a regular expression, a
 * string or an identifier and harmless in a comment. In a template literal the escape would
 * change its raw text, so one there fails the build.
 */
function asciiOnly(src) {
  const at = [...src.matchAll(/[^\x00-\x7f]/g)].map((m) => m.index);
  if (at.length === 0) return src;
  const sf = ts.createSourceFile(file, src, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const visit = (node) => {
    if (ts.isTemplateLiteralToken(node) && at.some((i) => i >= node.getStart(sf) && i < node.end))
      throw new Error(`bundle.mjs: a non-ASCII character in a template literal: ${node.getText(sf).slice(0, 80)}`);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return src.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const script = new Script(source, { filename: file });
const m = { exports: {} };
script
  .runInThisContext()
  .call(m.exports, m.exports, createRequire(file), m, file, path.dirname(file), (s) => import(s));
await warmUp(m.exports);
writeCodeCache(file, script);
// The run cache of the previous bundle (bin/tsrun.js writes it at the first `run`): it names
// that bundle and would only be passed over; the next `run` writes one for this bundle.
rmSync(`${file}.run-cache`, { force: true });

/**
 * Before the cache is made, `tsrun ps -a` and `tsrun images` run in this process against a
 * temporary store, so that the functions they run (commander's parsing, the store, the output
 * template) are in the cache compiled: V8 otherwise compiles each from source on first call, in
 * every process (~3 ms of a listing command's CPU, and less for every other verb, which share
 * most of them; docs/benchmarks.md). A code cache holds code, never values: nothing these runs
 * compute is kept. They never enter a rootless namespace (TSRUN_ROOTLESS), print nothing, and
 * their store and run directory are removed. Needs the native helpers (built before this step).
 * A failure only warns: the cache is then made with less in it.
 */
async function warmUp(cli) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bundle-warm-'));
  const saved = {
    exit: process.exit,
    exitCode: process.exitCode,
    write: process.stdout.write,
    stdout: Object.getOwnPropertyDescriptor(process, 'stdout'),
    env: { ...process.env },
  };
  process.env.TSRUN_ROOTLESS = '1';
  delete process.env.TSRUN_CWD;
  // stdout as a plain property: the CLI's printOut then sees a stream already made and writes
  // through it (to the no-op below), not to fd 1 itself (src/cli/stdio.ts).
  Object.defineProperty(process, 'stdout', { value: process.stdout, configurable: true, enumerable: true });
  process.stdout.write = (_chunk, a, b) => {
    const cb = typeof a === 'function' ? a : b;
    if (typeof cb === 'function') process.nextTick(cb);
    return true;
  };
  try {
    for (const argv of [['ps', '-a'], ['images']]) {
      const code = await new Promise((resolve, reject) => {
        process.exit = resolve;
        cli.main(['--root', root, ...argv]).catch(reject);
      });
      if (code !== 0) console.warn(`bundle.mjs: warming the code cache, tsrun ${argv.join(' ')} exited ${code}`);
    }
  } catch (err) {
    console.warn(`bundle.mjs: warming the code cache: ${err}`);
  } finally {
    process.exit = saved.exit;
    process.exitCode = saved.exitCode;
    process.stdout.write = saved.write;
    Object.defineProperty(process, 'stdout', saved.stdout);
    for (const k of Object.keys(process.env)) if (!(k in saved.env)) delete process.env[k];
    Object.assign(process.env, saved.env);
    const { storePaths } = await import(pathToFileURL(path.resolve('dist/src/runtime/paths.js')).href);
    rmSync(storePaths(root, process.getuid?.() ?? 0, process.env).run, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
}

// The layer-unpack worker (src/app/layer-thread.ts) as a file of its own beside the bundle:
// a worker thread starts from a file, and this one holds only what unpacking needs.
await build({
  entryPoints: ['src/app/layer-worker.ts'],
  outfile: path.resolve('dist/layer-worker.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: externals,
  define: { 'import.meta.url': '__tsrunModuleUrl' },
  banner: { js: "const __tsrunModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// Fourth step: dist/vendor.cjs, the npm packages a registry command needs (zod, node-fetch with
// its dependencies, smol-toml) as one file, with a code cache of its own, dist/vendor.cjs.cache
// (first line as the bundle's). From node_modules they cost every pull, push, login and search
// ~100 ms before its first request, Node resolving and compiling ~130 files (zod ~90 ms of it:
// docs/benchmarks.md, "A pull with nothing to fetch"). bin/tsrun.js loads this file the first
// time the bundle asks for one of them (its VENDORED list, checked against this file's exports
// by test/cli/launcher-line.test.ts); where it is not built, node_modules serves as before. Not
// in the bundle itself: the bundle's code cache, which every command deserialises, would grow by
// half (its functions' preparse data). The file is a function of Node's CommonJS parameters,
// wrapper included, in ASCII, as the bundle.
const VENDOR_PACKAGES = ['zod', 'node-fetch', 'smol-toml'];
const vendorFile = path.resolve('dist/vendor.cjs');
const vendored = await build({
  stdin: {
    contents: VENDOR_PACKAGES.map((p) => `export * as ${JSON.stringify(p)} from ${JSON.stringify(p)};`).join('\n'),
    resolveDir: process.cwd(),
    sourcefile: 'vendor-entry.js',
    loader: 'js',
  },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // fetch-blob's stand-in for a Node without node:stream/web: never loaded on Node 20.
  external: ['web-streams-polyfill', 'web-streams-polyfill/*'],
  logLevel: 'warning',
  write: false,
});
const vendorText = asciiOnly(vendored.outputFiles[0]?.text ?? '');
// A script compiled with a code cache has no import() (Node 20): the packages must not need it.
if (/\bimport\(/.test(vendorText.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '')))
  throw new Error('bundle.mjs: an import() in dist/vendor.cjs: look again');
const vendorSource = `(function (exports, require, module, __filename, __dirname) { ${vendorText}\n});`;
replaceFile(vendorFile, vendorSource);
const vendorScript = new Script(vendorSource, { filename: vendorFile });
const vendorModule = { exports: {} };
vendorScript
  .runInThisContext()
  .call(
    vendorModule.exports,
    vendorModule.exports,
    createRequire(vendorFile),
    vendorModule,
    vendorFile,
    path.dirname(vendorFile),
  );
warmVendor(vendorModule.exports);
writeCodeCache(vendorFile, vendorScript);

/** What a pull runs of each package first (a manifest's shape, registries.conf, a request), so that it is in the cache compiled. */
function warmVendor(v) {
  const { z } = v['zod'];
  // As tsrun configures it (src/util/zod.ts): the code its parses run is what gets compiled.
  z.config({ jitless: true });
  const descriptor = z.object({
    mediaType: z.string(),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    size: z.number().int(),
  });
  const manifest = z.object({
    schemaVersion: z.literal(2),
    config: descriptor,
    layers: z.array(descriptor).optional(),
  });
  const d = { mediaType: 'x', digest: `sha256:${'0'.repeat(64)}`, size: 1 };
  manifest.parse({ schemaVersion: 2, config: d, layers: [d] });
  manifest.safeParse({ schemaVersion: 1 });
  v['smol-toml'].parse('[[registry]]\nlocation = "example.com"\ninsecure = true\n');
  new v['node-fetch'].Headers({ accept: 'application/json' });
  new v['node-fetch'].Request('http://127.0.0.1/v2/', { method: 'GET' });
}
