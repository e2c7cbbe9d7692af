/**
 * Network benchmark (a benchmark, not a timed test): tsrun vs podman in one run.
 *
 * 1. Throughput through a published port: each tool runs busybox httpd serving a SIZE MiB file
 *    (`run -d -p PORT:80`); curl on the host downloads it from 127.0.0.1:PORT and from the
 *    host's own address, interleaved, ROUNDS times each. The file is made inside the container
 *    (dd in its writable layer), so both tools serve identical bytes from the page cache.
 *    "direct" is tsrun's container reached at its bridge address (no DNAT): the floor for the
 *    bridge path.
 * 2. What networking adds to `run --rm IMAGE true`: `--network none`, the bridge, the bridge
 *    with `-p 80`, and a user network (`network create`: its own bridge, isolation rules and a
 *    DNS server, aardvark-dns for both tools), per tool, interleaved, median wall time.
 *
 * Both tools use runc and iptables DNAT in the kernel (tsrun: its own chain per container, one
 * iptables-restore, network/published.ts; podman 4.3
 * here: netavark). Podman's flags are the ones the run benchmark explains (no systemd, hybrid
 * cgroups, rlimits). The image is the test fixture pushed to a loopback docker-registry.
 *
 *   npm run bench:net                          # 1 GiB, 21 download rounds, 15 run rounds
 *   npm run bench:net -- --size 1024 --rounds 8 --run-rounds 20 --json out.json
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { busyboxLayer } from '../../test/e2e/fixtures.js';
import { pushImage } from '../../test/helpers/push.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { freePort, hostAddress } from '../../test/helpers/net.js';
import { median, option, sh, timed, TSRUN } from './common.js';

const TARGET_RATIO = 0.9;
const NET = 'tsrun-bench-net';

const log = (m: string) => process.stderr.write(`bench:net: ${m}\n`);

function must(what: string, r: { status: number | null; stdout: string; stderr: string }): string {
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Download url to /dev/null with curl; MB/s (10^6 bytes), checking the size. */
function download(url: string, bytes: number): number {
  const r = sh('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url]);
  const [size, secs] = must(`curl ${url}`, r).split(' ').map(Number) as [number, number];
  if (size !== bytes) throw new Error(`curl ${url}: got ${size} bytes, expected ${bytes}`);
  return bytes / 1e6 / secs;
}

async function waitServing(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (sh('curl', ['-s', '-o', '/dev/null', '--fail', '-r', '0-0', url]).status === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

async function main(): Promise<number> {
  const sizeMiB = Number(option('--size', '1024'));
  const rounds = Number(option('--rounds', '21'));
  const runRounds = Number(option('--run-rounds', '15'));
  const bytes = sizeMiB * 1024 * 1024;
  const work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-net-'));
  const root = path.join(work, 'tsrun');
  const podman = [
    '--root',
    path.join(work, 'podman'),
    '--runroot',
    path.join(work, 'podman-run'),
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
  const ts = (args: string[]) => sh(TSRUN, ['--root', root, ...args]);
  const pm = (args: string[]) => sh('podman', [...podman, ...args]);
  const reg = await startRegistry({ auth: 'anonymous' });
  let failed = false;
  const ids: { tsrun?: string; podman?: string } = {};
  let nets = false;
  try {
    await pushImage(reg, 'bench/busybox', '1', {
      layers: [busyboxLayer()],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    const image = `${reg.host}/bench/busybox:1`;
    must('tsrun pull', ts(['pull', '-q', image]));
    must('podman pull', pm(['pull', '-q', '--tls-verify=false', image]));

    // 1. Throughput.
    const serve = [
      'sh',
      '-c',
      `mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=${sizeMiB} 2>/dev/null && exec httpd -f -p 80 -h /www`,
    ];
    const port = { tsrun: await freePort(), podman: 0 };
    ids.tsrun = must('tsrun run -d', ts(['run', '-d', '-p', `${port.tsrun}:80`, image, ...serve]));
    port.podman = await freePort();
    ids.podman = must('podman run -d', pm(['run', '-d', '-p', `${port.podman}:80`, ...limits, image, ...serve]));
    const direct = must('tsrun inspect', ts(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', ids.tsrun]));
    const host = hostAddress();
    const urls: Record<string, string> = {
      'tsrun 127.0.0.1': `http://127.0.0.1:${port.tsrun}/big`,
      'podman 127.0.0.1': `http://127.0.0.1:${port.podman}/big`,
      [`tsrun ${host}`]: `http://${host}:${port.tsrun}/big`,
      [`podman ${host}`]: `http://${host}:${port.podman}/big`,
      'tsrun direct (no DNAT)': `http://${direct}:80/big`,
    };
    for (const u of Object.values(urls)) await waitServing(u);
    const speeds: Record<string, number[]> = Object.fromEntries(Object.keys(urls).map((k) => [k, []]));
    const keys = Object.keys(urls);
    for (let round = -1; round < rounds; round++) {
      for (let i = 0; i < keys.length; i++) {
        const k = keys[(i + Math.max(round, 0)) % keys.length] as string;
        const mbs = download(urls[k] as string, bytes);
        if (round >= 0) speeds[k]?.push(mbs);
      }
      if (round >= 0) log(`download round ${round + 1}/${rounds}`);
    }
    ts(['rm', '-f', ids.tsrun]);
    pm(['rm', '-f', '-t', '0', ids.podman]);
    delete ids.tsrun;
    delete ids.podman;

    // 2. What networking adds to run --rm.
    const variants: Record<string, [string, string[]]> = {
      'tsrun --network none': [TSRUN, ['--root', root, 'run', '--rm', '--network', 'none', image, 'true']],
      'tsrun bridge': [TSRUN, ['--root', root, 'run', '--rm', image, 'true']],
      'tsrun bridge -p': [TSRUN, ['--root', root, 'run', '--rm', '-p', '80', image, 'true']],
      'podman --network none': ['podman', [...podman, 'run', '--rm', '--network', 'none', ...limits, image, 'true']],
      'podman bridge': ['podman', [...podman, 'run', '--rm', ...limits, image, 'true']],
      'podman bridge -p': ['podman', [...podman, 'run', '--rm', '-p', '80', ...limits, image, 'true']],
      'tsrun user network': [TSRUN, ['--root', root, 'run', '--rm', '--network', NET, image, 'true']],
      'podman user network': ['podman', [...podman, 'run', '--rm', '--network', NET, ...limits, image, 'true']],
    };
    // A user network each (a bridge, isolation rules and aardvark-dns names for both tools).
    must('tsrun network create', ts(['network', 'create', NET]));
    must('podman network create', pm(['network', 'create', NET]));
    nets = true;
    const vkeys = Object.keys(variants);
    const times: Record<string, number[]> = Object.fromEntries(vkeys.map((k) => [k, []]));
    for (let round = -1; round < runRounds; round++) {
      for (let i = 0; i < vkeys.length; i++) {
        const k = vkeys[(i + Math.max(round, 0)) % vkeys.length] as string;
        const [cmd, args] = variants[k] as [string, string[]];
        const r = await timed(cmd, args);
        if (r.code !== 0) {
          log(`${k}: exit ${r.code}: ${r.stderr.trim()}`);
          failed = true;
        } else if (round >= 0) times[k]?.push(r.ms);
      }
      if (round >= 0) log(`run round ${round + 1}/${runRounds}`);
    }

    const out: string[] = [];
    const mt = (k: string) => median(speeds[k] ?? []);
    out.push(
      `Download of a ${sizeMiB} MiB file from busybox httpd in the container, ${rounds} interleaved rounds (median MB/s):`,
      '',
    );
    out.push('| path | median MB/s | min | max |', '|---|---:|---:|---:|');
    for (const k of keys) {
      const xs = speeds[k] ?? [];
      out.push(`| ${k} | ${mt(k).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`);
    }
    const r1 = mt('tsrun 127.0.0.1') / mt('podman 127.0.0.1');
    const r2 = mt(`tsrun ${host}`) / mt(`podman ${host}`);
    out.push(
      '',
      `tsrun/podman throughput: ${r1.toFixed(2)} via 127.0.0.1, ${r2.toFixed(2)} via ${host} (target ≥ ${TARGET_RATIO}: ${Math.min(r1, r2) >= TARGET_RATIO ? 'met' : 'not met'})`,
    );
    out.push('', `\`run --rm IMAGE true\` by network, ${runRounds} interleaved rounds (median ms):`, '');
    out.push('| variant | median ms | + over --network none |', '|---|---:|---:|');
    for (const k of vkeys) {
      const base = median(times[`${k.split(' ')[0]} --network none`] ?? []);
      const m = median(times[k] ?? []);
      out.push(`| ${k} | ${m.toFixed(0)} | ${k.endsWith('none') ? '–' : `+${(m - base).toFixed(0)}`} |`);
    }
    process.stdout.write(out.join('\n') + '\n');
    const json = option('--json', '');
    if (json) writeFileSync(json, JSON.stringify({ sizeMiB, rounds, speeds, times }, null, 1));
  } catch (err) {
    log((err as Error).message);
    failed = true;
  } finally {
    if (ids.tsrun) ts(['rm', '-f', ids.tsrun]);
    if (ids.podman) pm(['rm', '-f', '-t', '0', ids.podman]);
    if (nets) {
      ts(['network', 'rm', NET]);
      pm(['network', 'rm', NET]);
    }
    await reg.stop();
    pm(['system', 'reset', '-f']);
    sh('umount', ['-R', path.join(work, 'podman')]);
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
