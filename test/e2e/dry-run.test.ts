/**
 * End to end: `tsrun run --dry-run` makes nothing but its directory; the replay.sh it writes,
 * run with sh as root, gives the same output and exit status as `tsrun run --rm` with the same
 * arguments (--network none), and with -p the published port answers while replay runs; undo.sh
 * leaves nothing behind (tsrun's own leftover checks, and the tagged rules, netns and veth).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { busyboxLayer } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { freePort, httpGet } from '../helpers/net.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-dryrun-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const D = suite('e2e run --dry-run');

D.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/dry', 'latest', {
    layers: [
      busyboxLayer(),
      layerBlob(
        makeTar([
          { name: 'www/', type: 'dir' },
          { name: 'www/index.html', content: 'replayed by hand\n' },
        ]),
      ),
    ],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'], WorkingDir: '/srv/app' } },
  });
  IMAGE = `${reg.host}/e2e/dry`;
  assert.is((await tsrun(['pull', '-q', IMAGE], { root })).code, 0);
});
D.after(async () => {
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

/** The CLI from `cwd`, as a person types it there. */
const cliIn = async (cwd: string, args: string[]) => {
  const r = await execa(BIN, ['--root', root, ...args], { cwd, reject: false, stripFinalNewline: false });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
};

/**
 * The CLI while a watcher polls for what a container is made of (its record and name under the
 * store, a mount under it, a `ps -a` line): `run --dry-run` may make none of them at any moment.
 */
async function watched(cwd: string, args: string[]) {
  const seen = new Set<string>();
  let done = false;
  const run = cliIn(cwd, args).finally(() => {
    done = true;
  });
  let polls = 0;
  while (!done) {
    for (const l of await leftovers(root)) seen.add(l);
    const ps = (await tsrun(['ps', '-aq'], { root })).stdout.trim();
    if (ps) seen.add(`ps -a: ${ps}`);
    polls++;
  }
  return { ...(await run), seen: [...seen], polls };
}

/** What replay.sh may leave on the host until undo.sh: its rules, netns, veth, mount. */
async function dryRunLeftovers(dir: string): Promise<string[]> {
  const out: string[] = [];
  const save = String((await execa('iptables-save', [], { reject: false })).stdout);
  for (const l of save.split('\n')) if (l.includes('tsrun-dry-run')) out.push(`rule ${l}`);
  for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
    if (n.startsWith('dryrun-')) out.push(`netns ${n}`);
  const links = String((await execa('ip', ['-o', 'link'], { reject: false })).stdout);
  for (const l of links.split('\n')) if (/^\d+: dr[0-9a-f]{10}[@:]/.test(l)) out.push(`veth ${l.split(':')[1]}`);
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir}/`)) out.push('mount');
  for (const d of ['upper', 'work', 'runc']) if (existsSync(path.join(dir, d))) out.push(`dir ${d}`);
  return out;
}

const SCRIPT = 'echo out; echo err >&2; pwd; ls /; id; cat /www/index.html; exit 3';

D('--network none: nothing is made; replay.sh prints and exits as run --rm does; undo.sh leaves nothing', async () => {
  const args = ['--network', 'none', IMAGE, 'sh', '-c', SCRIPT];
  const run = await cliIn(tmp, ['run', '--rm', ...args]);
  assert.is(run.code, 3, run.stderr);
  assert.match(run.stdout, /^out\n\/srv\/app\n/);

  const dry = await watched(tmp, ['run', '--dry-run', '--out', 'lesson', ...args]);
  assert.is(dry.code, 0, dry.stderr);
  assert.ok(dry.polls > 0);
  assert.equal(dry.seen, [], 'no record, name, mount or ps -a entry at any moment of the dry run');
  const dir = path.join(tmp, 'lesson');
  assert.is(dry.stdout, `${dir}\n`);
  assert.is((await tsrun(['ps', '-aq'], { root })).stdout, '', 'no container');
  assert.equal(await leftovers(root), [], 'no record, mount, state or network');
  const spec = JSON.parse(readFileSync(path.join(dir, 'bundle', 'config.json'), 'utf8')) as {
    root: { path: string };
    process: { args: string[]; cwd: string };
  };
  assert.is(spec.root.path, 'rootfs');
  assert.equal(spec.process.args, ['sh', '-c', SCRIPT]);
  assert.is(spec.process.cwd, '/srv/app');
  const replayText = readFileSync(path.join(dir, 'replay.sh'), 'utf8');
  assert.match(replayText, /mount -t overlay overlay -o 'lowerdir=[0-9a-f]{64}\/diff:[0-9a-f]{64}\/diff,upperdir=/);
  assert.ok(!/\bip netns\b/.test(replayText), 'no network steps for --network none');

  // A person in that directory: sh ./lesson/replay.sh, then sh ./lesson/undo.sh.
  const replay = await execa('sh', ['./lesson/replay.sh'], { cwd: tmp, reject: false, stripFinalNewline: false });
  assert.is(replay.exitCode, 3, String(replay.stderr));
  assert.is(String(replay.stdout), run.stdout);
  assert.match(String(replay.stderr), /^err$/m);
  assert.match(String(replay.stderr), /replay: 4\. runc runs the container/);
  const undo = await execa('sh', ['./lesson/undo.sh'], { cwd: tmp, reject: false });
  assert.is(undo.exitCode, 0, String(undo.stderr));
  assert.equal(await dryRunLeftovers(dir), []);
  assert.is((await execa('sh', ['./lesson/undo.sh'], { cwd: tmp, reject: false })).exitCode, 0, 'undo twice is fine');
  assert.equal(await leftovers(root), []);
});

D('-p: the published port answers while replay.sh runs; undo.sh removes the rules, netns and veth', async () => {
  const port = await freePort();
  // With the network set up by hand, a command's output and status are still run --rm's.
  const args = ['-p', `${port}:80`, IMAGE, 'sh', '-c', SCRIPT];
  const run = await cliIn(tmp, ['run', '--rm', ...args]);
  assert.is(run.code, 3, run.stderr);
  const once = await cliIn(tmp, ['run', '--dry-run', ...args]);
  assert.is(once.code, 0, once.stderr);
  const onceDir = once.stdout.trim();
  assert.is(path.dirname(onceDir), tmp, 'the default directory is in the current one');
  assert.match(path.basename(onceDir), /^tsrun-dry-run-[0-9a-f]{12}$/);
  const replayed = await execa('sh', [path.join(onceDir, 'replay.sh')], { reject: false, stripFinalNewline: false });
  assert.is(replayed.exitCode, 3, String(replayed.stderr));
  assert.is(String(replayed.stdout), run.stdout);
  assert.is((await execa('sh', [path.join(onceDir, 'undo.sh')], { reject: false })).exitCode, 0);
  assert.equal(await dryRunLeftovers(onceDir), []);

  const dry = await watched(tmp, [
    'run',
    '--dry-run',
    '-p',
    `${port}:80`,
    IMAGE,
    'httpd',
    '-f',
    '-p',
    '80',
    '-h',
    '/www',
  ]);
  assert.is(dry.code, 0, dry.stderr);
  assert.equal(dry.seen, [], 'with -p too, nothing of a container at any moment');
  const dir = dry.stdout.trim();
  assert.equal(await leftovers(root), [], 'dry-run itself makes no rule, netns or mount');
  const replayText = readFileSync(path.join(dir, 'replay.sh'), 'utf8');
  assert.match(replayText, new RegExp(`--dport ${port} -m comment --comment 'tsrun-dry-run [0-9a-f]{12}' -j DNAT`));

  const replay = execa('sh', [path.join(dir, 'replay.sh')], { reject: false });
  try {
    let body = '';
    await eventually(
      'the published port answers',
      async () => {
        body = await httpGet('127.0.0.1', port, '/index.html').catch(() => '');
        return body !== '';
      },
      20_000,
    );
    assert.is(body, 'replayed by hand\n');
    assert.ok((await dryRunLeftovers(dir)).some((l) => l.startsWith('rule ') && l.includes('DNAT')));
  } finally {
    const undo = await execa('sh', [path.join(dir, 'undo.sh')], { reject: false });
    assert.is(undo.exitCode, 0, String(undo.stderr));
    await replay;
  }
  assert.equal(await dryRunLeftovers(dir), []);
  assert.equal(await leftovers(root), []);
});

D.run();
