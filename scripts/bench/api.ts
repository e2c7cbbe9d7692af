/**
 * Engine API benchmark (a benchmark, not a timed test): the same clients through tsrun's socket
 * (`tsrun system service`) and through podman's (`podman system service`), both serving from a
 * store that already holds the image ("warm"):
 *
 *   run   `docker run --rm IMAGE true` (the docker CLI from scripts/test-tools.sh), wall time
 *   ps    `docker ps` (an empty list), wall time: the API's fixed per-command cost
 *   tc    testcontainers-node: `new GenericContainer(IMAGE).withCommand(echo ready; sleep)
 *         .withWaitStrategy(Wait.forLogMessage('ready')).start()`, start to ready; a fresh Node
 *         process per tool and round (scripts/bench/api-tc.ts), whose first container includes
 *         the client's set-up and whose second does not
 *   cli   for reference, tsrun's own CLI: `tsrun run --rm IMAGE true` (no socket)
 *
 * Interleaved: each round runs every tool in a rotating order, after one untimed warm-up round.
 * Both services run as root with runc and the default bridge network. podman gets on this kind
 * of machine (no systemd, hybrid cgroups, a low rlimit ceiling) a containers.conf with
 * cgroupfs, file events and runc (scripts/bench/run.ts says why); its compat API sets nofile to
 * 1048576 (over this machine's hard limit, 20000) and an nproc it may not set, so every container
 * of both tools is made with nofile=1024:20000 and nproc=4096:4096 (`--ulimit`, testcontainers'
 * `withUlimits`), as run.ts's podman runs are.
 * Every timed run is checked (exit 0); a failed one is never a time and makes the exit status 1.
 *
 *   npm run bench:api                                  # 15 rounds (tc: 5), Markdown on stdout
 *   npm run bench:api -- --rounds 21 --tc-rounds 7 --json out.json
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLayer } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { median, option, REPO, sh, timed, TSRUN } from './common.js';

type Tool = 'tsrun' | 'podman';
const log = (m: string) => process.stderr.write(`bench:api: ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DOCKER = path.join(REPO, '.tools/bin/docker');
const TC = path.join(path.dirname(fileURLToPath(import.meta.url)), 'api-tc.js');

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/_ping', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function serve(cmd: string, args: string[], socket: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  for (let i = 0; i < 300; i++) {
    if (await ping(socket)) return child;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`${cmd} system service did not answer on ${socket}`);
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

function row(name: string, xs: number[], base: number | undefined): string {
  const m = median(xs);
  const ratio = base ? (m / base).toFixed(2) : '–';
  return `| ${name} | ${xs.length} | ${m.toFixed(1)} | ${Math.min(...xs).toFixed(1)} | ${Math.max(...xs).toFixed(1)} | ${ratio} |`;
}

async function main(): Promise<number> {
  const rounds = Number(option('--rounds', '15'));
  const tcRounds = Number(option('--tc-rounds', '5'));
  if (!existsSync(DOCKER)) sh('bash', [path.join(REPO, 'scripts/test-tools.sh')]);
  const work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-api-'));
  const root = path.join(work, 'tsrun');
  const proot = path.join(work, 'podman');
  const prun = path.join(work, 'podman-run');
  const sock: Record<Tool, string> = { tsrun: path.join(work, 'tsrun.sock'), podman: path.join(work, 'podman.sock') };
  const conf = path.join(work, 'containers.conf');
  writeFileSync(
    conf,
    ['[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', 'runtime = "runc"', ''].join('\n'),
  );
  const podmanEnv = { ...process.env, CONTAINERS_CONF: conf };
  const podman = ['--root', proot, '--runroot', prun, '--storage-driver', 'overlay'];
  const reg = await startRegistry({ auth: 'anonymous' });
  const services: ChildProcess[] = [];
  let failed = false;
  try {
    await pushImage(reg, 'bench/busybox', '1', {
      layers: [busyboxLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    const image = `${reg.host}/bench/busybox:1`;
    const check = (what: string, r: { status: number | null; stderr: string }) => {
      if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
    };
    check('tsrun pull', sh(TSRUN, ['--root', root, 'pull', '-q', image]));
    check('podman pull', sh('podman', [...podman, 'pull', '-q', '--tls-verify=false', image], { env: podmanEnv }));
    services.push(
      await serve(TSRUN, ['--root', root, 'system', 'service', '--time', '0', sock.tsrun], sock.tsrun, process.env),
    );
    services.push(
      await serve(
        'podman',
        [...podman, 'system', 'service', '--time', '0', `unix://${sock.podman}`],
        sock.podman,
        podmanEnv,
      ),
    );
    const clientEnv = (t: Tool) => ({
      ...process.env,
      DOCKER_HOST: `unix://${sock[t]}`,
      DOCKER_CONFIG: path.join(work, 'docker-config'),
      TESTCONTAINERS_RYUK_DISABLED: 'true',
      TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1',
    });
    const tools: Tool[] = ['tsrun', 'podman'];
    // podman's compat API would set rlimits this machine refuses (see the header): both get these.
    const limit = ['--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=4096:4096'];
    const times: Record<string, number[]> = {};
    const add = (k: string, ms: number) => (times[k] ??= []).push(ms);
    const once = async (key: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, keep: boolean) => {
      const r = await timed(cmd, args, { env });
      if (r.code !== 0) {
        log(`${key}: exit ${r.code}: ${r.stderr.trim()}`);
        failed = true;
      } else if (keep) add(key, r.ms);
    };
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? tools : [...tools].reverse();
      const keep = round >= 0;
      for (const t of order)
        await once(`run ${t}`, DOCKER, ['run', '--rm', ...limit, image, 'true'], clientEnv(t), keep);
      for (const t of order) await once(`ps ${t}`, DOCKER, ['ps'], clientEnv(t), keep);
      await once('run tsrun CLI', TSRUN, ['--root', root, 'run', '--rm', image, 'true'], process.env, keep);
      if (keep) log(`round ${round + 1}/${rounds}`);
    }
    for (let round = -1; round < tcRounds; round++) {
      const order = round % 2 === 0 ? tools : [...tools].reverse();
      for (const t of order) {
        const r = sh(process.execPath, [TC, image, '--starts', '2'], { env: clientEnv(t) });
        if (r.status !== 0) {
          log(`tc ${t}: exit ${r.status}: ${r.stderr.trim()}`);
          failed = true;
          continue;
        }
        const [first, second] = JSON.parse(r.stdout) as [number, number];
        if (round >= 0) {
          add(`tc first ${t}`, first);
          add(`tc second ${t}`, second);
        }
      }
      if (round >= 0) log(`testcontainers round ${round + 1}/${tcRounds}`);
    }

    const med = (k: string) => (times[k]?.length ? median(times[k]) : undefined);
    const podmanVersion = sh('podman', ['--version']).stdout.trim();
    const out = [
      `Engine API through each socket (${podmanVersion}); wall time in ms; × podman = median / podman's median:`,
      '',
      '| what | n | median | min | max | × podman |',
      '|---|---:|---:|---:|---:|---:|',
    ];
    const lines: [string, string, string][] = [
      ['`docker run --rm IMAGE true`, tsrun', 'run tsrun', 'run podman'],
      ['`docker run --rm IMAGE true`, podman', 'run podman', 'run podman'],
      ['`tsrun run --rm IMAGE true` (CLI, no socket)', 'run tsrun CLI', 'run podman'],
      ['`docker ps`, tsrun', 'ps tsrun', 'ps podman'],
      ['`docker ps`, podman', 'ps podman', 'ps podman'],
      ['testcontainers start→ready, 1st in process, tsrun', 'tc first tsrun', 'tc first podman'],
      ['testcontainers start→ready, 1st in process, podman', 'tc first podman', 'tc first podman'],
      ['testcontainers start→ready, 2nd, tsrun', 'tc second tsrun', 'tc second podman'],
      ['testcontainers start→ready, 2nd, podman', 'tc second podman', 'tc second podman'],
    ];
    for (const [name, k, base] of lines) if (times[k]?.length) out.push(row(name, times[k], med(base)));
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json', '');
    if (json) writeFileSync(json, JSON.stringify({ rounds, tcRounds, times }, null, 1));
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    for (const s of services) await stopped(s);
    await reg.stop();
    const left = sh(TSRUN, ['--root', root, 'ps', '-aq']).stdout.split('\n').filter(Boolean);
    if (left.length) sh(TSRUN, ['--root', root, 'rm', '-f', ...left]);
    sh('podman', [...podman, 'system', 'reset', '-f'], { env: podmanEnv });
    sh('umount', ['-R', proot]);
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
