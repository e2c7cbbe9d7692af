/**
 * Build benchmark (a benchmark, not a timed test): the getting-started tutorial's Dockerfile,
 * tsrun vs podman, interleaved in one process with a rotating order per round.
 *
 *   first    build --no-cache -t bench-app CONTEXT   (base image already pulled: every step runs,
 *            including `RUN npm install` in a container)
 *   rebuild  build -t bench-app CONTEXT              (nothing changed: every step from the cache)
 *
 * `--case many-files` builds instead a context of `--files N` (default 20,000) small files in 100
 * directories with `FROM node:17-alpine` / `COPY . /app/` (issue 23's "build on a context of
 * 20,000 small files"): the context walk, the cache-key hashing and the COPY writes, no RUN.
 *
 *   tsrun    node bin/tsrun.js --root R build …
 *   podman   podman --root R --runroot RR --storage-driver overlay --cgroup-manager cgroupfs
 *              --events-backend file --runtime runc build --ulimit nofile=1024:20000
 *              --ulimit nproc=4096:4096 …
 *
 * Both run RUN steps on the host network (`--network host`; `--network default` for each tool's
 * default: tsrun's bridge, podman's netavark), so what is compared is the builder, not network
 * set-up (net.ts measures that). The base `node:17-alpine` is the test
 * fixture (this machine's node and npm on Debian's busybox-static) pushed to a loopback
 * docker-registry that a registries.conf makes docker.io's mirror for both tools. Every timed
 * build is checked (exit 0); a failed one is never reported as a time and makes the exit status 1.
 *
 *   npm run bench:build                         # 5 rounds, Markdown on stdout
 *   npm run bench:build -- --rounds 10 --json out.json --network default
 *   npm run bench:build -- --case many-files --rounds 3
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxLayer, dockerHubMirror, nodeLayer, writeTutorialApp } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { median, option, sh, timed, TSRUN } from './common.js';

const TARGET_REBUILD_RATIO = 0.5;
type Tool = 'tsrun' | 'podman';
type Kind = 'first' | 'rebuild';

const log = (m: string) => process.stderr.write(`bench:build: ${m}\n`);

async function main(): Promise<number> {
  const rounds = Number(option('--rounds', '5'));
  const network = option('--network', 'host');
  const work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-build-'));
  const root = path.join(work, 'tsrun');
  const proot = path.join(work, 'podman');
  const prun = path.join(work, 'podman-run');
  const context = path.join(work, 'app');
  const reg = await startRegistry({ auth: 'anonymous' });
  let failed = false;
  try {
    await pushImage(reg, 'library/node', '17-alpine', {
      layers: [busyboxLayer(), nodeLayer()],
      config: { config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['node'] } },
    });
    const conf = path.join(work, 'registries.conf');
    writeFileSync(conf, dockerHubMirror(reg.host));
    process.env.CONTAINERS_REGISTRIES_CONF = conf;
    const manyFiles = option('--case', 'tutorial') === 'many-files';
    const files = Number(option('--files', '20000'));
    if (manyFiles) writeManyFiles(context, files);
    else writeTutorialApp(context, 'hello from the benchmark\n');
    const podman = [
      '--root',
      proot,
      '--runroot',
      prun,
      '--storage-driver',
      'overlay',
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--runtime',
      'runc',
    ];
    const check = (what: string, r: { status: number | null; stderr: string }) => {
      if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
    };
    check('tsrun pull', sh(TSRUN, ['--root', root, 'pull', '-q', 'node:17-alpine']));
    check('podman pull', sh('podman', [...podman, 'pull', '-q', 'docker.io/library/node:17-alpine']));

    const argv = (tool: Tool, kind: Kind): [string, string[]] => {
      const nc = kind === 'first' ? ['--no-cache'] : [];
      if (network !== 'default') nc.push('--network', network);
      return tool === 'tsrun'
        ? [TSRUN, ['--root', root, 'build', ...nc, '-t', 'bench-app', context]]
        : [
            'podman',
            [
              ...podman,
              'build',
              ...nc,
              '--ulimit',
              'nofile=1024:20000',
              '--ulimit',
              'nproc=4096:4096',
              '-t',
              'bench-app',
              context,
            ],
          ];
    };
    const tools: Tool[] = ['tsrun', 'podman'];
    const times: Record<string, number[]> = {
      'tsrun first': [],
      'podman first': [],
      'tsrun rebuild': [],
      'podman rebuild': [],
    };
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? tools : [...tools].reverse();
      for (const kind of ['first', 'rebuild'] as Kind[]) {
        for (const tool of order) {
          const [cmd, args] = argv(tool, kind);
          const r = await timed(cmd, args);
          if (r.code !== 0) {
            log(`${tool} ${kind} round ${round}: exit ${r.code}: ${r.stderr.trim()}`);
            failed = true;
            continue;
          }
          if (round >= 0) times[`${tool} ${kind}`]?.push(r.ms);
        }
      }
      if (round >= 0) log(`round ${round + 1}/${rounds}`);
    }

    const med = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, xs.length ? median(xs) : NaN]));
    const out: string[] = [];
    out.push(
      `${manyFiles ? `COPY of a context of ${files} small files` : "The tutorial's Dockerfile"}, ${rounds} interleaved rounds after a warm-up (median wall time, ms; ratio to podman's median):`,
      '',
    );
    out.push('| build | tsrun | podman | × podman |', '|---|---:|---:|---:|');
    for (const kind of ['first', 'rebuild'] as Kind[]) {
      const t = med[`tsrun ${kind}`] as number;
      const p = med[`podman ${kind}`] as number;
      out.push(
        `| ${kind === 'first' ? 'first (--no-cache)' : 'unchanged rebuild'} | ${t.toFixed(0)} | ${p.toFixed(0)} | ${(t / p).toFixed(2)} |`,
      );
    }
    const ratio = (med['tsrun rebuild'] as number) / (med['podman rebuild'] as number);
    out.push(
      '',
      `rebuild tsrun/podman = ${ratio.toFixed(2)} (target ≤ ${TARGET_REBUILD_RATIO}: ${ratio <= TARGET_REBUILD_RATIO ? 'met' : 'not met'})`,
    );
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json', '');
    if (json) writeFileSync(json, JSON.stringify({ rounds, times, medians: med }, null, 1));
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    await reg.stop();
    sh('podman', [...['--root', proot, '--runroot', prun, '--storage-driver', 'overlay'], 'system', 'reset', '-f']);
    sh('umount', ['-R', proot]);
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

/** `files` small files (10 to 500 bytes) in 100 directories, and a Dockerfile that copies them all. */
function writeManyFiles(dir: string, files: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, `d${i % 100}`);
    if (i < 100) mkdirSync(sub);
    writeFileSync(path.join(sub, `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 50)));
  }
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM node:17-alpine\nCOPY . /app/\n');
}

process.exitCode = await main();
