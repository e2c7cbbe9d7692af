/**
 * Warm-run benchmark (a benchmark, not a timed test): `run --rm IMAGE true`, tsrun vs podman,
 * plus the memory each tool's monitor costs per detached container.
 *
 * What it measures, interleaved in one process with a rotating order per round, after one
 * untimed warm-up round (the image is already in both stores: "warm"):
 *
 *   tsrun   bin/tsrun.js --root R run --rm --network none IMAGE true (the executable, as users run it)
 *   podman  podman --root R --runroot RR --storage-driver overlay --cgroup-manager cgroupfs
 *             --events-backend file --runtime runc run --rm --network none
 *             --ulimit nofile=1024:20000 --ulimit nproc=4096:4096 IMAGE true
 *   floor   runc run -b BUNDLE (a bundle prepared once: what the OCI runtime alone costs)
 *   node    node -e 0 without NODE_EXTRA_CA_CERTS, as bin/tsrun.js starts Node (the floor of any
 *           Node CLI)
 *   base    with --base PATH: another tsrun's bin/tsrun.js (e.g. a build of main), the same run
 *           command on the same store, to compare two builds in one interleaved run
 *
 * Both tools use runc and no network (what networking adds is scripts/bench/net.ts's business). Podman needs the
 * flags above on this kind of machine: no systemd (cgroupfs, file events), crun refuses the
 * hybrid cgroup layout, and podman's default rlimits (nofile 1048576, nproc = the hard limit)
 * fail to apply here ("error setting rlimit type 6/7: operation not permitted").
 *
 * Memory: N (default 5) containers `run -d IMAGE sleep 300` per tool; for each, the monitor's
 * VmRSS and Pss (/proc/PID/smaps_rollup): tsrun-monitor for tsrun, conmon for podman. Then
 * they are removed.
 *
 * The image is the test fixture (Debian's busybox-static as a one-layer image) pushed to a fresh
 * loopback docker-registry. Every timed run is checked (exit status 0); a failed run is never
 * reported as a time and makes the exit status 1. Everything is removed at the end.
 *
 *   npm run bench:run                           # 20 rounds, Markdown on stdout
 *   npm run bench:run -- --rounds 40 --json out.json --monitors 5
 *   node dist/scripts/bench/run.js --base /path/to/other/bin/tsrun.js --tools tsrun,base,podman
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxLayer } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { median, option, sh, timed, TSRUN, type As } from './common.js';

/** The target for `--network none` (the default network's, 0.6, is bench:net's business). */
const TARGET_RATIO = 0.7;
type Tool = 'tsrun' | 'podman' | 'floor' | 'node' | 'base';

const log = (m: string) => process.stderr.write(`bench:run: ${m}\n`);

function memoryOf(pid: number): { rss: number; pss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb(status, 'VmRSS'), pss: kb(rollup, 'Pss') };
}

function pidsOf(exe: string, needle: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return path.basename(cmd.split('\0')[0] ?? '') === exe && cmd.includes(needle);
      } catch {
        return false;
      }
    });
}

async function main(): Promise<number> {
  const rounds = Number(option('--rounds', '20'));
  const monitors = Number(option('--monitors', '5'));
  const base = option('--base', '');
  const tools = option('--tools', `tsrun,${base ? 'base,' : ''}podman,floor,node`).split(',') as Tool[];
  if (tools.includes('base') && !base) throw new Error('--tools base needs --base PATH');
  const work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-run-'));
  const root = path.join(work, 'tsrun');
  const proot = path.join(work, 'podman');
  const prun = path.join(work, 'podman-run');
  const reg = await startRegistry({ auth: 'anonymous' });
  let failed = false;
  try {
    await pushImage(reg, 'bench/busybox', '1', {
      layers: [busyboxLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    const image = `${reg.host}/bench/busybox:1`;
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
    const limits = ['--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=4096:4096'];
    const check = (what: string, r: { status: number | null; stderr: string }) => {
      if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
    };
    check('tsrun pull', sh(TSRUN, ['--root', root, 'pull', '-q', image]));
    check('podman pull', sh('podman', [...podman, 'pull', '-q', '--tls-verify=false', image]));
    // The floor's bundle: what tsrun creates, run directly by runc.
    const created = sh(TSRUN, ['--root', root, 'create', '--network', 'none', image, 'true']);
    check('tsrun create', created);
    const bundle = path.join(root, 'containers', created.stdout.trim(), 'bundle');
    const floorRoot = path.join(work, 'runc');

    // Node as bin/tsrun.js starts it: without NODE_EXTRA_CA_CERTS (read lazily, src/util/ca.ts).
    const { NODE_EXTRA_CA_CERTS: _extra, ...bareEnv } = process.env;
    const argv: Record<Tool, [string, string[], As?]> = {
      tsrun: [TSRUN, ['--root', root, 'run', '--rm', '--network', 'none', image, 'true']],
      podman: ['podman', [...podman, 'run', '--rm', '--network', 'none', ...limits, image, 'true']],
      floor: ['runc', ['--root', floorRoot, 'run', '-b', bundle, 'floor']],
      node: [process.execPath, ['-e', '0'], { env: bareEnv }],
      base: [base, ['--root', root, 'run', '--rm', '--network', 'none', image, 'true']],
    };
    const times: Record<string, number[]> = Object.fromEntries(tools.map((t) => [t, []]));
    for (let round = -1; round < rounds; round++) {
      const order = tools.map((_, i) => tools[(i + Math.max(round, 0)) % tools.length] as Tool);
      for (const tool of order) {
        const [cmd, args, as] = argv[tool];
        const r = await timed(cmd, args, as);
        if (r.code !== 0) {
          log(`${tool} round ${round}: exit ${r.code}: ${r.stderr.trim()}`);
          failed = true;
          continue;
        }
        if (round >= 0) times[tool]?.push(r.ms);
      }
      if (round >= 0) log(`round ${round + 1}/${rounds}`);
    }
    sh(TSRUN, ['--root', root, 'rm', '-f', created.stdout.trim()]);

    // Monitor memory per detached container.
    const memory: Record<string, { rss: number; pss: number; n: number }> = {};
    if (tools.includes('tsrun')) {
      const ids = Array.from({ length: monitors }, () =>
        sh(TSRUN, ['--root', root, 'run', '-d', image, 'sleep', '300']).stdout.trim(),
      );
      const ms = ids.flatMap((id) => pidsOf('tsrun-monitor', id)).map(memoryOf);
      memory.tsrun = {
        rss: ms.reduce((a, m) => a + m.rss, 0) / ms.length,
        pss: ms.reduce((a, m) => a + m.pss, 0) / ms.length,
        n: ms.length,
      };
      sh(TSRUN, ['--root', root, 'rm', '-f', ...ids]);
    }
    if (tools.includes('podman')) {
      const ids = Array.from({ length: monitors }, () =>
        sh('podman', [...podman, 'run', '-d', '--network', 'none', ...limits, image, 'sleep', '300']).stdout.trim(),
      );
      const ms = ids.flatMap((id) => pidsOf('conmon', id)).map(memoryOf);
      memory.podman = {
        rss: ms.reduce((a, m) => a + m.rss, 0) / ms.length,
        pss: ms.reduce((a, m) => a + m.pss, 0) / ms.length,
        n: ms.length,
      };
      sh('podman', [...podman, 'rm', '-f', '-t', '0', ...ids]);
    }

    const med = Object.fromEntries(Object.entries(times).map(([t, xs]) => [t, xs.length ? median(xs) : NaN]));
    const out: string[] = [];
    out.push(
      `Warm \`run --rm IMAGE true\`, ${rounds} interleaved rounds (median wall time, ms; ratio to podman's median):`,
      '',
    );
    out.push('| tool | median | min | max | × podman |', '|---|---:|---:|---:|---:|');
    for (const t of tools) {
      const xs = times[t] ?? [];
      out.push(
        `| ${t} | ${(med[t] as number).toFixed(1)} | ${Math.min(...xs).toFixed(1)} | ${Math.max(...xs).toFixed(1)} | ${med.podman ? ((med[t] as number) / med.podman).toFixed(2) : '–'} |`,
      );
    }
    if (med.podman && med.tsrun) {
      const ratio = med.tsrun / med.podman;
      out.push(
        '',
        `tsrun/podman = ${ratio.toFixed(2)} (target ≤ ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'met' : 'not met'})`,
      );
    }
    out.push(
      '',
      `Monitor memory per detached container (mean of ${monitors}):`,
      '',
      '| monitor | VmRSS KiB | Pss KiB |',
      '|---|---:|---:|',
    );
    for (const [t, m] of Object.entries(memory))
      out.push(
        `| ${t === 'tsrun' ? 'tsrun-monitor' : 'conmon'} (${m.n}) | ${m.rss.toFixed(0)} | ${m.pss.toFixed(0)} |`,
      );
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json', '');
    if (json) writeFileSync(json, JSON.stringify({ rounds, times, medians: med, memory }, null, 1));
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    await reg.stop();
    sh('podman', ['--root', proot, '--runroot', prun, '--storage-driver', 'overlay', 'system', 'reset', '-f']);
    sh('umount', ['-R', proot]);
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
