/**
 * Listing-command benchmark (a benchmark, not a timed test): `ps -a` and `images`, tsrun vs
 * podman, with `node -e 0` as the floor of any Node CLI; and `pull` of an image the store already
 * has (what CI does before every job: the registry is asked, nothing is fetched), from a
 * loopback docker-registry (a one-layer image pushed at the start; the untimed first round pulls
 * it into each store).
 *
 * Every command runs against an empty store of its own (nothing to list: this is start-up and
 * the work before the first line), interleaved in a rotating order per round after one untimed
 * round, so a machine shared with other jobs loads every tool alike. Every run must exit 0; a
 * failed run is never reported as a time and makes the exit status 1. Besides the wall time,
 * each run's CPU time (user + sys, from bash's `times` for its child): on a machine shared with
 * other jobs the wall time's spread grows several-fold, the CPU time's far less.
 *
 *   tsrun   bin/tsrun.js --root R ps -a | images | pull -q REF (the executable, as users run it)
 *   podman  podman --root R --runroot RR --storage-driver overlay --events-backend file ps -a | images
 *           | pull -q --tls-verify=false REF
 *   node    node -e 0, started as bin/tsrun.js starts Node (without NODE_EXTRA_CA_CERTS)
 *
 *   npm run bench:list                        # 30 rounds, Markdown on stdout
 *   node dist/scripts/bench/list.js --rounds 50
 * TSRUN_BENCH_TSRUN=/other/checkout/bin/tsrun.js compares another build in the same run (as "tsrun-b").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { median, option, removeTree, TSRUN } from './common.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { layerBlob, makeTar } from '../../test/helpers/tar-writer.js';

/** Wall ms and the child's CPU ms (bash `times`: user + sys of its children). */
function timedCpu(
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ ms: number; cpu: number; code: number | null; stderr: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const child = spawn('bash', ['-c', `${[cmd, ...args].map(q).join(' ')} >/dev/null; rc=$?; times >&3; exit $rc`], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: env ?? process.env,
    });
    let stderr = '';
    let times = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (times += d.toString()));
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      const sec = [...(times.split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map(
        (m) => Number(m[1]) * 60 + Number(m[2]),
      );
      resolve({ ms, cpu: ((sec[0] ?? NaN) + (sec[1] ?? NaN)) * 1000, code, stderr });
    });
  });
}

const rounds = Number(option('--rounds', '30'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-list-'));
const runroot = mkdtempSync('/run/tsrun-bench-list-');
const other = process.env['TSRUN_BENCH_TSRUN'];
const nodeEnv = { ...process.env };
delete nodeEnv['NODE_EXTRA_CA_CERTS'];
const podman = [
  '--root',
  path.join(dir, 'podman'),
  '--runroot',
  runroot,
  '--storage-driver',
  'overlay',
  '--events-backend',
  'file',
];

const registry = await startRegistry({ auth: 'anonymous' });
const ref = `${registry.host}/bench/current:1`;
await pushImage(registry, 'bench/current', '1', {
  layers: [layerBlob(makeTar([{ name: 'etc/hostname', content: 'bench\n' }]))],
});

const cases: Array<{ name: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv }> = [
  { name: 'tsrun ps -a', cmd: TSRUN, args: ['--root', path.join(dir, 'tsrun'), 'ps', '-a'] },
  { name: 'podman ps -a', cmd: 'podman', args: [...podman, 'ps', '-a'] },
  { name: 'tsrun images', cmd: TSRUN, args: ['--root', path.join(dir, 'tsrun'), 'images'] },
  { name: 'podman images', cmd: 'podman', args: [...podman, 'images'] },
  { name: 'tsrun pull (up to date)', cmd: TSRUN, args: ['--root', path.join(dir, 'tsrun'), 'pull', '-q', ref] },
  { name: 'podman pull (up to date)', cmd: 'podman', args: [...podman, 'pull', '-q', '--tls-verify=false', ref] },
  { name: 'node -e 0', cmd: 'node', args: ['-e', '0'], env: nodeEnv },
  ...(other
    ? [
        { name: 'tsrun-b ps -a', cmd: other, args: ['--root', path.join(dir, 'tsrun-b'), 'ps', '-a'] },
        { name: 'tsrun-b images', cmd: other, args: ['--root', path.join(dir, 'tsrun-b'), 'images'] },
        {
          name: 'tsrun-b pull (up to date)',
          cmd: other,
          args: ['--root', path.join(dir, 'tsrun-b'), 'pull', '-q', ref],
        },
      ]
    : []),
];

async function main(): Promise<number> {
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  let failed = 0;
  for (let r = 0; r <= rounds; r++) {
    const k = r % cases.length;
    for (const c of [...cases.slice(k), ...cases.slice(0, k)]) {
      const t = await timedCpu(c.cmd, c.args, c.env);
      if (t.code !== 0) {
        failed++;
        process.stderr.write(`bench:list: ${c.name} exited ${t.code}: ${t.stderr.trim()}\n`);
      } else if (r > 0) {
        times.get(c.name)?.push(t.ms);
        cpu.get(c.name)?.push(t.cpu);
      }
    }
  }
  const med = (n: string) => median(times.get(n) ?? []);
  const out = [
    `${rounds} interleaved rounds after 1 untimed round, stores empty but for the pulled image; wall ms (through bash), and CPU ms (user + sys):`,
    '',
    '| command | median | min | max | × podman | CPU median | CPU × podman |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of cases) {
    const xs = times.get(c.name) ?? [];
    const verb = c.name.split(' ').slice(1).join(' ');
    const p = c.name.startsWith('tsrun') ? med(`podman ${verb}`) : NaN;
    const cm = median(cpu.get(c.name) ?? []);
    const cp = c.name.startsWith('tsrun') ? median(cpu.get(`podman ${verb}`) ?? []) : NaN;
    out.push(
      `| ${c.name} | ${med(c.name).toFixed(1)} | ${Math.min(...xs).toFixed(1)} | ${Math.max(...xs).toFixed(1)} | ${Number.isNaN(p) ? '' : (med(c.name) / p).toFixed(2)} | ${cm.toFixed(0)} | ${Number.isNaN(cp) ? '' : (cm / cp).toFixed(2)} |`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
  return failed ? 1 : 0;
}

void main()
  .then((code) => {
    process.exitCode = code;
  })
  .finally(async () => {
    await registry.stop();
    removeTree(dir);
    rmSync(runroot, { recursive: true, force: true });
  });
