/**
 * End to end: `--explain` tells a real run stage by stage, on stderr, with the real values — the
 * digest that was pulled, lowerdirs that are the store's layer directories, a DNAT rule that is
 * really in `iptables -t nat -S` while the container runs — and leaves the container's own output
 * unchanged on its own streams. `--explain=json` lines follow docs/explain.schema.json (ajv);
 * no `-e`/--env-file value appears anywhere; brief is the same twice (ids, pids, addresses
 * masked); every text line fits 100 columns; pull, exec, stop, rm and build explain as well.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import type { PushedImage } from '../helpers/push.js';
import { freePort } from '../helpers/net.js';
import { BIN, tsrun } from './cli.js';
import { pushBusybox } from './fixtures.js';
import { leftovers, runDir } from './containers.js';

const RUN_SECRET = 'explain-secret-3b7d0a';
const FILE_SECRET = 'explain-file-secret-91c2';
const EXEC_SECRET = 'explain-exec-secret-77e4';
const SECRETS = [RUN_SECRET, FILE_SECRET, EXEC_SECRET];

// ajv is CommonJS: its class is the default export's default.
const Ajv = AjvModule.default;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-explain-'));
const root = path.join(tmp, 'root');
const envFile = path.join(tmp, 'env');
let reg: TestRegistry;
let pushed: PushedImage;
let IMAGE = '';

const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/explain.schema.json');

const E = suite('e2e --explain');
E.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  pushed = await pushBusybox(reg, 'e2e/explain', '1', {
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['sh', '-c', 'echo out-line; echo err-line >&2; sleep 3'],
  });
  IMAGE = `${reg.host}/e2e/explain:1`;
  writeFileSync(envFile, `FILE_VAR=${FILE_SECRET}\n`);
});
E.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  // A CLI the first test killed on a failure may still be writing its store for a moment.
  await new Promise((r) => setTimeout(r, 1000));
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const isExplain = (l: string) => /^\[\d+\/\d+\] /.test(l) || /^ {6}/.test(l) || l.startsWith('{"schema"');

/** The lines that are not the explanation's (a command cut with `\` goes on at column 0). */
const notExplain = (err: string) =>
  err.split('\n').filter((l, i, all) => l !== '' && !isExplain(l) && !(all[i - 1] ?? '').endsWith('\\'));

function checkText(what: string, text: string): void {
  for (const s of SECRETS) assert.not.ok(text.includes(s), `${what} printed a secret:\n${text}`);
  for (const l of text.split('\n')) assert.ok(l.length <= 100, `${what}: a line of ${l.length} columns:\n${l}`);
}

/** The stage headers told, in order: `[n/N] Title`. */
const headers = (err: string) =>
  err
    .split('\n')
    .filter((l) => /^\[\d+\/\d+\] /.test(l))
    .map((l) => /^(\[\d+\/\d+\] [A-Z][a-z ]*?)(?: \(\d+ ms\))? {2}/.exec(l)?.[1] ?? l);

/** A stage's block: its header line and the indented lines under it. */
function block(err: string, title: string): string {
  const lines = err.split('\n');
  const i = lines.findIndex((l) => new RegExp(`^\\[\\d+/\\d+\\] ${title}( \\(\\d+ ms\\))?( {2}|$)`).test(l));
  assert.ok(i >= 0, `no stage ${title} in:\n${err}`);
  const out = [lines[i] as string];
  for (const l of lines.slice(i + 1)) {
    // A command cut with `\` goes on at column 0.
    if (!l.startsWith(' ') && !(out.at(-1) ?? '').endsWith('\\')) break;
    out.push(l);
  }
  return unwrap(out.join('\n'));
}

/** A block as one logical line per item: wrapped commands and cut paths joined again. */
const unwrap = (s: string) =>
  s
    .replace(/ \\\n {17}/g, ' ')
    .replace(/\\\n/g, '')
    .replace(/\/\n {15}(?=\S)/g, '/');

/** Mask what differs between two identical runs: ids, digests of new layers, pids, addresses, veths. */
const mask = (s: string) =>
  s
    .replace(/[0-9a-f]{12,64}/g, '<ID>')
    .replace(/\b\d{1,3}(\.\d{1,3}){3}\b/g, '<IP>')
    .replace(/\bveth[0-9a-z]+/g, '<VETH>')
    .replace(/\b(pid|monitor)(\s+)\d+/g, '$1$2<PID>')
    .replace(/\/proc\/\d+/g, '/proc/<PID>')
    .replace(/container [a-z]+_[a-z]+\b/g, 'container <NAME>')
    .replace(/\bmac [0-9a-f:]+/g, 'mac <MAC>');

E('run --explain --rm -p: every stage with its real values; the output is the container’s', async () => {
  const port = await freePort();
  const child = execa(
    BIN,
    [
      '--root',
      root,
      'run',
      '--explain',
      '--rm',
      '-e',
      `RUN_VAR=${RUN_SECRET}`,
      '--env-file',
      envFile,
      '-p',
      `${port}:80`,
      IMAGE,
    ],
    { reject: false, stdin: 'ignore', stripFinalNewline: false, timeout: 120_000 },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await runChecks();
  } finally {
    child.kill('SIGKILL');
  }
  async function runChecks() {
    // While the container sleeps: the DNAT rule the Network stage names is in the nat table.
    const deadline = Date.now() + 60_000;
    while (!err.includes('[6/8] Start') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(err.includes('[6/8] Start'), err);
    // The DNAT rule the Network stage shows, read back from iptables, is in the nat table as shown.
    const net = block(err, 'Network');
    const rule = new RegExp(
      `^ {6}rule nat +(-A \\S+ .*--dport ${port} .*-j DNAT --to-destination (\\S+):80)$`,
      'm',
    ).exec(net);
    assert.ok(rule, net);
    const nat = (await execa('iptables', ['-t', 'nat', '-S'])).stdout;
    assert.ok(nat.split('\n').includes(rule[1] as string), `${rule[1]} is not in iptables -t nat -S:\n${nat}`);
    assert.ok(net.includes(`--dport ${port} -j DNAT --to-destination ${rule[2]}:80`), net);
    const r = await child;
    assert.is(r.exitCode, 0, err);
    // The container's own output: unchanged, each on its own stream.
    assert.is(String(r.stdout), 'out-line\n');
    assert.equal(notExplain(err), [`Unable to find image '${IMAGE}' locally`, 'err-line']);
    checkText('run --explain', err);
    assert.equal(headers(err), [
      '[1/8] Image',
      '[2/8] Root filesystem',
      '[3/8] Spec',
      '[4/8] Network',
      '[5/8] Create',
      '[6/8] Start',
      '[7/8] Exit',
      '[8/8] Cleanup',
    ]);
    // The digest that was pulled, the layer the registry has.
    const image = block(err, 'Image');
    assert.ok(image.includes(pushed.manifestDigest), image);
    assert.ok(image.includes(pushed.configDigest), image);
    // The lowerdirs are the store's layer directories, as mounted.
    const rootfs = block(err, 'Root filesystem');
    const lowers = [...rootfs.matchAll(/^ {6}lower \d+ +(\S+)$/gm)].map((m) => m[1] as string);
    assert.is(lowers.length, 1, rootfs);
    for (const d of lowers) {
      assert.ok(d.startsWith(path.join(root, 'layers') + '/'), d);
      assert.ok(statSync(d).isDirectory(), d);
      assert.ok(existsSync(path.join(d, 'bin', 'busybox')), `${d} holds the image's files`);
      assert.ok(rootfs.includes(`L1=${d}`), rootfs);
    }
    assert.match(rootfs, /mount -t overlay overlay -o "lowerdir=\$L1,upperdir=\$U,workdir=\$W" "\$T"/);
    assert.match(rootfs, /findmnt -T \//);
    const spec = block(err, 'Spec');
    // Where each part came from: the image's CMD, -e, --env-file, the default.
    assert.match(spec, /RUN_VAR\s+\(from\s+-e\)/);
    assert.match(spec, /FILE_VAR\s+\(from\s+--env-file\)/);
    assert.match(spec, /PATH\s+\(from\s+image\s+ENV\)/);
    assert.match(spec, /\(from\s+image\s+CMD\)/);
    assert.match(spec, /jq '\.process\.args,\.linux\.namespaces' \/\S+\/config\.json/);
    assert.match(block(err, 'Network'), /ip netns exec tsrun-\S+ ip addr/);
    assert.match(block(err, 'Network'), /iptables -t nat -S TSRUN-HOSTPORT-DNAT/);
    assert.match(block(err, 'Create'), /runc --root \S+ create --bundle \S+ [0-9a-f]{64}/);
    assert.match(block(err, 'Start'), /ls -l \/proc\/\d+\/ns/);
    assert.match(block(err, 'Exit'), /exited with status 0/);
    assert.match(block(err, 'Cleanup'), /container removed/);
  }
  assert.equal(await leftovers(root), []);
});

E('--explain=json: each line an event of the schema, in stage order, no secret', async () => {
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  const r = await tsrun(
    ['run', '--explain=json', '--rm', '-e', `RUN_VAR=${RUN_SECRET}`, '--env-file', envFile, IMAGE, 'echo', 'hi'],
    { root },
  );
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'hi\n');
  for (const s of SECRETS) assert.not.ok(r.stderr.includes(s));
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.ok(lines.length > 10, r.stderr);
  const stages: string[] = [];
  for (const l of lines) {
    const o = JSON.parse(l) as { stage: string; n: number; N: number; event: { type: string } };
    assert.ok(validate(o), `${ajv.errorsText(validate.errors)}\n${l}`);
    assert.is(o.N, 8);
    if (stages.at(-1) !== o.stage) stages.push(o.stage);
  }
  // The image is in the store now: no image stage; the others in order.
  assert.equal(stages, ['rootfs', 'spec', 'network', 'create', 'start', 'exit', 'cleanup']);
  // A line the schema refuses is refused (the validation is real).
  assert.not.ok(
    validate({
      schema: 'tsrun.explain/v1',
      command: 'run',
      stage: 'spec',
      n: 3,
      N: 8,
      event: { type: 'container-create' },
    }),
  );
});

E('brief twice: the same text (ids, pids, addresses masked); full adds argv, plugin input and timings', async () => {
  const port = await freePort();
  const args = ['run', '--explain', '--rm', '-p', `${port}:80`, IMAGE, 'echo', 'hi'];
  const a = await tsrun(args, { root });
  const b = await tsrun(args, { root });
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  assert.match(block(a.stderr, 'Image'), /already in the store/);
  assert.is(mask(unwrap(b.stderr)), mask(unwrap(a.stderr)));
  assert.not.match(a.stderr, / ms\)/);
  checkText('run --explain (brief)', a.stderr);
  const f = await tsrun(['run', '--explain=full', '--rm', '-p', `${port}:80`, IMAGE, 'echo', 'hi'], { root });
  assert.is(f.code, 0, f.stderr);
  assert.is(f.stdout, 'hi\n');
  checkText('run --explain=full', f.stderr);
  assert.match(f.stderr, /^\[4\/8\] Network \(\d+ ms\)/m);
  assert.match(block(f.stderr, 'Network'), /^ {6}input {4}\{"(type|cniVersion)"/m);
  assert.match(block(f.stderr, 'Network'), /^ {6}result {3}\{/m);
  assert.match(block(f.stderr, 'Start'), /^ {6}argv +\S*runc --root \S+ start\s+[0-9a-f]{64}/m);
  assert.equal(await leftovers(root), []);
});

E('pull, exec, stop, rm and build explain too; a bad mode is a flag error', async () => {
  const other = path.join(tmp, 'root-pull');
  const p = await tsrun(['pull', '--explain', IMAGE], { root: other });
  assert.is(p.code, 0, p.stderr);
  checkText('pull --explain', p.stderr);
  assert.equal(headers(p.stderr), ['[1/4] Resolve', '[2/4] Manifest', '[3/4] Layers', '[4/4] Store']);
  assert.ok(block(p.stderr, 'Manifest').includes(pushed.manifestDigest), p.stderr);
  assert.match(
    block(p.stderr, 'Manifest'),
    /curl -s -H 'Accept: application\/vnd\.oci\.image\.manifest\.v1\+json' \$R\/manifests\/\$D/,
  );
  assert.match(p.stdout, /Digest: sha256:/);
  rmSync(other, { recursive: true, force: true });

  const d = await tsrun(['run', '-d', '--explain', '--network', 'none', IMAGE, 'sleep', '60'], { root });
  assert.is(d.code, 0, d.stderr);
  const id = d.stdout.trim();
  assert.match(block(d.stderr, 'Network'), /--network none/);
  assert.match(block(d.stderr, 'Exit'), /runs on/);

  const x = await tsrun(
    ['exec', '--explain', '-e', `EXEC_VAR=${EXEC_SECRET}`, id, 'sh', '-c', 'echo "$EXEC_VAR" | wc -c'],
    { root },
  );
  assert.is(x.code, 0, x.stderr);
  assert.is(x.stdout.trim(), String(EXEC_SECRET.length + 1));
  checkText('exec --explain', x.stderr);
  assert.equal(headers(x.stderr), ['[1/1] Exec']);
  assert.match(unwrap(x.stderr), new RegExp(`runc --root \\S+ exec ${id} sh -c`));

  const s = await tsrun(['stop', '--explain', '-t', '1', id], { root });
  assert.is(s.code, 0, s.stderr);
  assert.is(s.stdout, `${id}\n`);
  checkText('stop --explain', s.stderr);
  assert.equal(headers(s.stderr), ['[1/3] Stop', '[2/3] Exit', '[3/3] Cleanup']);
  assert.match(block(s.stderr, 'Stop'), /sent SIGTERM, it did not exit within 1s: SIGKILL/);
  assert.match(block(s.stderr, 'Exit'), /status 137 \(128 \+ 9/);

  const rm = await tsrun(['rm', '--explain', id], { root });
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(headers(rm.stderr), ['[1/4] Stop', '[2/4] Exit', '[3/4] Cleanup', '[4/4] Remove']);
  assert.match(block(rm.stderr, 'Stop'), /not running: nothing to stop/);
  assert.match(block(rm.stderr, 'Remove'), /removed /);

  const ctx = path.join(tmp, 'ctx');
  (await import('node:fs')).mkdirSync(ctx, { recursive: true });
  writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${IMAGE}\nRUN echo built > /built\n`);
  const bd = await tsrun(['build', '--explain', '-t', 'explained', ctx], { root });
  assert.is(bd.code, 0, bd.stderr);
  checkText('build --explain', bd.stderr);
  assert.equal(headers(bd.stderr), ['[1/3] Base image', '[2/3] Steps', '[3/3] Result']);
  assert.match(block(bd.stderr, 'Steps'), /RUN echo built > \/built/);
  assert.match(bd.stdout, /Successfully built/);

  const bad = await tsrun(['run', '--explain=loud', '--rm', IMAGE, 'true'], { root });
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /invalid argument "loud" for "--explain" flag/);
  assert.equal(await leftovers(root), []);
});

E.run();
