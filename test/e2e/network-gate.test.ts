/**
 * End to end: as root the network's CNI plugins run while runc creates the container, and runc
 * holds the container's process back at tsrun's createRuntime hook until the network is up
 * (src/runtime/gate.ts). Checked with the real plugins slowed or failed by a wrapper on CNI_PATH:
 * the first instruction sees its address (default bridge and a user network), and a network that
 * fails after runc started means the process never ran, `run` exits 125 with the plugin's
 * words, and nothing is left.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, networkLeftovers, runDir } from './containers.js';
import { busyboxLayer } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-gate-'));
const root = path.join(tmp, 'root');
const out = path.join(tmp, 'out');
let IMAGE = '';

const G = suite('e2e network gate');

/** A CNI_PATH whose `bridge` first sleeps, then runs the real one (or fails); the rest are the real plugins. */
function pluginDir(name: string, bridge: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  for (const p of readdirSync('/usr/lib/cni')) if (p !== 'bridge') symlinkSync(`/usr/lib/cni/${p}`, path.join(dir, p));
  writeFileSync(path.join(dir, 'bridge'), `#!/bin/sh\n${bridge}\n`);
  chmodSync(path.join(dir, 'bridge'), 0o755);
  return dir;
}

let slow = '';
let failing = '';

G.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/gate', 'latest', {
    layers: [busyboxLayer()],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] } },
  });
  IMAGE = `${reg.host}/e2e/gate`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
  mkdirSync(out);
  // ADD only is slowed: DEL stays quick. The real plugin reads its config from our stdin.
  slow = pluginDir('slow', '[ "$CNI_COMMAND" = ADD ] && sleep 0.6\nexec /usr/lib/cni/bridge');
  failing = pluginDir(
    'failing',
    '[ "$CNI_COMMAND" = ADD ] || exec /usr/lib/cni/bridge\ncat >/dev/null\nsleep 0.6\n' +
      'echo \'{"cniVersion":"1.0.0","code":11,"msg":"gate test: no network today"}\'\nexit 1',
  );
});
G.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await tsrun(['network', 'rm', 'gatenet'], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const ADDRESS = 'ip -4 -o addr show eth0 | grep -o "inet [0-9.]*" || echo NO-ADDRESS';

G('a slow network: the first instruction sees its address; config.json holds the gate hook', async () => {
  const r = await tsrun(['run', '--rm', IMAGE, 'sh', '-c', ADDRESS], { root, env: { CNI_PATH: slow } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^inet 10\.\d+\.\d+\.\d+\n$/);
  // Detached, the runtime's `run --detach` goes through the same gate.
  const d = await tsrun(['run', '-d', '--name', 'gated', IMAGE, 'sh', '-c', `${ADDRESS}; sleep 30`], {
    root,
    env: { CNI_PATH: slow },
  });
  assert.is(d.code, 0, d.stderr);
  const logs = await tsrun(['logs', 'gated'], { root });
  assert.match(logs.stdout, /^inet 10\./);
  const id = d.stdout.trim();
  const spec = JSON.parse(readFileSync(path.join(root, 'containers', id, 'bundle', 'config.json'), 'utf8')) as {
    hooks?: { createRuntime?: { path: string; args: string[] }[] };
  };
  const hook = spec.hooks?.createRuntime?.[0];
  assert.ok(hook && hook.args[1] === '--network-gate' && existsSync(hook.path), JSON.stringify(spec.hooks));
  assert.is((await tsrun(['rm', '-f', 'gated'], { root })).code, 0);
  assert.equal(await leftovers(root), []);
  assert.equal(await networkLeftovers(), []);
});

G('a user network, slowed: the first instruction sees its address', async () => {
  assert.is((await tsrun(['network', 'create', 'gatenet'], { root })).code, 0);
  const r = await tsrun(['run', '--rm', '--network', 'gatenet', IMAGE, 'sh', '-c', ADDRESS], {
    root,
    env: { CNI_PATH: slow },
  });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^inet 10\.\d+\.\d+\.\d+\n$/);
  assert.is((await tsrun(['network', 'rm', 'gatenet'], { root })).code, 0);
  assert.equal(await leftovers(root), []);
});

G('a network that fails while runc runs: the process never ran, exit 125 with the reason, nothing left', async () => {
  for (const rm of [['--rm'], ['--name', 'failed']]) {
    const r = await tsrun(['run', ...rm, '-v', `${out}:/out`, IMAGE, 'touch', '/out/ran'], {
      root,
      env: { CNI_PATH: failing },
    });
    assert.is(r.code, 125, r.stderr);
    assert.match(r.stderr, /no network today/);
    assert.not.ok(existsSync(path.join(out, 'ran')), 'the process ran before its network was up');
    assert.equal(await networkLeftovers(), []);
  }
  // Without --rm the container stays Created, as Docker leaves one that failed to start.
  const ps = await tsrun(['ps', '-a', '--filter', 'name=failed', '--format', '{{.Status}}'], { root });
  assert.match(ps.stdout, /^Created/);
  assert.is((await tsrun(['rm', 'failed'], { root })).code, 0);
  assert.equal(await leftovers(root), []);
});

G.run();
