/**
 * Health-check cost benchmark (a benchmark, not a timed test): what an idle container with a
 * 1 s health check costs, against the same container without one.
 *
 *   tsrun, no check       N × `run -d --network none IMAGE sleep 600`
 *   tsrun, 1 s check      N × the same with `--health-cmd true --health-interval 1s`
 *   podman, per check     `podman healthcheck run` (what podman's systemd timer runs at each
 *                         interval; this machine has no systemd, so the container gets
 *                         `--health-interval disable` — no timer — and the timer's own cost is
 *                         not measured), K times on a container with the same check
 *
 * For tsrun, over a window of W seconds (default 30) after a warm-up: the CPU time of each
 * container's tsrun-monitor including the children it reaped (utime+stime+cutime+cstime of
 * /proc/PID/stat: the runtime's `exec`, runc init and the probe process are all reaped by the
 * monitor), and its memory (VmRSS, Pss). For podman: the CPU time of K `podman healthcheck run`
 * (user+sys of the children, from bash's `times`).
 *
 *   npm run build --silent && node dist/scripts/bench/health.js [--containers 3] [--window 30] [--checks 20]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxLayer } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { option, sh, TSRUN } from './common.js';

const log = (m: string) => process.stderr.write(`bench:health: ${m}\n`);
const TICK = 100; // USER_HZ, as sysconf(_SC_CLK_TCK) on Linux

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17 of stat(5), counted from 3 after the command.
  return [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0) / TICK;
}

function memoryOf(pid: number): { rss: number; pss: number } {
  const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: kb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS'),
    pss: kb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss'),
  };
}

function monitorOf(id: string): number {
  for (const d of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (path.basename(cmd.split('\0')[0] ?? '') === 'tsrun-monitor' && cmd.includes(id)) return Number(d);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no monitor for ${id}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const n = Number(option('--containers', '3'));
  const windowS = Number(option('--window', '30'));
  const checks = Number(option('--checks', '20'));
  const work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-health-'));
  const root = path.join(work, 'tsrun');
  const proot = path.join(work, 'podman');
  const prun = path.join(work, 'podman-run');
  // As scripts/bench/run.ts runs podman on this machine (no systemd, hybrid cgroups: runc).
  const podman = [
    ...['--root', proot, '--runroot', prun, '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs'],
    ...['--events-backend', 'file', '--runtime', 'runc'],
  ];
  const reg = await startRegistry({ auth: 'anonymous' });
  const out: string[] = [];
  let failed = false;
  try {
    await pushImage(reg, 'bench/busybox', '1', {
      layers: [busyboxLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    const image = `${reg.host}/bench/busybox:1`;
    const ok = (what: string, r: { status: number | null; stdout: string; stderr: string }) => {
      if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
      return r.stdout.trim();
    };
    ok('tsrun pull', sh(TSRUN, ['--root', root, 'pull', '-q', image]));
    const cases = { 'no check': [] as string[], '1 s check': ['--health-cmd', 'true', '--health-interval', '1s'] };
    const ids: Record<string, string[]> = {};
    for (const [name, flags] of Object.entries(cases)) {
      ids[name] = Array.from({ length: n }, () =>
        ok('tsrun run', sh(TSRUN, ['--root', root, 'run', '-d', '--network', 'none', ...flags, image, 'sleep', '600'])),
      );
    }
    log(`${2 * n} containers started; warming up 5 s, then a ${windowS} s window`);
    await sleep(5000);
    const pids = Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, v.map(monitorOf)]));
    const before = Object.fromEntries(Object.entries(pids).map(([k, v]) => [k, v.map(cpuSeconds)]));
    const t0 = Date.now();
    await sleep(windowS * 1000);
    const secs = (Date.now() - t0) / 1000;
    out.push(
      `Idle container (\`sleep 600\`, --network none), ${n} per case, CPU over ${secs.toFixed(0)} s (the monitor and every child it reaped), monitor memory at the end:`,
      '',
      '| tsrun | CPU % of one core | CPU ms per second (≈ per check) | monitor VmRSS KiB | monitor Pss KiB |',
      '|---|---:|---:|---:|---:|',
    );
    for (const [name, ps] of Object.entries(pids)) {
      const cpu = ps.map((p, i) => cpuSeconds(p) - (before[name]?.[i] ?? 0));
      const mean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
      const mem = ps.map(memoryOf);
      const perCheck = name === 'no check' ? '–' : ((mean * 1000) / secs).toFixed(1);
      out.push(
        `| ${name} | ${((mean / secs) * 100).toFixed(2)} | ${perCheck} | ${(mem.reduce((a, m) => a + m.rss, 0) / mem.length).toFixed(0)} | ${(mem.reduce((a, m) => a + m.pss, 0) / mem.length).toFixed(0)} |`,
      );
    }
    for (const v of Object.values(ids)) sh(TSRUN, ['--root', root, 'rm', '-f', ...v]);

    // podman: the cost of each check its timer would run.
    const pulled = sh('podman', [...podman, 'pull', '-q', '--tls-verify=false', image]);
    const started =
      pulled.status === 0
        ? sh('podman', [
            ...podman,
            'run',
            '-d',
            '--network',
            'none',
            '--ulimit',
            'nofile=1024:20000',
            '--ulimit',
            'nproc=4096:4096',
            '--health-cmd',
            'true',
            '--health-interval',
            'disable',
            image,
            'sleep',
            '600',
          ])
        : pulled;
    if (started.status === 0) {
      const id = started.stdout.trim();
      const loop = `for i in $(seq ${checks}); do podman ${podman.join(' ')} healthcheck run ${id} >/dev/null || exit 1; done; times`;
      const r = sh('bash', ['-c', loop]);
      if (r.status === 0) {
        // `times`: the shell's user/sys, then its children's ("0m1.234s 0m0.567s").
        const lines = r.stdout.trim().split('\n');
        const [u, s] = (lines[1] ?? '').split(' ').map((t) => {
          const m = /(\d+)m([\d.]+)s/.exec(t);
          return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
        }) as [number, number];
        out.push(
          '',
          `podman: \`podman healthcheck run\` × ${checks}: ${(((u + s) * 1000) / checks).toFixed(1)} ms CPU per check (user+sys of the command and its children), i.e. ${(((u + s) / checks) * 100).toFixed(2)} % of a core at a 1 s interval, before systemd's timer.`,
        );
      } else {
        out.push('', `podman: healthcheck run failed: ${r.stderr.trim().split('\n').pop()}`);
      }
      sh('podman', [...podman, 'rm', '-f', '-t', '0', id]);
    } else {
      out.push('', `podman: not measured (${started.stderr.trim().split('\n').pop()})`);
    }
    process.stdout.write(out.join('\n') + '\n');
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    await reg.stop();
    sh('podman', [...podman, 'system', 'reset', '-f']);
    sh('umount', ['-R', proot]);
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
