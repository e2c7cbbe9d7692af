/**
 * The real CLI (bin/tsrun.js) on a fresh store: Docker's exit codes by verb (125/126/127 only
 * for run/create/start/exec, 1 for other failures, 125 for a bad flag on any verb, 64 for an
 * inspect template that does not parse), Docker's template error wording, pflag's syntax, the
 * global --config. Nothing here starts a container or touches the network.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from '../e2e/cli.js';
import { runDir } from '../e2e/containers.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-exit-'));
test.after(() => {
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

const TABLE: [string[], number, RegExp | string][] = [
  [['rm', 'nope'], 1, 'no such container: nope'],
  [['rm', '-f', 'nope'], 1, 'no such container: nope'],
  [['stop', 'nope'], 1, 'no such container'],
  [['kill', 'nope'], 1, 'no such container'],
  [['restart', 'nope'], 1, 'no such container'],
  [['wait', 'nope'], 1, 'no such container'],
  [['logs', 'nope'], 1, 'no such container'],
  [['port', 'nope'], 1, 'no such container'],
  [['container', 'rm', 'nope'], 1, 'no such container'],
  [['rmi', 'nope:1'], 1, 'no such image: nope:1'],
  [['image', 'rm', 'nope:1'], 1, 'no such image'],
  [['tag', 'nope:1', 'other:1'], 1, 'no such image'],
  [['history', 'nope:1'], 1, 'no such image'],
  [['inspect', 'nope'], 1, 'no such object: nope'],
  [['inspect', '--type', 'container', 'nope'], 1, 'no such container: nope'],
  [['inspect', '--type', 'node', 'nope'], 1, '"node" is not a valid value for --type'],
  [['inspect', '--type', 'volume', 'nope'], 1, 'No such volume: nope'],
  [['image', 'inspect', 'nope'], 1, 'no such image'],
  [['container', 'inspect', 'nope'], 1, 'no such container'],
  [['frobnicate'], 1, "unknown command 'frobnicate'"],
  [['rm'], 1, 'missing required argument'],
  [['ps', 'extra'], 1, 'too many arguments'],
  [['ps', '--bogus'], 125, "unknown option '--bogus'"],
  [['rm', '--bogus', 'x'], 125, "unknown option '--bogus'"],
  [['inspect', '-f'], 125, 'argument missing'],
  [['ps', '--all=maybe'], 125, 'invalid argument "maybe" for "--all" flag: strconv.ParseBool'],
  [['ps', '--filter', 'status=sleeping'], 1, "invalid filter 'status=sleeping'"],
  [['ps', '--filter', 'colour=red'], 1, "invalid filter 'colour'"],
  [['ps', '--filter', 'status'], 1, 'bad format of filter (expected name=value)'],
  [
    ['ps', '--format', '{{.Nope}}'],
    1,
    `failed to execute template: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext`,
  ],
  [['ps', '--format', '{{.ID'], 1, 'failed to parse template: template: :1: unclosed action'],
  [['images', '--format', '{{.Nope}}'], 0, ''], // no rows: Docker executes the template per row only
  [['inspect', '--format', '{{.ID', 'nope'], 64, 'template parsing error: template: :1: unclosed action'],
  [['info', '--format', '{{.Nope}}'], 1, 'map has no entry for key "Nope"'],
  [['version', '--format', '{{.Nope}}'], 1, 'template parsing error'],
  [['version', '--format', '{{'], 64, 'template parsing error'],
  [['run', '--pull', 'never', '--network', 'none', 'nope:1'], 125, 'nope:1'],
  [['create', '--pull', 'never', '--network', 'none', 'nope:1'], 125, 'nope:1'],
  [['start', 'nope'], 125, 'no such container'],
  [['exec', 'nope', 'true'], 125, 'no such container'],
  [['run', '--bogus', 'x'], 125, "unknown option '--bogus'"],
  [['ps', '-a=false'], 0, ''],
  [['ps', '--all=true', '--no-trunc=false', '-q'], 0, ''],
  [['--version'], 0, ''],
  [['container'], 0, ''],
  [['container', 'frob'], 1, "unknown command 'frob'"],
  [['ps', '--help'], 0, ''],
];

test('exit codes by verb, as Docker sets them, with the real CLI', async () => {
  const failures: string[] = [];
  for (const [args, code, stderr] of TABLE) {
    const r = await tsrun(args, { root });
    if (r.code !== code) failures.push(`tsrun ${args.join(' ')}: exit ${r.code}, want ${code} (${r.stderr.trim()})`);
    else if (stderr && !(typeof stderr === 'string' ? r.stderr.includes(stderr) : stderr.test(r.stderr))) {
      failures.push(`tsrun ${args.join(' ')}: stderr ${JSON.stringify(r.stderr)} lacks ${String(stderr)}`);
    }
  }
  assert.equal(failures, []);
});

test('inspect of a missing object still prints [] (Docker), and ps formats print nothing on error', async () => {
  const r = await tsrun(['inspect', 'nope'], { root });
  assert.is(r.stdout, '[]\n');
  const p = await tsrun(['ps', '--format', '{{.Nope}}'], { root });
  assert.is(p.stdout, '');
});

test("version and info: Docker's layout and fields", async () => {
  const v = await tsrun(['version'], { root });
  assert.is(v.code, 0);
  assert.match(v.stdout, /^Client: tsrun\n Version: {11}\d+\.\d+\.\d+\n/);
  assert.match(v.stdout, /\n\nServer: tsrun \(daemonless\)\n Engine:\n {2}Version: +\d/);
  const f = await tsrun(['version', '--format', '{{.Client.Version}}|{{.Server.Os}}|{{json .Client.Platform}}'], {
    root,
  });
  assert.match(f.stdout, /^\d+\.\d+\.\d+\|linux\|\{"Name":"tsrun"\}\n$/);
  const i = await tsrun(
    ['info', '--format', '{{.DockerRootDir}} {{.Containers}} {{.Images}} {{.OSType}} {{.Tsrun.rootDir}}'],
    { root },
  );
  assert.is(i.stdout, `${root} 0 0 linux ${root}\n`);
  const j = JSON.parse((await tsrun(['info', '--format', 'json'], { root })).stdout) as Record<string, unknown>;
  assert.is(j['DockerRootDir'], root);
  assert.is(j['NCPU'], os.cpus().length);
});

test('--config DIR: psFormat and imagesFormat from DIR/config.json; pflag --format=VALUE', async () => {
  const dir = path.join(root, 'cfg');
  mkdirSync(dir);
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ psFormat: 'table {{.Names}}\t{{.State}}', imagesFormat: 'table {{.Repository}}' }),
  );
  assert.is((await tsrun(['--config', dir, 'ps'], { root })).stdout, 'NAMES     STATE\n');
  assert.is((await tsrun(['--config', dir, 'images'], { root })).stdout, 'REPOSITORY\n');
  assert.is(
    (await tsrun(['--config', dir, 'ps', '--format=table {{.ID}}'], { root })).stdout,
    'CONTAINER ID\n',
    '--format wins',
  );
  assert.is(
    (await tsrun(['ps'], { root, env: { DOCKER_CONFIG: dir } })).stdout,
    'NAMES     STATE\n',
    'DOCKER_CONFIG too',
  );
});

test.run();
