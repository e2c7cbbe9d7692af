/**
 * Rootless benchmark (a benchmark, not a timed test): tsrun and podman, both as the same
 * unprivileged user (`tsrun-bench`, made by this script with a subordinate id range), in one
 * process, interleaved with the order reversed every round, after one untimed warm-up round.
 *
 *   pull        cold pull of a 2-layer, ~120 MB image (busybox + this machine's node and npm,
 *               uncompressed) from a loopback registry; the image is removed before each pull
 *   run none    warm `run --rm --network none IMAGE true`
 *   run net     warm `run --rm IMAGE true` on each tool's default rootless network
 *               (slirp4netns for both)
 *
 *   tsrun    node bin/tsrun.js --root ~/tsrun-bench …      (enters its user namespace itself)
 *   podman   podman --root ~/podman-bench --runroot /tmp/podman-bench-UID --storage-driver overlay
 *              --cgroup-manager cgroupfs --events-backend file --runtime runc …
 *              (run adds --ulimit nofile=1024:20000 --ulimit nproc=4096:4096, see run.ts)
 *
 * Run as root (it makes the user and the registry). Every timed command is checked (exit 0); a
 * failure is never reported as a time and makes the exit status 1.
 * TSRUN_BENCH_TSRUN=/other/checkout/bin/tsrun.js compares another build in the same run (as
 * "tsrun-b", with its own store; both builds share the user's rootless namespace). The user must
 * be able to read that checkout.
 *
 *   npm run bench:rootless                     # 10 rounds (5 pulls), Markdown on stdout
 *   npm run bench:rootless -- --rounds 20 --pulls 10 --json out.json
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { busyboxLayer, nodeLayer } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { ensureUser } from '../../test/helpers/users.js';
import { median, option, sh, timed, TSRUN, type As } from './common.js';

type Case = 'pull' | 'run none' | 'run net';
type Tool = 'tsrun' | 'tsrun-b' | 'podman';
const log = (m: string) => process.stderr.write(`bench:rootless: ${m}\n`);

async function main(): Promise<number> {
  const rounds = Number(option('--rounds', '10'));
  const pulls = Number(option('--pulls', '5'));
  const user = ensureUser('tsrun-bench', true, '400000-465535');
  const as: As = {
    uid: user.uid,
    gid: user.gid,
    cwd: user.home,
    env: { HOME: user.home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
  };
  const root = path.join(user.home, 'tsrun-bench');
  const other = process.env['TSRUN_BENCH_TSRUN'];
  const tools: Tool[] = other ? ['tsrun', 'podman', 'tsrun-b'] : ['tsrun', 'podman'];
  const tsrunOf = (tool: Tool): [string, string] =>
    tool === 'tsrun-b' ? [other as string, `${root}-b`] : [TSRUN, root];
  const proot = path.join(user.home, 'podman-bench');
  const prun = `/tmp/podman-bench-${user.uid}`;
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
  const reg = await startRegistry({ auth: 'anonymous' });
  let failed = false;
  const times: Record<string, number[]> = {};
  const record = (k: string, ms: number) => {
    (times[k] ??= []).push(ms);
  };
  try {
    await pushImage(reg, 'bench/small', '1', {
      layers: [busyboxLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    await pushImage(reg, 'bench/node', '1', {
      layers: [busyboxLayer(), nodeLayer()],
      config: { config: { Cmd: ['node'], Env: ['PATH=/usr/local/bin:/bin'] } },
    });
    const small = `${reg.host}/bench/small:1`;
    const big = `${reg.host}/bench/node:1`;
    const check = (what: string, r: { status: number | null; stderr: string }) => {
      if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
    };
    check('tsrun pull', sh(TSRUN, ['--root', root, 'pull', '-q', small], as));
    if (other) check('tsrun-b pull', sh(other, ['--root', `${root}-b`, 'pull', '-q', small], as));
    check('podman pull', sh('podman', [...podman, 'pull', '-q', '--tls-verify=false', small], as));

    const argv = (tool: Tool, c: Case): [string, string[]] => {
      const net = c === 'run none' ? ['--network', 'none'] : [];
      if (tool !== 'podman') {
        const [bin, r] = tsrunOf(tool);
        return c === 'pull'
          ? [bin, ['--root', r, 'pull', '-q', big]]
          : [bin, ['--root', r, 'run', '--rm', ...net, small, 'true']];
      }
      return c === 'pull'
        ? ['podman', [...podman, 'pull', '-q', '--tls-verify=false', big]]
        : ['podman', [...podman, 'run', '--rm', ...net, ...limits, small, 'true']];
    };
    const removeBig = (tool: Tool) =>
      tool === 'podman'
        ? sh('podman', [...podman, 'rmi', big], as)
        : sh(tsrunOf(tool)[0], ['--root', tsrunOf(tool)[1], 'rmi', big], as);

    for (let round = -1; round < rounds; round++) {
      // Every tool in every place of the order by turns (two tools: reversed every round).
      const k = ((round % tools.length) + tools.length) % tools.length;
      const order = [...tools.slice(k), ...tools.slice(0, k)];
      const cases: Case[] = round < pulls ? ['pull', 'run none', 'run net'] : ['run none', 'run net'];
      for (const c of cases) {
        for (const tool of order) {
          const [cmd, args] = argv(tool, c);
          const r = await timed(cmd, args, as);
          if (r.code !== 0) {
            log(`${tool} ${c} round ${round}: exit ${r.code}: ${r.stderr.trim()}`);
            failed = true;
          } else if (round >= 0) record(`${tool} ${c}`, r.ms);
          if (c === 'pull') removeBig(tool);
        }
      }
      if (round >= 0) log(`round ${round + 1}/${rounds}`);
    }
    const med = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, median(xs)]));
    const out = [
      `Rootless, as one unprivileged user; ${rounds} interleaved rounds (${pulls} pulls), median wall time in ms:`,
      '',
      `| case | tsrun | podman | × podman |${other ? ' tsrun-b | tsrun-b × podman |' : ''}`,
      `|---|---:|---:|---:|${other ? '---:|---:|' : ''}`,
    ];
    for (const c of ['pull', 'run none', 'run net'] as Case[]) {
      const t = med[`tsrun ${c}`] as number;
      const p = med[`podman ${c}`] as number;
      const label =
        c === 'pull'
          ? 'cold pull, 2 layers, ~120 MB'
          : c === 'run none'
            ? '`run --rm --network none IMAGE true`'
            : '`run --rm IMAGE true` (slirp4netns)';
      const b = med[`tsrun-b ${c}`] as number;
      const bCols = other ? ` ${b.toFixed(0)} | ${(b / p).toFixed(2)} |` : '';
      out.push(`| ${label} | ${t.toFixed(0)} | ${p.toFixed(0)} | ${(t / p).toFixed(2)} |${bCols}`);
    }
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json', '');
    if (json) writeFileSync(json, JSON.stringify({ rounds, pulls, times, medians: med }, null, 1));
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    await reg.stop();
    sh('podman', [...podman, 'system', 'reset', '-f'], as);
    const pause = sh('cat', [`/tmp/tsrun-${user.uid}/pause.pid`]).stdout.trim();
    if (pause) sh('kill', [pause]);
    for (const d of [root, `${root}-b`, proot, prun, `/tmp/tsrun-${user.uid}`])
      rmSync(d, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
