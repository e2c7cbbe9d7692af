/**
 * SIGKILL at random moments (issue 19), shared by the long script (scripts/chaos/kill.ts) and the
 * CI-sized suite (test/e2e/chaos.test.ts): each operation — pull, build, run -d, run --rm
 * (attached), rm -f, rmi, push, system prune, and a container's monitor — is started and killed
 * after a random delay within its own measured duration; then, every time:
 *
 *   - `ps -a` and `images` work, and report no damaged file;
 *   - no temp entry of a dead process survives that next command (tmp/, `writeFileAtomic` temps);
 *   - every image listed has its blobs and layers, and runs; every container has its layers;
 *   - `rm -f` of every container and `system prune -f` leave no record, name, mount, state,
 *     runtime container, network attachment, namespace, veth, lease or iptables rule.
 *
 * A seeded generator (SEED) makes a run repeatable. Returns a line per failed check.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, tsrun, type CliResult } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { sleep } from '../../src/util/concurrency.js';
import { pidAlive } from '../../src/util/fs.js';

export const OPERATIONS = ['pull', 'build', 'run-d', 'run-rm', 'rm-f', 'rmi', 'push', 'prune', 'monitor'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface ChaosOptions {
  root: string;
  /** A small runnable image (kept pulled) and a larger one (pulled, removed, pulled again). */
  image: string;
  bigImage: string;
  /** Where push sends (`<registry>/chaos/pushed`). */
  registry: string;
  /** A build context whose Dockerfile has a RUN step. */
  context: string;
  points: number;
  ops?: readonly Operation[];
  seed?: number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  kills: Record<string, number>;
  failures: string[];
  seconds: number;
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export async function chaos(o: ChaosOptions): Promise<ChaosResult> {
  const t0 = Date.now();
  const rand = prng(o.seed ?? 1);
  const log = o.log ?? (() => {});
  const cli = (args: string[]): Promise<CliResult> => tsrun(args, { root: o.root });
  const failures: string[] = [];
  const kills: Record<string, number> = {};
  let serial = 0;

  /** What must be in place before an operation starts (not killed). */
  async function prepare(op: Operation): Promise<string[]> {
    const n = serial++;
    switch (op) {
      case 'pull':
        await cli(['rmi', '-f', o.bigImage]);
        return ['pull', '-q', o.bigImage];
      case 'build':
        return ['build', '-q', '--no-cache', '-t', `chaos-built:${n}`, o.context];
      case 'run-d':
        return ['run', '-d', '-p', `${20000 + (n % 1000)}:80`, o.image, 'sleep', '60'];
      case 'run-rm':
        return ['run', '--rm', o.image, 'sh', '-c', 'echo start; sleep 0.2; echo end'];
      case 'rm-f': {
        const id = (await cli(['run', '-d', o.image, 'sleep', '60'])).stdout.trim();
        return ['rm', '-f', id];
      }
      case 'rmi':
        await cli(['pull', '-q', o.bigImage]);
        await cli(['tag', o.bigImage, `chaos-tagged:${n}`]);
        return ['rmi', o.bigImage, `chaos-tagged:${n}`];
      case 'push':
        await cli(['pull', '-q', o.bigImage]);
        await cli(['tag', o.bigImage, `${o.registry}/chaos/pushed:${n}`]);
        return ['push', '-q', `${o.registry}/chaos/pushed:${n}`];
      case 'prune':
        await cli(['run', o.image, 'true']);
        await cli(['run', '-d', '-p', `${21000 + (n % 1000)}:80`, o.image, 'sleep', '60']);
        return ['system', 'prune', '-f'];
      case 'monitor':
        return ['run', '-d', '-p', `${22000 + (n % 1000)}:80`, o.image, 'sleep', '60'];
    }
  }

  /** The monitors of this store's containers now running. */
  function monitors(): number[] {
    const out: number[] = [];
    const rd = runDir(o.root);
    for (const id of existsSync(rd) ? readdirSync(rd) : []) {
      try {
        const pid = Number(readFileSync(path.join(rd, id, 'monitor.pid'), 'utf8'));
        if (pid > 0 && pidAlive(pid)) out.push(pid);
      } catch {
        /* none yet */
      }
    }
    return out;
  }

  /** Run `args`, SIGKILL it after `delay` ms (the monitor op: its container's monitor instead). */
  async function runAndKill(op: Operation, args: string[], delay: number): Promise<{ killed: boolean; ms: number }> {
    const start = Date.now();
    const before = new Set(monitors());
    const child = execa(BIN, ['--root', o.root, ...args], {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
    });
    const done = child.then(() => true);
    // A timer that does not outlive the race (the unkilled measurement waits up to 10 minutes).
    let timer: NodeJS.Timeout | undefined;
    const fired = await Promise.race([
      done,
      new Promise<false>((res) => (timer = setTimeout(() => res(false), delay))),
    ]);
    clearTimeout(timer);
    let killed = false;
    if (!fired) {
      if (op === 'monitor') {
        // The first moment the new monitor is there (it appears part-way through `run -d`).
        let m: number | undefined;
        for (let i = 0; i < 500 && m === undefined; i++) {
          m = monitors().find((p) => !before.has(p));
          if (m === undefined) await sleep(10);
        }
        if (m) {
          process.kill(m, 'SIGKILL');
          killed = true;
        }
        await child;
      } else {
        child.kill('SIGKILL');
        killed = true;
        await child.catch(() => {});
      }
    } else if (op === 'monitor') {
      const m = monitors().find((p) => !before.has(p));
      if (m) {
        process.kill(m, 'SIGKILL');
        killed = true;
      }
    }
    return { killed, ms: Date.now() - start };
  }

  async function check(op: Operation, at: number): Promise<void> {
    const where = `${op} killed at ${at} ms`;
    const fail = (what: string) => {
      failures.push(`${where}: ${what}`);
      log(`FAIL ${where}: ${what}`);
    };
    for (const args of [['ps', '-a'], ['images']]) {
      const r = await cli(args);
      if (r.code !== 0) fail(`${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      if (/WARNING: .* is damaged/.test(r.stderr)) fail(`${args.join(' ')} found a damaged file: ${r.stderr.trim()}`);
    }
    // Temp entries of dead processes are gone after that next command.
    for (const n of readdirSync(path.join(o.root, 'tmp'))) {
      const pid = Number(n.split('-')[0]);
      if (!pidAlive(pid)) fail(`temp entry tmp/${n} survived`);
    }
    for (const n of readdirSync(o.root)) if (n.endsWith('.tmp')) fail(`temp file ${n} survived`);
    // Records refer to data that exists.
    const file = JSON.parse(readFileSync(path.join(o.root, 'images.json'), 'utf8')) as {
      images: Record<string, { id: string; manifestDigest: string; layers: { digest: string; chainId: string }[] }>;
    };
    const blob = (d: string) => existsSync(path.join(o.root, 'blobs', 'sha256', d.slice(7)));
    for (const img of Object.values(file.images)) {
      if (!blob(img.id) || !blob(img.manifestDigest)) fail(`image ${img.id.slice(7, 19)} lacks its config or manifest`);
      for (const l of img.layers) {
        if (!blob(l.digest)) fail(`image ${img.id.slice(7, 19)} lacks blob ${l.digest.slice(7, 19)}`);
        if (!existsSync(path.join(o.root, 'layers', l.chainId.slice(7), 'layer.json')))
          fail(`image ${img.id.slice(7, 19)} lacks layer ${l.chainId.slice(7, 19)}`);
      }
      const run = await cli(['run', '--rm', '--network', 'none', img.id, 'true']);
      if (run.code !== 0) fail(`image ${img.id.slice(7, 19)} is listed but does not run: ${run.stderr.trim()}`);
    }
    const ids = (await cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    for (const id of ids) {
      const rec = JSON.parse(readFileSync(path.join(o.root, 'containers', id, 'container.json'), 'utf8')) as {
        layers: string[];
      };
      for (const l of rec.layers)
        if (!existsSync(path.join(o.root, 'layers', l.slice(7))))
          fail(`container ${id.slice(0, 12)} lacks layer ${l.slice(7, 19)}`);
      const rm = await cli(['rm', '-f', id]);
      if (rm.code !== 0) fail(`rm -f ${id.slice(0, 12)} exited ${rm.code}: ${rm.stderr.trim()}`);
    }
    const prune = await cli(['system', 'prune', '-f']);
    if (prune.code !== 0) fail(`system prune exited ${prune.code}: ${prune.stderr.trim()}`);
    for (const l of await leftovers(o.root)) fail(`left after prune: ${l}`);
    for (const n of readdirSync(path.join(o.root, 'tmp'))) fail(`tmp/${n} left after prune`);
  }

  const ops = o.ops ?? OPERATIONS;
  // Each operation's duration, unkilled: the kills fall anywhere within it.
  const duration: Record<string, number> = {};
  for (const op of ops) {
    const r = await runAndKill(op, await prepare(op), 600_000);
    duration[op] = op === 'monitor' ? r.ms + 300 : r.ms;
    await check(op, r.ms);
    log(`${op}: ${r.ms} ms unkilled`);
  }
  for (let i = 0; i < o.points; i++) {
    for (const op of ops) {
      const delay = Math.floor(rand() * 0.9 * (duration[op] ?? 1000));
      const args = await prepare(op);
      const r = await runAndKill(op, args, delay);
      if (r.killed) kills[op] = (kills[op] ?? 0) + 1;
      await check(op, delay);
    }
    log(`round ${i + 1}/${o.points}: ${failures.length} failures so far`);
  }
  return { kills, failures, seconds: Math.round((Date.now() - t0) / 1000) };
}
