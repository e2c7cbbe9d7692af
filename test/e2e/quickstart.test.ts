/**
 * The README's quick start (scripts/quickstart.sh) run for real, twice, then removed: so it
 * cannot rot. Everything it touches is moved into this suite's temporary directory (the store,
 * the demo mirror's storage, address and registries.conf), so neither this machine's
 * /etc/containers nor /var/lib/tsrun is touched and no other suite ever sees the mirror; the
 * setup step (packages, npm ci, build, npm link) is skipped because `npm test` has just done it,
 * and `tsrun` is put on PATH as `npm link` would.
 *
 * Asserted: the node:17-alpine stand-in answers on port 3000 and says what it is; the tutorial's
 * todo app is built from examples/getting-started (its Dockerfile the tutorial's) and its page
 * served; a second run is quicker, builds every step from the cache and changes neither the
 * store's images nor the mirror's content; nothing is left running; `--remove` takes it all away.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BIN, tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { TUTORIAL_DOCKERFILE } from './fixtures.js';
import { freePort } from '../helpers/net.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const Quickstart = suite('scripts/quickstart.sh');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-quickstart-'));
const root = path.join(tmp, 'store');
const mirror = path.join(tmp, 'mirror');
const conf = path.join(tmp, 'registries.conf');
let env: Record<string, string> = {};

async function quickstart(...args: string[]): Promise<{ code: number; out: string; ms: number }> {
  const t = Date.now();
  const r = await execa('bash', [path.join(REPO, 'scripts/quickstart.sh'), ...args], {
    reject: false,
    env,
    all: true,
    timeout: 240_000,
    cwd: tmp,
  });
  return { code: r.exitCode ?? -1, out: String(r.all), ms: Date.now() - t };
}

/** The mirror's content: every file's path and sha256 (the registry's log excepted). */
function mirrorContent(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n !== 'registry.log')
        out.push(`${path.relative(mirror, p)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(mirror);
  return out;
}

Quickstart.before(async () => {
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(BIN, path.join(bin, 'tsrun'));
  env = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: process.env.HOME ?? '/root',
    TSRUN_QUICKSTART_SKIP_SETUP: '1',
    TSRUN_ROOT: root,
    TSRUN_DEMO_MIRROR_DIR: mirror,
    TSRUN_DEMO_MIRROR_ADDR: `127.0.0.1:${await freePort()}`,
    TSRUN_DEMO_MIRROR_CONF: conf,
    CONTAINERS_REGISTRIES_CONF: conf,
  };
});

Quickstart.after(async () => {
  await quickstart('--remove');
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

Quickstart("examples/getting-started is the tutorial app, its Dockerfile the tutorial's word for word", () => {
  assert.is(readFileSync(path.join(REPO, 'examples/getting-started/Dockerfile'), 'utf8'), TUTORIAL_DOCKERFILE);
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'examples/getting-started/package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  assert.is(pkg.scripts.start, 'node src/index.js');
});

Quickstart(
  'runs node:17-alpine on port 3000 and the tutorial app; a second run is quick and changes nothing; --remove undoes it',
  async () => {
    const first = await quickstart();
    assert.is(first.code, 0, first.out);
    assert.match(first.out, /node:17-alpine@sha256:[0-9a-f]{64}\s+\(a LOCAL STAND-IN/);
    assert.match(first.out, new RegExp(`hello from node ${process.version.replace(/\./g, '\\.')} in [0-9a-f]{12}\\n`));
    assert.match(first.out, /\$ tsrun build -t getting-started \./);
    assert.match(first.out, /Successfully tagged getting-started:latest/);
    assert.match(first.out, /<h1>Todo App<\/h1>/);
    assert.match(first.out, /"name":"Try tsrun on my own app"/);
    assert.match(first.out, /Remove it all: {2}scripts\/quickstart\.sh --remove/);
    assert.match(first.out, /tsrun run --explain/);

    // The stand-in says what it is.
    const label = await tsrun(['image', 'inspect', '--format', '{{json .Config.Labels}}', 'node:17-alpine'], { root });
    assert.match(label.stdout, /local stand-in for node:17-alpine built on this machine from/);

    const images = () => readFileSync(path.join(root, 'images.json'), 'utf8');
    const before = { images: JSON.parse(images()) as { tags: Record<string, string> }, mirror: mirrorContent() };
    assert.equal(Object.keys(before.images.tags).sort(), [
      'docker.io/library/busybox:latest',
      'docker.io/library/getting-started:latest',
      'docker.io/library/node:17-alpine',
    ]);
    assert.equal(await leftovers(root), [], 'the quick start left containers or network state behind');

    const second = await quickstart();
    assert.is(second.code, 0, second.out);
    assert.ok(second.ms < first.ms, `second run ${second.ms} ms, first ${first.ms} ms`);
    // Every build step after FROM came from the cache (WORKDIR, COPY, RUN, COPY, EXPOSE, CMD).
    assert.is(second.out.split('\n').filter((l) => l === ' ---> Using cache').length, 6, second.out);
    const after = JSON.parse(images()) as { tags: Record<string, string> };
    assert.equal(after.tags, before.images.tags);
    assert.equal(mirrorContent(), before.mirror);
    assert.equal(await leftovers(root), []);

    const removed = await quickstart('--remove');
    assert.is(removed.code, 0, removed.out);
    assert.not.ok(existsSync(conf), 'the registries.conf drop-in is removed');
    assert.not.ok(existsSync(mirror), 'the mirror storage is removed');
    const list = await tsrun(['images', '-q'], { root });
    assert.is(list.stdout.trim(), '');
    const answering = await fetch(`http://${env.TSRUN_DEMO_MIRROR_ADDR}/v2/`).then(
      () => true,
      () => false,
    );
    assert.not.ok(answering, 'the mirror registry is stopped');
  },
);

Quickstart.run();
