/**
 * The looking-inside endpoints through Docker's own CLI against `tsrun system service`:
 * `docker top`, `stats --no-stream`, `diff`, `export`, `commit`, `import` and `system df`, each
 * compared with what the tsrun CLI says of the same store.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { runDir } from './containers.js';
import type { TestRegistry } from '../helpers/registry.js';
import {
  DOCKER,
  busyboxRegistry,
  docker as dockerAt,
  dockerClient,
  startService,
  type RunningService,
} from './api-setup.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-tools-'));
const root = path.join(tmp, 'root');
const socket = path.join(tmp, 'docker.sock');
let reg: TestRegistry;
let IMAGE = '';
let svc: RunningService;

const T = suite('e2e api: top, stats, diff, export, commit, import, system df');
const docker = (args: string[]) => dockerAt(socket, args);
const cli = (args: string[]) => tsrun(args, { root });

T.before(async () => {
  await dockerClient();
  ({ reg, image: IMAGE } = await busyboxRegistry());
  svc = await startService(root, socket);
  assert.is((await cli(['pull', '-q', IMAGE])).code, 0);
});
T.after(async () => {
  for (const id of (await cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean))
    await cli(['rm', '-f', id]);
  await svc?.stop();
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

T('docker top and stats --no-stream: the container as tsrun sees it', async () => {
  const run = await docker(['run', '-d', '--name', 'sleeper', IMAGE, 'sleep', '300']);
  assert.is(run.code, 0, run.stderr);
  const top = await docker(['top', 'sleeper']);
  assert.is(top.code, 0, top.stderr);
  assert.match(top.stdout, /^UID +PID +PPID +C +STIME +TTY +TIME +CMD\n/);
  assert.match(top.stdout, /sleep 300\n$/);
  const ours = await cli(['top', 'sleeper']);
  const pid = (s: string) => s.split('\n')[1]?.trim().split(/\s+/)[1];
  assert.is(pid(top.stdout), pid(ours.stdout));
  const aux = await docker(['top', 'sleeper', '-o', 'pid,comm']);
  assert.match(aux.stdout, new RegExp(`^PID +COMMAND\\n${pid(top.stdout)} +sleep\\n$`));

  const stats = await docker([
    'stats',
    '--no-stream',
    '--format',
    '{{.Name}} {{.PIDs}} {{.MemUsage}} {{.CPUPerc}}',
    'sleeper',
  ]);
  assert.is(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^sleeper 1 [\d.]+[kKMG]?i?B \/ [\d.]+[kKMG]?i?B [\d.]+%\n$/);

  const stopped = await docker(['top', 'no-such-container']);
  assert.is(stopped.code, 1);
  assert.match(stopped.stderr, 'No such container: no-such-container');
});

T('docker diff, commit, export and import: images the tsrun CLI runs', async () => {
  const made = await docker(['run', '--name', 'writer', IMAGE, 'sh', '-c', 'echo written > /note']);
  assert.is(made.code, 0, made.stderr);

  // docker diff = tsrun diff.
  const diff = await docker(['diff', 'writer']);
  assert.is(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /^A \/note$/m);
  assert.is(diff.stdout, (await cli(['diff', 'writer'])).stdout);

  const commit = await docker(['commit', '-c', 'CMD ["cat", "/note"]', 'writer', 'committed:1']);
  assert.is(commit.code, 0, commit.stderr);
  assert.match(commit.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const ran = await cli(['run', '--name', 'from-commit', 'committed:1']);
  assert.is(ran.stdout, 'written\n', ran.stderr);

  const tar = path.join(tmp, 'writer.tar');
  const exp = await docker(['export', '-o', tar, 'writer']);
  assert.is(exp.code, 0, exp.stderr);
  const list = await execa('tar', ['-tf', tar]);
  const entries = String(list.stdout).split('\n');
  assert.ok(entries.includes('note'), 'the container change is in the export');
  assert.ok(entries.includes('bin/busybox'), 'the image is in the export');
  // The same bytes as the tsrun CLI's export.
  const ours = path.join(tmp, 'writer-cli.tar');
  assert.is((await cli(['export', '-o', ours, 'writer'])).code, 0);
  assert.ok(readFileSync(tar).equals(readFileSync(ours)), 'docker export = tsrun export');

  // The exported tar on docker import's stdin.
  const r = await execa(DOCKER, ['import', '-c', 'CMD ["cat", "/note"]', '-m', 'from a tar', '-', 'imported:1'], {
    reject: false,
    inputFile: tar,
    stripFinalNewline: false,
    env: { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: '/nonexistent-docker-config', HOME: '/nonexistent' },
    extendEnv: false,
  });
  const imported = { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  assert.is(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const run2 = await cli(['run', '--name', 'from-import', 'imported:1']);
  assert.is(run2.stdout, 'written\n', run2.stderr);
  const hist = await cli(['history', '--format', '{{.Comment}}', 'imported:1']);
  assert.is(hist.stdout, 'from a tar\n');
});

T('docker system df: the store as the list endpoints see it', async () => {
  const df = await docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}']);
  assert.is(df.code, 0, df.stderr);
  const images = (await cli(['images', '-q'])).stdout.split('\n').filter(Boolean).length;
  const ctrs = (await cli(['ps', '-aq'])).stdout.split('\n').filter(Boolean).length;
  const running = (await cli(['ps', '-q'])).stdout.split('\n').filter(Boolean).length;
  const lines = df.stdout.split('\n');
  // Active images: those a container uses (busybox, committed:1 and imported:1 here).
  assert.is(lines[0], `Images ${images} 3`);
  assert.is(lines[1], `Containers ${ctrs} ${running}`);
  assert.match(lines[2] ?? '', /^Local Volumes \d+ \d+$/);
  assert.is(lines[3], 'Build Cache 0 0');
  const verbose = await docker(['system', 'df', '-v']);
  assert.is(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stdout, /committed +1 /);
});

T.run();
