/**
 * SIGKILL at random moments (issue 19), shared by the long script (scripts/chaos/kill.ts) and the
 * CI-sized suite (test/e2e/chaos.test.ts): each operation — pull, build, run -d, run --rm
 * (attached), rm -f, rmi, push, system prune, and a container's monitor — is first timed unkilled
 * a few times with --debug (when each event line comes, when it ends); each kill is then drawn
 * uniformly over that timeline and placed as "N ms after the k-th event", so it falls at the same
 * stage of the work however long the earlier stages took this time (operations without events:
 * N ms after the spawn). A kill lands when it meets the operation in progress: past Node's
 * start-up (an event seen) and before its end. Each point is tried until one lands (up to
 * `attemptsPerPoint`); the result counts attempts and landed kills per operation. After every
 * attempt, landed or not:
 *
 *   - `ps -a` and `images` work, and report no damaged file;
 *   - no temp entry of a dead process survives that next command (tmp/, `writeFileAtomic` temps);
 *   - every image listed has its blobs and layers, and runs; every container has its layers;
 *   - `rm -f` of every container and `system prune -f --volumes` leave no record, name, mount,
 *     state, runtime container, network attachment, namespace, veth, lease, iptables rule or
 *     volume (run -d, run --rm and rm -f's containers have an anonymous volume).
 *
 * An operation still running after two minutes is a failure ("hung"). A seeded generator (SEED)
 * makes the draws repeatable (the moments, not the machine's timing). Returns a line per failed
 * check.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, tsrun, type CliResult } from './cli.js';
import { leftovers, runDir } from './containers.js';
import { sleep } from '../../src/util/concurrency.js';
import { pidAlive } from '../../src/util/fs.js';
import { fingerprintOf } from '../../src/store/verify.js';

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
  /** Landed kills wanted per operation. */
  points: number;
  /** Unkilled runs per operation that give its timeline (default 3). */
  calibrate?: number;
  /** Tries per point before moving on without a landed kill (default 8: rmi, ~100 ms, misses often). */
  attemptsPerPoint?: number;
  ops?: readonly Operation[];
  seed?: number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  /** Kills tried per operation, and those that landed (the operation was in progress). */
  attempts: Record<string, number>;
  landed: Record<string, number>;
  failures: string[];
  seconds: number;
}

/** An operation unkilled: when each --debug event came and when it ended (ms from the spawn). */
interface Timeline {
  events: number[];
  end: number;
}
/** Where to kill: `offset` ms after the `anchor`-th event (0: the spawn). */
interface Plan {
  anchor: number;
  offset: number;
}
interface Launch extends Timeline {
  killed: boolean;
  landed: boolean;
}

/** Longer than this, an operation counts as hung (a failure) and is killed. */
const HANG_MS = 120_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** The median timeline of unkilled runs (the events all of them had). */
function timeline(runs: Launch[]): Timeline {
  const n = Math.min(...runs.map((r) => r.events.length));
  const events = Array.from({ length: n }, (_, k) => median(runs.map((r) => r.events[k] ?? 0)));
  for (let k = 1; k < n; k++) events[k] = Math.max(events[k] ?? 0, events[k - 1] ?? 0);
  return { events, end: Math.max(median(runs.map((r) => r.end)), events.at(-1) ?? 0) };
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
  const hung: string[] = [];
  let startup = 0;
  let serial = 0;

  /**
   * A moment drawn uniformly over the operation's life after Node's start-up, as the offset from
   * the last event before it: anchored on the events, a kill falls at the same stage of the work
   * however long the stages before took this time. The life starts at the first event or at
   * start-up, whichever is first (a kill before both cannot land). Only an operation without
   * events starts at half its length at the latest: rmi's work is the last ~15 ms of a ~270 ms
   * process, so draws from half its length landed about once in twenty (a loaded CI-sized run
   * missed all twenty).
   */
  function draw(t: Timeline): Plan {
    const first = t.events[0];
    const from = first === undefined ? Math.min(startup, t.end / 2) : Math.min(startup, first);
    const u = from + rand() * (t.end - from);
    let anchor = 0;
    while (anchor < t.events.length && (t.events[anchor] ?? 0) <= u) anchor++;
    return { anchor, offset: u - (anchor === 0 ? 0 : (t.events[anchor - 1] ?? 0)) };
  }

  /** The monitor: from its appearance to half a second past the end of `run -d` (its steady watch). */
  function monitorPlan(t: Timeline): Plan {
    return { anchor: 1, offset: rand() * (t.end - (t.events[0] ?? 0) + 500) };
  }

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
        return ['run', '-d', '-p', `${20000 + (n % 1000)}:80`, '-v', '/data', o.image, 'sleep', '60'];
      case 'run-rm':
        return ['run', '--rm', '-v', '/data', o.image, 'sh', '-c', 'echo start; sleep 0.2; echo end'];
      case 'rm-f': {
        const id = (await cli(['run', '-d', '-v', '/data', o.image, 'sleep', '60'])).stdout.trim();
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

  /**
   * Run `args` with --debug, noting when each event line comes (ms from the spawn). With a plan,
   * SIGKILL it `offset` ms after its `anchor`-th event (0: the spawn). Landed: the kill met the
   * process still running (it died of it), after it had started (an event seen, or past Node's
   * start-up time).
   */
  async function launch(args: string[], plan?: Plan): Promise<Launch> {
    const t0 = performance.now();
    const events: number[] = [];
    const child = execa(BIN, ['--root', o.root, '--debug', ...args], {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      buffer: false,
      timeout: HANG_MS,
    });
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) =>
      (timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL');
      }, ms));
    if (plan?.anchor === 0) arm(plan.offset);
    let partial = '';
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.startsWith('DEBU ')) continue;
        events.push(performance.now() - t0);
        if (plan && events.length === plan.anchor) arm(plan.offset);
      }
    });
    const r = await child;
    clearTimeout(timer);
    const end = performance.now() - t0;
    if (r.timedOut) hung.push(`${args.join(' ')}: still running after ${HANG_MS / 1000} s`);
    const died = killed && r.signal === 'SIGKILL' && !r.timedOut;
    const started = plan !== undefined && (plan.anchor > 0 || plan.offset >= startup);
    return { events, end, killed, landed: died && started };
  }

  /**
   * The monitor: `run -d`, then SIGKILL the new container's monitor `offset` ms after it appears
   * (its start of the runtime, its recording, its steady watch). Landed: it was running.
   */
  async function launchMonitor(args: string[], offset?: number): Promise<Launch> {
    const t0 = performance.now();
    const before = new Set(monitors());
    const child = execa(BIN, ['--root', o.root, ...args], {
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
      timeout: HANG_MS,
    });
    let exited = false;
    void child.then(() => (exited = true));
    let m: number | undefined;
    let seen = 0;
    while (m === undefined && performance.now() - t0 < HANG_MS) {
      m = monitors().find((p) => !before.has(p));
      if (m === undefined && exited) break;
      if (m === undefined) await sleep(5);
      else seen = performance.now() - t0;
    }
    let landed = false;
    if (m !== undefined && offset !== undefined) {
      if (offset > 0) await sleep(offset);
      if (pidAlive(m)) {
        process.kill(m, 'SIGKILL');
        landed = true;
      }
    }
    const r = await child;
    if (r.timedOut) hung.push(`${args.join(' ')}: still running after ${HANG_MS / 1000} s`);
    return { events: m === undefined ? [] : [seen], end: performance.now() - t0, killed: landed, landed };
  }

  async function check(op: Operation, at: string): Promise<void> {
    const where = `${op} ${at}`;
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
        const dir = path.join(o.root, 'layers', l.chainId.slice(7));
        if (!existsSync(path.join(dir, 'layer.json')))
          fail(`image ${img.id.slice(7, 19)} lacks layer ${l.chainId.slice(7, 19)}`);
        else {
          // Every file of it: a layer half-deleted under its layer.json runs `true` just as well.
          const meta = JSON.parse(readFileSync(path.join(dir, 'layer.json'), 'utf8')) as {
            integrity?: { fingerprint: string };
          };
          const now = await fingerprintOf(path.join(dir, 'diff')).catch((e: Error) => ({ fingerprint: e.message }));
          if (meta.integrity && now.fingerprint !== meta.integrity.fingerprint)
            fail(`image ${img.id.slice(7, 19)}: layer ${l.chainId.slice(7, 19)} is not what was committed`);
        }
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
    // --volumes: the anonymous volumes of containers the crash left (or whose record it lost).
    const prune = await cli(['system', 'prune', '-f', '--volumes']);
    if (prune.code !== 0) fail(`system prune exited ${prune.code}: ${prune.stderr.trim()}`);
    for (const l of await leftovers(o.root)) fail(`left after prune: ${l}`);
    for (const n of readdirSync(path.join(o.root, 'tmp'))) fail(`tmp/${n} left after prune`);
  }

  const ops = o.ops ?? OPERATIONS;
  // Node's start-up and the CLI's module loading: a kill before it has done nothing.
  const boots: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await execa(BIN, ['--version'], { reject: false });
    boots.push(performance.now() - t);
  }
  startup = median(boots);
  log(`start-up: ${Math.round(startup)} ms`);
  // Each operation's timeline, unkilled (the median of a few runs): the kills fall anywhere in it.
  const timelines: Record<string, Timeline> = {};
  const observed: Record<string, Launch[]> = {};
  for (const op of ops) {
    const runs: Launch[] = [];
    observed[op] = runs;
    for (let i = 0; i < Math.max(1, o.calibrate ?? 3); i++) {
      const args = await prepare(op);
      runs.push(op === 'monitor' ? await launchMonitor(args) : await launch(args));
      await check(op, 'unkilled');
    }
    const t = timeline(runs);
    timelines[op] = t;
    log(
      `${op}: ${Math.round(t.end)} ms unkilled, ${t.events.length} events (${runs.map((r) => Math.round(r.end)).join(', ')} ms)`,
    );
  }
  const attempts: Record<string, number> = {};
  const landed: Record<string, number> = {};
  for (let i = 0; i < o.points; i++) {
    for (const op of ops) {
      for (let a = 0; a < (o.attemptsPerPoint ?? 8); a++) {
        const t = timelines[op] as Timeline;
        const plan = op === 'monitor' ? monitorPlan(t) : draw(t);
        const args = await prepare(op);
        const r = op === 'monitor' ? await launchMonitor(args, plan.offset) : await launch(args, plan);
        attempts[op] = (attempts[op] ?? 0) + 1;
        if (r.landed) landed[op] = (landed[op] ?? 0) + 1;
        const at =
          op === 'monitor'
            ? `monitor killed ${Math.round(plan.offset)} ms after it appeared`
            : `killed ${Math.round(plan.offset)} ms after ${plan.anchor === 0 ? 'the spawn' : `event ${plan.anchor}`}`;
        log(`${op}: ${at}: ${r.landed ? 'landed' : 'did not land'} (${Math.round(r.end)} ms)`);
        await check(op, `${at}${r.landed ? '' : ' (did not land)'}`);
        if (r.landed) break;
        // Ended before the kill (the machine is faster now than when timed): a complete timeline,
        // so the draws follow the last few runs' pace.
        if (op !== 'monitor' && !r.killed) {
          const runs = observed[op] ?? [];
          runs.push(r);
          timelines[op] = timeline(runs.slice(-5));
        }
      }
    }
    log(`round ${i + 1}/${o.points}: ${failures.length} failures so far`);
  }
  for (const h of hung) failures.push(`hung: ${h}`);
  return { attempts, landed, failures, seconds: Math.round((Date.now() - t0) / 1000) };
}
