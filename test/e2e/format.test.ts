/**
 * End to end: --format, ps filters and sizes on real containers (real CLI, real runc, an image
 * from a real registry), checked against what Docker documents: Docker's field names on every
 * object, `{{json .}}` equal to `--format json` and free of tsrun's records, filters combined as
 * Docker combines them, COMMAND quoted as Docker's daemon quotes it, pflag's syntax.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-format-'));
const root = path.join(tmp, 'root');
const data = mkdtempSync(path.join(tmp, 'data-'));
let IMAGE = '';
const F = suite('e2e format');
const cli = (args: string[]) => tsrun(args, { root });
const lines = async (args: string[]) => {
  const r = await cli(args);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).sort();
};

F.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest', {
    Cmd: ['sh'],
    Env: ['PATH=/bin:/usr/bin'],
    ExposedPorts: { '80/tcp': {}, '81/tcp': {}, '53/udp': {} },
  });
  IMAGE = `${reg.host}/e2e/busybox`;
  assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
  const web = await cli([
    'run',
    '-d',
    '--name',
    'web',
    '--network',
    'none',
    '-l',
    'tier=front',
    '-l',
    'app=x',
    '-v',
    `${data}:/data`,
    IMAGE,
    'sleep',
    '60',
  ]);
  assert.is(web.code, 0, web.stderr);
  const job = await cli(['run', '--name', 'job', '--network', 'host', '-l', 'tier=back', IMAGE, 'sh', '-c', 'exit 3']);
  assert.is(job.code, 3, job.stderr);
  assert.is((await cli(['create', '--name', 'fresh', '--network', 'none', IMAGE, 'true'])).code, 0);
});
F.after(async () => {
  for (const n of ['web', 'job', 'fresh']) await cli(['rm', '-f', n]);
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

F("{{json .}} is Docker's ContainerContext, the same as --format json, with nothing of tsrun's records", async () => {
  const viaJson = await cli(['ps', '-a', '--format', 'json']);
  const viaTemplate = await cli(['ps', '-a', '--format', '{{json .}}']);
  const parse = (out: string) =>
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const rows = parse(viaJson.stdout);
  // The same rows, but for the clock-driven texts ("Up 1 second") between the two calls.
  const still = (r: Record<string, unknown>) => ({ ...r, RunningFor: '', Status: '' });
  assert.equal(parse(viaTemplate.stdout).map(still), rows.map(still));
  assert.is(rows.length, 3);
  for (const r of rows) {
    assert.equal(Object.keys(r), [
      'Command',
      'CreatedAt',
      'HealthStatus',
      'ID',
      'Image',
      'Labels',
      'LocalVolumes',
      'Mounts',
      'Names',
      'Networks',
      'Platform',
      'Ports',
      'RunningFor',
      'Size',
      'State',
      'Status',
    ]);
  }
  assert.not.match(viaJson.stdout, root, 'no store paths');
  assert.not.match(viaJson.stdout, /monitor|"record"|"paths"|"observed"/i);
  const web = rows.find((r) => r['Names'] === 'web') as Record<string, unknown>;
  assert.is(web['Labels'], 'app=x,tier=front');
  assert.is(web['Mounts'], data.length > 15 ? `${data.slice(0, 14)}…` : data);
  assert.is(web['State'], 'running');
});

F('ps --filter: each key, the same key repeated is OR, different keys AND; status and exited imply -a', async () => {
  const names = (...f: string[]) => lines(['ps', ...f.flatMap((x) => ['--filter', x]), '--format', '{{.Names}}']);
  assert.equal(await names(), ['web']);
  assert.equal(await names('status=exited'), ['job']);
  assert.equal(await names('status=running', 'status=created'), ['fresh', 'web']);
  assert.equal(await lines(['ps', '-a', '-f', 'name=e', '--format', '{{.Names}}']), ['fresh', 'web']);
  assert.equal(await lines(['ps', '-a', '-f', 'name=^/web$', '--format', '{{.Names}}']), ['web']);
  assert.equal(await lines(['ps', '-a', '-f', 'label=tier', '--format', '{{.Names}}']), ['job', 'web']);
  assert.equal(
    await lines(['ps', '-a', '-f', 'label=tier', '-f', 'label=app=x', '--format', '{{.Names}}']),
    ['web'],
    'labels: all must match',
  );
  assert.equal(await names('exited=3'), ['job']);
  assert.equal(await names('exited=0'), []);
  assert.equal(await lines(['ps', '-a', '-f', `ancestor=${IMAGE}`, '--format', '{{.Names}}']), ['fresh', 'job', 'web']);
  assert.equal(await lines(['ps', '-a', '-f', 'ancestor=other:1', '--format', '{{.Names}}']), []);
  assert.equal(await lines(['ps', '-a', '-f', 'network=host', '--format', '{{.Names}}']), ['job']);
  assert.equal(await lines(['ps', '-a', '-f', 'volume=/data', '--format', '{{.Names}}']), ['web']);
  assert.equal(
    await lines(['ps', '-a', '-f', 'status=exited', '-f', 'label=tier=front', '--format', '{{.Names}}']),
    [],
    'different keys: AND',
  );
  const id = (await cli(['inspect', '-f', '{{.ID}}', 'job'])).stdout.trim();
  assert.equal(await lines(['ps', '-a', '-f', `id=${id.slice(0, 8)}`, '--format', '{{.Names}}']), ['job']);
  assert.equal(
    await lines(['ps', '-n', '2', '--format', '{{.Names}}']),
    ['fresh', 'job'],
    '-n: the last created, any state',
  );
  assert.equal(await lines(['ps', '-a', '-f', 'expose=80-81', '--format', '{{.Names}}']), ['fresh', 'job', 'web']);
  assert.equal(await lines(['ps', '-a', '-f', 'expose=53', '--format', '{{.Names}}']), [], 'tcp unless said');
  assert.equal(await lines(['ps', '-a', '-f', 'expose=53/udp', '-f', 'name=web', '--format', '{{.Names}}']), ['web']);
  assert.equal(await lines(['ps', '-a', '-f', 'publish=80', '--format', '{{.Names}}']), [], 'nothing published');
  assert.equal(await lines(['ps', '-a', '-f', 'health=none', '--format', '{{.Names}}']), ['fresh', 'job', 'web']);
  assert.equal(await lines(['ps', '-a', '-f', 'health=healthy', '--format', '{{.Names}}']), []);
  assert.equal(
    await lines(['ps', '--format', '{{.Ports}}']),
    ['53/udp, 80-81/tcp'],
    "exposed ports collapse into Docker's ranges",
  );
});

F("ps: COMMAND as Docker's daemon quotes it; -a=false and --all=true (pflag)", async () => {
  assert.equal(await lines(['ps', '-a', '--no-trunc', '-f', 'name=job', '--format', '{{.Command}}']), [
    `"sh -c 'exit 3'"`,
  ]);
  assert.equal(await lines(['ps', '-a=false', '--format', '{{.Names}}']), ['web']);
  assert.equal(await lines(['ps', '--all=true', '--format', '{{.Names}}']), ['fresh', 'job', 'web']);
  const hi = await cli(['run', '--rm=true', '--tty=false', '--network=none', IMAGE, 'echo', 'hi']);
  assert.is(hi.stdout, 'hi\n', hi.stderr);
});

F('sizes: ps -s, a template reading .Size, inspect --size', async () => {
  assert.is((await cli(['exec', 'web', 'sh', '-c', 'head -c 5000 /dev/zero > /big'])).code, 0);
  const [size] = await lines(['ps', '-f', 'name=web', '--format', '{{.Size}}']);
  assert.match(size as string, /^5(\.\d+)?kB \(virtual \d/);
  const table = await cli(['ps', '-s', '-f', 'name=web']);
  assert.match(table.stdout, /NAMES\s+SIZE\n/);
  const rw = Number(
    (await cli(['inspect', '--size', '-f', '{{.SizeRw}} {{.SizeRootFs}}', 'web'])).stdout.split(' ')[0],
  );
  assert.ok(rw >= 5000 && rw < 100_000, `SizeRw ${rw}`);
  assert.is(
    (await cli(['inspect', '-f', '{{.SizeRw}}', 'web'])).stdout,
    '<nil>\n',
    'without --size SizeRw is a nil pointer, as in Docker',
  );
});

F("inspect: Go field names and JSON keys, --type, maps read '', unknown fields fail with Docker's words", async () => {
  const c = await cli([
    'inspect',
    '-f',
    '{{.ID}}={{.Id}} {{.Name}} {{.State.Status}} {{.Config.Labels.tier}}[{{.Config.Labels.nope}}] {{range .Mounts}}{{.Destination}}{{end}}',
    'web',
  ]);
  assert.match(c.stdout, /^([0-9a-f]{64})=\1 \/web running front\[\] \/data\n$/);
  const img = await cli(['image', 'inspect', '--format', '{{.ID}} {{.Id}} {{len .RepoTags}}', IMAGE]);
  assert.match(img.stdout, /^(sha256:[0-9a-f]{64}) \1 1\n$/);
  assert.is(
    (await cli(['inspect', '--type', 'image', '-f', '{{.ID}}', IMAGE])).stdout,
    `${img.stdout.split(' ')[0]}\n`,
  );
  const wrongType = await cli(['inspect', '--type', 'image', 'web']);
  assert.is(wrongType.code, 1);
  const unknown = await cli(['inspect', '-f', '{{.Foo}}', 'web']);
  assert.is(unknown.code, 1);
  assert.match(
    unknown.stderr,
    'template parsing error: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"',
  );
  const typed = await cli([
    'inspect',
    '-f',
    '{{if .State.Health}}health{{else}}none{{end}} [{{.Config.Domainname}}] {{.HostConfig.NanoCPUs}} {{.HostConfig.RestartPolicy.Name}}|',
    'web',
  ]);
  // RestartPolicy is kept now (run --restart): "no" by default, as Docker's CLI sends it.
  assert.is(
    typed.stdout,
    'none [] 0 no|\n',
    "fields of Docker's structs that tsrun leaves out read as Go's zero values",
  );
  const json = JSON.parse((await cli(['inspect', '-f', '{{json .State}}', 'web'])).stdout) as Record<string, unknown>;
  assert.is(json['Status'], 'running');
});

F("images and history: --format with Docker's fields, -H=false", async () => {
  assert.equal(await lines(['images', '--format', '{{.Repository}}:{{.Tag}}']), [`${IMAGE}:latest`]);
  const t = await cli(['images', '--format', 'table {{.Repository}}\t{{.Size}}']);
  assert.match(t.stdout, /^REPOSITORY\s+SIZE\n/);
  const h = await lines(['history', '-H=false', '--format', '{{.Size}} {{.CreatedAt}}', IMAGE]);
  for (const l of h) assert.match(l, /^\d+ (\d{4}-\d\d-\d\dT|0001-)/);
  assert.equal(await lines(['history', '-q', IMAGE]), [(await cli(['images', '-q'])).stdout.trim()]);
});

F('nothing left behind once removed', async () => {
  for (const n of ['web', 'job', 'fresh']) assert.is((await cli(['rm', '-f', n])).code, 0);
  assert.equal(await leftovers(root), []);
});

F.run();
