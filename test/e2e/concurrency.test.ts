/**
 * End to end, under load (issue 19): 32 parallel `run --rm` on the bridge, `--network none` and
 * with `-p`; `rmi` racing `run` of the same image; one Dockerfile built twice at once; two stores
 * (`--root`) sharing the host's network state. Each ends with nothing leaked.
 */
import { suite } from 'uvu';
import { execa } from 'execa';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { sleep } from '../../src/util/concurrency.js';

const C = suite('e2e concurrency');
let reg: TestRegistry;
let IMAGE = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-conc-'));
const root = path.join(tmp, 'storeA');
const rootB = path.join(tmp, 'storeB');
const cli = (args: string[], r = root) => tsrun(args, { root: r });

async function get(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    return await res.text();
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

C.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', '1');
  IMAGE = `${reg.host}/e2e/busybox:1`;
  for (const r of [root, rootB]) assert.is((await cli(['pull', '-q', IMAGE], r)).code, 0);
});
C.after(async () => {
  await reg?.stop();
  for (const r of [root, rootB]) {
    // After a failed test: its containers first.
    for (const id of (await cli(['ps', '-aq'], r)).stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id], r);
    await cli(['system', 'prune', '-a', '-f'], r);
    rmSync(runDir(r), { recursive: true, force: true });
  }
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

C(
  '32 parallel run --rm (bridge, none, -p): right exit codes and outputs, distinct addresses, nothing leaked',
  async () => {
    const kinds = ['bridge', 'none', 'publish'] as const;
    const runs = Array.from({ length: 32 }, (_, i) => {
      const kind = kinds[i % 3]!;
      const flags = kind === 'none' ? ['--network', 'none'] : kind === 'publish' ? ['-p', `${19100 + i}:80`] : [];
      const script = `echo out-${i} $(ls /sys/class/net | tr '\\n' ' ')$(ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}'); exit ${i % 7}`;
      return cli(['run', '--rm', ...flags, IMAGE, 'sh', '-c', script]).then((r) => ({ i, kind, r }));
    });
    const t0 = Date.now();
    const results = await Promise.all(runs);
    const seconds = (Date.now() - t0) / 1000;
    const addresses = new Set<string>();
    for (const { i, kind, r } of results) {
      assert.is(r.code, i % 7, `run ${i} (${kind}): ${r.stderr}`);
      const words = r.stdout.trim().split(/\s+/);
      assert.is(words[0], `out-${i}`, r.stdout);
      if (kind === 'none') assert.equal(words.slice(1), ['lo'], r.stdout);
      else {
        assert.equal(words.slice(1, 3), ['eth0', 'lo'], r.stdout);
        const addr = words[3] ?? '';
        assert.match(addr, /^\d+\.\d+\.\d+\.\d+\/\d+$/);
        assert.not.ok(addresses.has(addr), `address ${addr} given twice`);
        addresses.add(addr);
      }
    }
    assert.equal(await leftovers(root), []);
    console.log(`  32 parallel run --rm: ${seconds.toFixed(1)} s`);
  },
);

C(
  'rmi racing run of the same image: the run works or fails cleanly, rmi refuses or wins, no container lacks its layers',
  async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 8; round++) {
      assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
      const detached = round % 2 === 1;
      const runArgs = detached
        ? ['run', '-d', '--name', `racer${round}`, IMAGE, 'sleep', '60']
        : ['run', '--rm', IMAGE, 'echo', 'ran'];
      // Spread the rmi over the run's life: before, during and after its creation.
      const [run, rmi] = await Promise.all([
        cli(runArgs),
        new Promise((res) => setTimeout(res, round * 40)).then(() => cli(['rmi', IMAGE])),
      ]);
      outcomes.push(`run ${run.code} rmi ${rmi.code}`);
      if (run.code === 0) {
        if (!detached) assert.is(run.stdout, 'ran\n');
      } else {
        assert.is(run.code, 125, run.stderr);
        assert.match(run.stderr, /removed|No such image|Unable to find image/i, run.stderr);
      }
      if (rmi.code !== 0) assert.match(rmi.stderr, /conflict/, rmi.stderr);
      // Every container there is has its layers: it starts, and exec works in it.
      const ps = await cli(['ps', '-aq', '--no-trunc']);
      for (const id of ps.stdout.split('\n').filter(Boolean)) {
        const layers = JSON.parse(
          (await cli(['inspect', '-f', '{{json .GraphDriver.Data.LowerDir}}', id])).stdout,
        ) as string;
        for (const dir of layers.split(':')) assert.ok(existsSync(dir), `container ${id} lost its layer ${dir}`);
        assert.is((await cli(['exec', id, 'true'])).code, 0);
        assert.is((await cli(['rm', '-f', id])).code, 0);
      }
    }
    // The narrow window, opened wide: the store held exclusively (as a garbage collection holds
    // it) while `run` resolves the image and waits, and `rmi` untags it and waits to collect.
    for (let round = 0; round < 4; round++) {
      assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
      const holder = execa('flock', ['-o', '-x', path.join(root, 'locks', 'store.lock'), 'sleep', '30'], {
        stdio: 'ignore',
        detached: false,
      });
      await sleep(300);
      const run = cli(['run', '--rm', IMAGE, 'echo', 'ran']);
      await sleep(1500);
      const rmi = cli(['rmi', IMAGE]);
      await eventually('rmi to untag', async () => !(await cli(['images', '-q', IMAGE])).stdout.trim());
      holder.kill('SIGKILL');
      await holder.catch(() => {});
      const [r, m] = await Promise.all([run, rmi]);
      outcomes.push(`held: run ${r.code} rmi ${m.code}`);
      assert.is(m.code, 0, m.stderr);
      if (r.code === 0) assert.is(r.stdout, 'ran\n');
      else {
        assert.is(r.code, 125, r.stderr);
        assert.match(r.stderr, /the image was removed meanwhile/);
      }
      assert.equal(await leftovers(root), []);
    }
    console.log(`  rmi racing run: ${outcomes.join(', ')}`);
    assert.is((await cli(['system', 'prune', '-f'])).code, 0);
    assert.equal(await leftovers(root), []);
  },
);

C('the same Dockerfile built twice at once: both succeed, one image, the cache serves a third build', async () => {
  const ctx = path.join(tmp, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(path.join(ctx, 'data.txt'), 'payload\n');
  writeFileSync(
    path.join(ctx, 'Dockerfile'),
    `FROM ${IMAGE}\nCOPY data.txt /data.txt\nRUN cat /data.txt > /copy.txt && echo built >> /copy.txt\nCMD ["cat", "/copy.txt"]\n`,
  );
  const build = () => cli(['build', '--progress', 'plain', '-t', 'twice', ctx]);
  const [a, b] = await Promise.all([build(), build()]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  const ids = (await cli(['images', '-q', '--no-trunc', 'twice'])).stdout.trim().split('\n');
  assert.is(ids.length, 1, ids.join(' '));
  const third = await build();
  assert.is(third.code, 0, third.stderr);
  assert.is((third.stdout.match(/Using cache/g) ?? []).length, 3, third.stdout);
  assert.is((await cli(['images', '-q', '--no-trunc', 'twice'])).stdout.trim(), ids[0]);
  const run = await cli(['run', '--rm', 'twice']);
  assert.is(run.stdout, 'payload\nbuilt\n', run.stderr);
  assert.is((await cli(['rmi', 'twice'])).code, 0);
  assert.equal(await leftovers(root), []);
});

C(
  'two stores on one host share the network: distinct addresses, ports of both served, removing one leaves the other working',
  async () => {
    const www = (r: string) => path.join(tmp, `www-${path.basename(r)}`);
    for (const r of [root, rootB]) {
      mkdirSync(www(r), { recursive: true });
      writeFileSync(path.join(www(r), 'index.html'), `served by ${path.basename(r)}\n`);
    }
    const start = (r: string, i: number, port: number) =>
      cli(
        [
          'run',
          '-d',
          '--name',
          `web${i}`,
          '-p',
          `${port}:80`,
          '-v',
          `${www(r)}:/www:ro`,
          IMAGE,
          'httpd',
          '-f',
          '-p',
          '80',
          '-h',
          '/www',
        ],
        r,
      );
    const made = await Promise.all([
      ...[0, 1, 2, 3].map((i) => start(root, i, 19200 + i)),
      ...[0, 1, 2, 3].map((i) => start(rootB, i, 19300 + i)),
    ]);
    for (const m of made) assert.is(m.code, 0, m.stderr);
    const ips = new Set<string>();
    for (const r of [root, rootB])
      for (const i of [0, 1, 2, 3]) {
        const ip = (await cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', `web${i}`], r)).stdout.trim();
        assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
        assert.not.ok(ips.has(ip), `address ${ip} given twice`);
        ips.add(ip);
      }
    for (const i of [0, 1, 2, 3]) {
      await eventually(`port ${19200 + i}`, async () => (await get(19200 + i)) === 'served by storeA\n');
      await eventually(`port ${19300 + i}`, async () => (await get(19300 + i)) === 'served by storeB\n');
    }
    // Store A's containers go (rm -f in parallel, then a prune of A): B's keep their network.
    const removed = await Promise.all([0, 1, 2, 3].map((i) => cli(['rm', '-f', `web${i}`])));
    for (const r of removed) assert.is(r.code, 0, r.stderr);
    assert.is((await cli(['system', 'prune', '-f'])).code, 0);
    for (const i of [0, 1, 2, 3]) {
      assert.is(await get(19300 + i), 'served by storeB\n');
      assert.match(await get(19200 + i), /^error/);
    }
    const ping = await cli(['exec', 'web0', 'wget', '-q', '-O-', `http://${[...ips][5]}/`], rootB);
    assert.is(ping.stdout, 'served by storeB\n', ping.stderr);
    // Store A's own state is gone (the host's network state still has B's four, checked below).
    assert.equal(
      (await leftovers(root)).filter((l) => /^(record|name|mount|state|runc) /.test(l)),
      [],
    );
    const removedB = await Promise.all([0, 1, 2, 3].map((i) => cli(['rm', '-f', `web${i}`], rootB)));
    for (const r of removedB) assert.is(r.code, 0, r.stderr);
    assert.equal(await leftovers(rootB), []);
    assert.is(readFileSync('/run/tsrun/net/tsrun.conflist', 'utf8').includes('tsrun0'), true);
  },
);

C.run();
