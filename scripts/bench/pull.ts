/**
 * Cold-pull benchmark (a benchmark, not a timed test): tsrun vs podman vs the floor.
 *
 * What it measures: the wall-clock time, process start to exit, of pulling one multi-layer image
 * (5 gzip layers, ~150–200 MB compressed, ~500 MB unpacked, real files of this machine) from a
 * loopback registry into an empty store:
 *
 *   tsrun   node bin/tsrun.js --root <fresh dir> pull -q HOST/bench/big:1
 *   podman  podman --root <fresh> --runroot <fresh> --storage-driver overlay pull -q --tls-verify=false HOST/bench/big:1
 *   floor   bash: for every layer at once, `curl -sf http://HOST/v2/bench/big/blobs/<digest> | tar -xzf - -C <fresh>/<n>`,
 *           then wait for all (no verification, no store: the least any puller can do)
 *
 * The three run interleaved in one process, in a rotating order per round, after one untimed
 * warm-up round (binaries and the registry's blob files are then in the page cache for all three
 * alike; every run starts from an empty directory on the same file system, after a `sync`, and
 * its directory is deleted outside the timing). Every run is checked outside the timing (exit
 * status 0, the image is listed by `tsrun images` / `podman images` with the right id, every
 * layer was unpacked); a failed run is never reported as a time and makes the exit status 1.
 *
 * The image is built from local material only (GNU tar of system directories, `gzip -6 -n`),
 * deterministically (`--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner`), and cached in
 * --cache (default /var/tmp/tsrun-bench-cache) under the sha256 of the tar stream, so a rerun only
 * re-reads the directories. It is pushed to a fresh anonymous Debian docker-registry on loopback
 * (test/helpers/registry.ts), which is stopped at the end.
 *
 * Run (as root, from the checkout; needs docker-registry, podman, curl, GNU tar, gzip):
 *
 *   npm run bench:pull                                  # 5 rounds, Markdown table on stdout
 *   npm run bench:pull -- --rounds 9 --json bench.json  # also write the figures as JSON
 *   node dist/scripts/bench/pull.js --serve             # only build + push, print the registry, wait for Ctrl-C
 *
 * Where the pulls write: by default a scratch ext4 (with a journal, mkfs defaults) made in a
 * sparse file under --work and loop-mounted for the run. Why: on an ext4 *without* a journal (this
 * project's VMs' root fs) the inode allocator skips every inode deleted in the last 60–300 s
 * (fs/ext4/ialloc.c recently_deleted()), so creating and deleting ~36k files per run makes each
 * later run slower (sys time grew from 3 s to 19 s for the same curl|tar) and the figures
 * meaningless. --no-scratch-fs writes straight into --work instead.
 *
 * --cycles N: instead of cold pulls into fresh directories, N pull/rmi cycles on one long-lived
 * store per tool, in --work itself (no scratch fs: the point is the root fs as it ages), the
 * tools interleaved in a rotating order per cycle; each pull is timed, then the image is removed
 * (`tsrun rmi`, `podman rmi`, the floor's `rm -rf`) outside the timing, and the next cycle starts
 * right away, as a user's pull/rmi loop would. Reports every cycle's time per tool.
 *
 * Options: --rounds N (5), --cycles N, --json FILE, --cache DIR, --work DIR (default
 * /var/tmp/tsrun-bench-work), --no-scratch-fs, --tools tsrun,podman,floor, --no-warmup,
 * --layer DIR[,DIR...] (repeatable: replaces the default layer set; paths relative to /).
 * Results go to stdout; progress goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { pushImage } from '../../test/helpers/push.js';
import { removeTree } from './common.js';
import { startRegistry, registryBinary, type TestRegistry } from '../../test/helpers/registry.js';
import type { LayerBlob } from '../../test/helpers/tar-writer.js';

/** Repo root: this file runs as dist/scripts/bench/pull.js. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** TSRUN_BENCH_TSRUN: another build's bin/tsrun.js (a before/after comparison in one machine state). */
const TSRUN = process.env['TSRUN_BENCH_TSRUN'] ?? path.join(REPO, 'bin', 'tsrun.js');
const REPO_NAME = 'bench/big';
const TAG = '1';
const TARGET_RATIO = 0.75;

/**
 * Default layers, shaped like a real image: toolchain binaries (few large files), man pages (24k
 * small, already-compressed files), a scripting runtime (many small text files), tools + JS
 * packages, and locales. Directories that do not exist here are skipped with a warning.
 */
const DEFAULT_LAYERS: string[][] = [
  ['usr/lib/gcc'],
  ['usr/share/man'],
  ['usr/lib/python3.11', 'usr/share/perl', 'usr/share/vim'],
  ['usr/lib/git-core', 'usr/lib/node_modules'],
  ['usr/share/locale'],
];

const TAR_FLAGS = ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner'];

type Tool = 'tsrun' | 'podman' | 'floor';
const ALL_TOOLS: Tool[] = ['tsrun', 'podman', 'floor'];

interface Options {
  rounds: number;
  json?: string;
  cache: string;
  work: string;
  tools: Tool[];
  warmup: boolean;
  serve: boolean;
  scratchFs: boolean;
  layers: string[][];
  cycles: number;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench:pull: ${msg}\nusage: node dist/scripts/bench/pull.js [--rounds N] [--json FILE] [--cache DIR] [--work DIR] [--tools tsrun,podman,floor] [--no-warmup] [--no-scratch-fs] [--layer DIR[,DIR...]]... [--serve]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 5,
    cache: process.env['TSRUN_BENCH_CACHE'] ?? '/var/tmp/tsrun-bench-cache',
    work: process.env['TSRUN_BENCH_WORK'] ?? '/var/tmp/tsrun-bench-work',
    tools: [...ALL_TOOLS],
    warmup: true,
    serve: false,
    scratchFs: true,
    layers: [],
    cycles: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--rounds must be a positive integer');
        o.rounds = n;
        break;
      }
      case '--cycles': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--cycles must be a positive integer');
        o.cycles = n;
        o.scratchFs = false;
        break;
      }
      case '--json':
        o.json = value();
        break;
      case '--cache':
        o.cache = value();
        break;
      case '--work':
        o.work = value();
        break;
      case '--tools': {
        const t = value().split(',').filter(Boolean);
        for (const x of t) if (!ALL_TOOLS.includes(x as Tool)) usage(`unknown tool ${x}`);
        o.tools = t as Tool[];
        break;
      }
      case '--no-warmup':
        o.warmup = false;
        break;
      case '--serve':
        o.serve = true;
        break;
      case '--no-scratch-fs':
        o.scratchFs = false;
        break;
      case '--layer':
        o.layers.push(
          value()
            .split(',')
            .map((d) => d.replace(/^\/+/, ''))
            .filter(Boolean),
        );
        break;
      case '-h':
      case '--help':
        usage('help');
      // falls through (usage exits)
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (o.layers.length === 0) o.layers = DEFAULT_LAYERS.map((l) => [...l]);
  return o;
}

const log = (msg: string): void => {
  process.stderr.write(`bench:pull: ${msg}\n`);
};
const mb = (n: number): string => (n / 1e6).toFixed(1);

// ---------------------------------------------------------------------------------------------
// Building the image

interface BenchLayer extends LayerBlob {
  dirs: string[];
  tarSize: number;
  entries: number;
  cached: boolean;
}

/** Counts bytes and hashes a stream passing through. */
function hasher(): Transform & { hex(): string; size(): number } {
  const h = createHash('sha256');
  let size = 0;
  let hex = '';
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      hex = h.digest('hex');
      cb();
    },
  });
  return Object.assign(t, { hex: () => hex, size: () => size });
}

function waitExit(child: ReturnType<typeof spawn>, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${what} exited with ${code ?? signal}: ${stderr().trim()}`));
    });
  });
}

function spawnTar(dirs: string[]) {
  const tar = spawn('tar', ['-C', '/', ...TAR_FLAGS, '-cf', '-', '--', ...dirs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  tar.stderr.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4096);
  });
  return { tar, done: waitExit(tar, `tar of ${dirs.join(' ')}`, () => err) };
}

/** sha256 and size of the deterministic tar of `dirs` (the cache key and the diff id). */
async function tarDigest(dirs: string[]): Promise<{ hex: string; size: number }> {
  const { tar, done } = spawnTar(dirs);
  const h = hasher();
  await Promise.all([
    pipeline(tar.stdout, h, async (src: AsyncIterable<unknown>) => {
      for await (const _ of src) {
        /* drain */
      }
    }),
    done,
  ]);
  return { hex: h.hex(), size: h.size() };
}

/** tar | gzip -6 -n into `dest`; returns the sha256 of the tar stream it compressed. */
async function tarGzip(dirs: string[], dest: string): Promise<string> {
  const { tar, done } = spawnTar(dirs);
  const gzip = spawn('gzip', ['-6', '-n', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let gerr = '';
  gzip.stderr.on('data', (c: Buffer) => {
    gerr += c.toString();
  });
  const h = hasher();
  await Promise.all([
    pipeline(tar.stdout, h, gzip.stdin),
    pipeline(gzip.stdout, createWriteStream(dest)),
    done,
    waitExit(gzip, 'gzip', () => gerr),
  ]);
  return h.hex();
}

function countEntries(dirs: string[]): number {
  const r = spawnSync('find', dirs, { cwd: '/', encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`find ${dirs.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).length;
}

async function buildLayer(wanted: string[], cache: string): Promise<BenchLayer> {
  const dirs = wanted.filter((d) => {
    if (existsSync(path.join('/', d))) return true;
    log(`warning: /${d} does not exist here, left out of the image`);
    return false;
  });
  if (dirs.length === 0)
    throw new Error(`none of ${wanted.map((d) => '/' + d).join(', ')} exists: pass other --layer dirs`);
  const { hex, size } = await tarDigest(dirs);
  const file = path.join(cache, `${hex}.tar.gz`);
  let cached = true;
  if (!existsSync(file)) {
    cached = false;
    log(`compressing ${dirs.join(' + ')} (${mb(size)} MB tar) with gzip -6 ...`);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      const again = await tarGzip(dirs, tmp);
      if (again !== hex)
        throw new Error(`tar of ${dirs.join(' ')} is not deterministic (files changing?): ${hex} then ${again}`);
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const blob = readFileSync(file);
  const digest = 'sha256:' + createHash('sha256').update(blob).digest('hex');
  return {
    blob,
    digest,
    diffId: `sha256:${hex}`,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    dirs,
    tarSize: size,
    entries: countEntries(dirs),
    cached,
  };
}

// ---------------------------------------------------------------------------------------------
// Running and checking one pull

interface RunResult {
  round: number; // 0 = warm-up (not counted)
  tool: Tool;
  ok: boolean;
  seconds?: number;
  exit?: number | string;
  error?: string;
  /** Bytes on disk after the pull (round 1 only; du -sb of the fresh dirs). */
  diskBytes?: number;
}

interface Proc {
  code: number | null;
  signal: string | null;
  seconds: number;
  stdout: string;
  stderr: string;
}

/** Spawn and time from just before spawn to the 'exit' event. */
function timedRun(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Proc> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let exited: { code: number | null; signal: string | null; seconds: number } | undefined;
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stdout.on('data', (c: Buffer) => {
      stdout = (stdout + c.toString()).slice(-16384);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-16384);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      exited = { code, signal, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
    });
    child.on('close', () => {
      if (!exited) return reject(new Error(`${cmd}: closed without exit`));
      resolve({ ...exited, stdout, stderr });
    });
  });
}

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

function duBytes(dir: string): number | undefined {
  const r = run('du', ['-sb', dir]);
  return r.status === 0 ? Number(r.stdout.split(/\s/)[0]) : undefined;
}

const FLOOR_SCRIPT = [
  'set -o pipefail; d=$1; base=$2; shift 2; i=0; pids=()',
  'for g in "$@"; do mkdir -p "$d/$i"; (curl -sf "$base/$g" | tar -xzf - -C "$d/$i") & pids+=($!); i=$((i+1)); done',
  'rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc',
].join('\n');

interface Ctx {
  reg: TestRegistry;
  ref: string;
  layers: BenchLayer[];
  configDigest: string;
  work: string;
}

function describe(tool: Tool, dir: string, ctx: Ctx): { cmd: string; args: string[] } {
  switch (tool) {
    case 'tsrun':
      return { cmd: TSRUN, args: ['--root', dir, 'pull', '-q', ctx.ref] };
    case 'podman':
      return { cmd: 'podman', args: [...podmanGlobal(dir), 'pull', '-q', '--tls-verify=false', ctx.ref] };
    case 'floor':
      return {
        cmd: 'bash',
        args: [
          '-c',
          FLOOR_SCRIPT,
          'floor',
          dir,
          `${ctx.reg.url}/v2/${REPO_NAME}/blobs`,
          ...ctx.layers.map((l) => l.digest),
        ],
      };
  }
}

/** podman refuses a --runroot longer than 50 characters, so it lives in a short fresh dir in /run (its usual place). */
const runroots = new Map<string, string>();
const podmanGlobal = (dir: string): string[] => {
  let rr = runroots.get(dir);
  if (!rr) {
    rr = mkdtempSync('/run/tsrun-bench-');
    runroots.set(dir, rr);
  }
  return ['--root', path.join(dir, 'root'), '--runroot', rr, '--storage-driver', 'overlay'];
};

/** Outside the timing: did the run really produce the image? Returns an error message or undefined. */
function verify(tool: Tool, dir: string, ctx: Ctx): string | undefined {
  const id = ctx.configDigest.replace(/^sha256:/, '');
  if (tool === 'tsrun') {
    const r = run(TSRUN, ['--root', dir, 'images', '--no-trunc']);
    if (r.status !== 0) return `tsrun images exited ${r.status}: ${r.stderr.trim()}`;
    if (!r.stdout.includes(id) || !r.stdout.includes(`${ctx.reg.host}/${REPO_NAME}`))
      return `tsrun images does not list ${ctx.ref} (${id.slice(0, 12)}):\n${r.stdout}`;
    const layersDir = path.join(dir, 'layers');
    const n = existsSync(layersDir)
      ? readdirSync(layersDir).filter((e) => existsSync(path.join(layersDir, e, 'diff'))).length
      : 0;
    if (n !== ctx.layers.length)
      return `tsrun store has ${n} unpacked layers (layers/*/diff), expected ${ctx.layers.length}`;
    return undefined;
  }
  if (tool === 'podman') {
    const r = run('podman', [
      ...podmanGlobal(dir),
      'images',
      '--no-trunc',
      '--format',
      '{{.Repository}}:{{.Tag}} {{.ID}}',
    ]);
    if (r.status !== 0) return `podman images exited ${r.status}: ${r.stderr.trim()}`;
    const want = `${ctx.ref} sha256:${id}`;
    if (!r.stdout.split('\n').some((l) => l.trim() === want))
      return `podman images does not list "${want}":\n${r.stdout}`;
    return undefined;
  }
  for (let i = 0; i < ctx.layers.length; i++) {
    const top = ctx.layers[i]?.dirs[0]?.split('/')[0] ?? 'usr';
    if (!existsSync(path.join(dir, String(i), top)))
      return `floor: layer ${i} was not unpacked (${path.join(dir, String(i), top)} missing)`;
  }
  return undefined;
}

async function runOne(tool: Tool, round: number, ctx: Ctx): Promise<RunResult> {
  const dir = mkdtempSync(path.join(ctx.work, `${tool}-`));
  const { cmd, args } = describe(tool, dir, ctx);
  spawnSync('sync'); // nothing from the previous run is still being written back
  const res: RunResult = { round, tool, ok: false };
  try {
    const p = await timedRun(cmd, args);
    res.exit = p.code ?? p.signal ?? 'unknown';
    if (p.code !== 0) {
      res.error = `exit ${res.exit}: ${(p.stderr || p.stdout).trim().split('\n').slice(-5).join(' | ')}`;
    } else {
      const bad = verify(tool, dir, ctx);
      if (bad) res.error = bad;
      else {
        res.ok = true;
        res.seconds = p.seconds;
      }
    }
    if (round === 1 && res.ok) {
      const du = duBytes(dir);
      if (du !== undefined) res.diskBytes = du;
    }
  } catch (e) {
    res.error = (e as Error).message;
  } finally {
    removeTree(dir);
    const rr = runroots.get(dir);
    if (rr) {
      removeTree(rr);
      runroots.delete(dir);
    }
  }
  log(
    `round ${round === 0 ? 'warm-up' : round} ${tool.padEnd(6)} ${res.ok ? `${(res.seconds as number).toFixed(2)} s` : `FAILED: ${res.error}`}`,
  );
  return res;
}

/** A journaled ext4 in a sparse file, loop-mounted at <work>/mnt (see the module comment). */
function mountScratchFs(work: string): { dir: string; unmount(): void } {
  const img = path.join(work, 'scratch-ext4.img');
  const dir = path.join(work, 'mnt');
  if (
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === dir)
  )
    run('umount', [dir]);
  rmSync(img, { force: true });
  mkdirSync(dir, { recursive: true });
  const steps: Array<[string, string[]]> = [
    ['truncate', ['-s', '16G', img]],
    ['mkfs.ext4', ['-q', '-F', img]],
    ['mount', ['-o', 'loop', img, dir]],
  ];
  for (const [cmd, args] of steps) {
    const r = run(cmd, args);
    if (r.status !== 0) {
      rmSync(img, { force: true });
      throw new Error(
        `making the scratch ext4: ${cmd} ${args.join(' ')}: ${r.stderr.trim()} (run as root, or pass --no-scratch-fs)`,
      );
    }
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      const r = run('umount', [dir]);
      if (r.status !== 0) run('umount', ['-l', dir]);
      rmSync(img, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Stats {
  runs: number;
  ok: number;
  median?: number;
  min?: number;
  max?: number;
  mean?: number;
}

function stats(xs: number[], runs: number): Stats {
  if (xs.length === 0) return { runs, ok: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return {
    runs,
    ok: s.length,
    median,
    min: s[0] as number,
    max: s[s.length - 1] as number,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

function firstLine(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  return r.status === 0 ? ((r.stdout || r.stderr).trim().split('\n')[0] as string) : 'unavailable';
}

function machine(work: string): Record<string, string | number> {
  const osRelease = existsSync('/etc/os-release')
    ? (/PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '')
    : '';
  const git = run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const dirty = run('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no']);
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    os: osRelease,
    filesystem: firstLine('findmnt', ['-n', '-o', 'FSTYPE,SOURCE,OPTIONS', '-T', work]).replace(/\s+/g, ' '),
    node: process.version,
    podman: firstLine('podman', ['--version']).replace(/^podman version /, ''),
    registry: firstLine(registryBinary(), ['--version']).replace(/^\S*docker-registry\s+/, 'docker-registry '),
    curl: firstLine('curl', ['--version']).split(' ').slice(0, 2).join(' '),
    tar: firstLine('tar', ['--version']),
    gzip: firstLine('gzip', ['--version']),
    tsrunCommit:
      git.status === 0 ? git.stdout.trim() + (dirty.stdout.trim() ? ' (with uncommitted changes)' : '') : 'unknown',
  };
}

const fmt = (x: number | undefined, d = 2): string => (x === undefined ? '–' : x.toFixed(d));

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// --cycles: pull/rmi on one long-lived store per tool

function removeImage(tool: Tool, dir: string, ctx: Ctx): string | undefined {
  const r =
    tool === 'tsrun'
      ? run(TSRUN, ['--root', dir, 'rmi', ctx.ref])
      : tool === 'podman'
        ? run('podman', [...podmanGlobal(dir), 'rmi', ctx.ref])
        : { status: 0, stdout: '', stderr: '' };
  if (tool === 'floor') for (const e of readdirSync(dir)) rmSync(path.join(dir, e), { recursive: true, force: true });
  return r.status === 0 ? undefined : `rmi exited ${r.status}: ${r.stderr.trim()}`;
}

async function runCycles(opts: Options, ctx: Ctx): Promise<number> {
  const dirs = Object.fromEntries(
    opts.tools.map((t) => [t, mkdtempSync(path.join(ctx.work, `cycles-${t}-`))]),
  ) as Record<Tool, string>;
  const times: Record<string, Array<number | undefined>> = Object.fromEntries(opts.tools.map((t) => [t, []]));
  let failed = 0;
  try {
    for (let c = 1; c <= opts.cycles; c++) {
      const k = c % opts.tools.length;
      for (const tool of [...opts.tools.slice(k), ...opts.tools.slice(0, k)]) {
        const { cmd, args } = describe(tool, dirs[tool], ctx);
        spawnSync('sync');
        const p = await timedRun(cmd, args);
        const bad = p.code !== 0 ? `exit ${p.code ?? p.signal}: ${p.stderr.trim()}` : verify(tool, dirs[tool], ctx);
        const gone = removeImage(tool, dirs[tool], ctx);
        if (bad || gone) failed++;
        times[tool]?.push(bad ? undefined : p.seconds);
        log(
          `cycle ${c} ${tool.padEnd(6)} ${bad ? `FAILED: ${bad}` : `${p.seconds.toFixed(2)} s`}${gone ? ` (${gone})` : ''}`,
        );
      }
    }
  } finally {
    for (const t of opts.tools) {
      removeTree(dirs[t]);
      const rr = runroots.get(dirs[t]);
      if (rr) removeTree(rr);
    }
  }
  const out = [
    `## Pull/rmi cycles on one store per tool in ${ctx.work} (${firstLine('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', ctx.work]).replace(/\s+/g, ' ')})`,
    '',
    `| tool | ${Array.from({ length: opts.cycles }, (_, i) => `${i + 1}`).join(' | ')} | last / first |`,
    `|---|${'---:|'.repeat(opts.cycles + 1)}`,
  ];
  for (const t of opts.tools) {
    const xs = times[t] ?? [];
    const f = xs[0];
    const l = xs[xs.length - 1];
    out.push(
      `| ${t} | ${xs.map((x) => fmt(x)).join(' | ')} | ${f !== undefined && l !== undefined ? (l / f).toFixed(2) : '–'} |`,
    );
  }
  const last = (t: Tool) => times[t]?.[opts.cycles - 1];
  const lt = last('tsrun');
  const lp = last('podman');
  if (lt !== undefined && lp !== undefined) out.push('', `Last cycle tsrun / podman: ${(lt / lp).toFixed(2)}×.`);
  out.push(
    '',
    `Command: \`node dist/scripts/bench/pull.js${process.argv
      .slice(2)
      .map((a) => ' ' + a)
      .join('')}\``,
  );
  process.stdout.write(out.join('\n') + '\n');
  if (opts.json)
    writeFileSync(
      opts.json,
      JSON.stringify({ benchmark: 'pull-cycles', date: new Date().toISOString(), times }, null, 2) + '\n',
    );
  return failed ? 1 : 0;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) log('warning: not root; podman and the floor may not be able to keep file owners');
  for (const [bin, pkg] of [
    ['tar', 'tar'],
    ['gzip', 'gzip'],
    ['curl', 'curl'],
    ...(opts.tools.includes('podman') ? [['podman', 'podman']] : []),
  ] as const) {
    if (run(bin, ['--version']).status !== 0) throw new Error(`${bin} is not installed (apt-get install ${pkg})`);
  }
  mkdirSync(opts.cache, { recursive: true });
  mkdirSync(opts.work, { recursive: true });

  log(`building ${opts.layers.length} layers (cache ${opts.cache}) ...`);
  const layers: BenchLayer[] = [];
  for (const dirs of opts.layers) {
    const l = await buildLayer(dirs, opts.cache);
    log(
      `layer ${layers.length}: ${l.dirs.join(' + ')}: ${mb(l.blob.length)} MB gz, ${mb(l.tarSize)} MB tar, ${l.entries} entries${l.cached ? ' (cached)' : ''}`,
    );
    layers.push(l);
  }
  const gzTotal = layers.reduce((a, l) => a + l.blob.length, 0);
  const tarTotal = layers.reduce((a, l) => a + l.tarSize, 0);
  if (new Set(layers.map((l) => l.digest)).size !== layers.length)
    throw new Error('two layers have the same content; pick other --layer dirs');

  const scratch = opts.scratchFs && !opts.serve ? mountScratchFs(opts.work) : undefined;
  let reg: TestRegistry;
  try {
    reg = await startRegistry({ auth: 'anonymous' });
  } catch (e) {
    scratch?.unmount();
    throw e;
  }
  const stopOnSignal = (sig: NodeJS.Signals) => {
    scratch?.unmount();
    void reg.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    const pushed = await pushImage(reg, REPO_NAME, TAG, {
      layers,
      config: {
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      },
    });
    const ref = `${reg.host}/${REPO_NAME}:${TAG}`;
    log(
      `pushed ${ref} (${mb(gzTotal)} MB compressed, ${mb(tarTotal)} MB uncompressed) to ${reg.url}, storage ${reg.dir}`,
    );

    // Read every blob once through the registry so its files are in the page cache for everyone.
    const t0 = process.hrtime.bigint();
    for (const l of layers) {
      const res = await fetch(`${reg.url}/v2/${REPO_NAME}/blobs/${l.digest}`);
      if (!res.ok) throw new Error(`registry answered ${res.status} for ${l.digest}`);
      const got = Buffer.from(await res.arrayBuffer());
      if (got.length !== l.blob.length)
        throw new Error(`registry served ${got.length} bytes for ${l.digest}, expected ${l.blob.length}`);
    }
    log(
      `registry serves the blobs at ${(gzTotal / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9)).toFixed(0)} MB/s (one stream, from node)`,
    );

    if (opts.serve) {
      process.stdout.write(`${ref}\n`);
      log('serving; Ctrl-C to stop');
      await new Promise(() => {
        /* until a signal */
      });
    }

    const ctx: Ctx = { reg, ref, layers, configDigest: pushed.configDigest, work: scratch?.dir ?? opts.work };
    if (opts.cycles > 0) return await runCycles(opts, ctx);
    const results: RunResult[] = [];
    const orders: Tool[][] = [];
    const first = opts.warmup ? 0 : 1;
    for (let round = first; round <= opts.rounds; round++) {
      const k = round % opts.tools.length;
      const order = [...opts.tools.slice(k), ...opts.tools.slice(0, k)];
      if (round > 0) orders.push(order);
      for (const tool of order) results.push(await runOne(tool, round, ctx));
    }

    // --- report
    const timed = results.filter((r) => r.round > 0);
    const summary = Object.fromEntries(
      opts.tools.map((t) => {
        const mine = timed.filter((r) => r.tool === t);
        return [
          t,
          stats(
            mine.filter((r) => r.ok).map((r) => r.seconds as number),
            mine.length,
          ),
        ];
      }),
    ) as Record<Tool, Stats>;
    const med = (t: Tool) => summary[t]?.median;
    const ratio = (a: Tool, b: Tool) => {
      const x = med(a);
      const y = med(b);
      return x !== undefined && y !== undefined ? x / y : undefined;
    };
    const nullable = (x: number | undefined): number | null => (x === undefined ? null : x);
    const ratios = {
      tsrunOverPodman: ratio('tsrun', 'podman'),
      tsrunOverFloor: ratio('tsrun', 'floor'),
      podmanOverFloor: ratio('podman', 'floor'),
    };
    const failures = results.filter((r) => !r.ok);
    const m = machine(ctx.work);
    const command = `node dist/scripts/bench/pull.js${process.argv
      .slice(2)
      .map((a) => ' ' + a)
      .join('')}`;

    const out: string[] = [];
    out.push(
      `## Cold pull: ${layers.length} layers, ${mb(gzTotal)} MB compressed, ${mb(tarTotal)} MB uncompressed, ${layers.reduce((a, l) => a + l.entries, 0)} entries`,
      '',
    );
    out.push('| layer | from | compressed MB | uncompressed MB | entries |', '|---|---|---:|---:|---:|');
    layers.forEach((l, i) =>
      out.push(
        `| ${i} | ${l.dirs.map((d) => '/' + d).join(' + ')} | ${mb(l.blob.length)} | ${mb(l.tarSize)} | ${l.entries} |`,
      ),
    );
    out.push(
      '',
      `${opts.rounds} interleaved rounds${opts.warmup ? ' after 1 untimed warm-up round' : ''}; wall clock, process start to exit, seconds:`,
      '',
    );
    out.push(
      '| tool | ok runs | median | min | max | median / podman | median / floor | disk after pull (MB) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const t of opts.tools) {
      const s = summary[t];
      const r = (b: Tool) => {
        const x = ratio(t, b);
        return x === undefined ? '–' : `${x.toFixed(2)}×`;
      };
      const du = timed.find((x) => x.tool === t && x.diskBytes !== undefined)?.diskBytes;
      out.push(
        `| ${t} | ${s.ok}/${s.runs} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)} | ${r('podman')} | ${r('floor')} | ${du === undefined ? '–' : mb(du)} |`,
      );
    }
    out.push('');
    if (ratios.tsrunOverPodman !== undefined) {
      const met = ratios.tsrunOverPodman <= TARGET_RATIO;
      out.push(
        `Target tsrun ≤ ${TARGET_RATIO}× podman: ${met ? 'MET' : 'MISSED'} (${ratios.tsrunOverPodman.toFixed(2)}×).`,
        '',
      );
    }
    out.push('Per round (seconds, in the order run):', '');
    for (let round = 1; round <= opts.rounds; round++) {
      out.push(
        `- round ${round}: ` +
          timed
            .filter((r) => r.round === round)
            .map((r) => `${r.tool} ${r.ok ? fmt(r.seconds) : 'FAILED'}`)
            .join(', '),
      );
    }
    out.push(
      '',
      `Machine: ${Object.entries(m)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ')}.`,
      '',
      `Command: \`${command}\``,
    );
    if (failures.length) {
      out.push('', `**${failures.length} run(s) failed** (not counted):`, '');
      for (const f of failures) out.push(`- round ${f.round === 0 ? 'warm-up' : f.round} ${f.tool}: ${f.error}`);
    }
    process.stdout.write(out.join('\n') + '\n');

    if (opts.json) {
      const json = {
        benchmark: 'cold-pull',
        date: new Date().toISOString(),
        command,
        machine: m,
        image: {
          ref: `${REPO_NAME}:${TAG}`,
          manifestDigest: pushed.manifestDigest,
          configDigest: pushed.configDigest,
          compressedBytes: gzTotal,
          uncompressedBytes: tarTotal,
          layers: layers.map((l) => ({
            dirs: l.dirs.map((d) => '/' + d),
            digest: l.digest,
            diffId: l.diffId,
            compressedBytes: l.blob.length,
            uncompressedBytes: l.tarSize,
            entries: l.entries,
          })),
        },
        rounds: opts.rounds,
        warmup: opts.warmup,
        orders,
        commands: Object.fromEntries(
          opts.tools.map((t) => {
            const d = describe(t, '<fresh dir>', ctx);
            const rr = runroots.get('<fresh dir>');
            if (rr) {
              rmSync(rr, { recursive: true, force: true });
              runroots.delete('<fresh dir>');
            }
            return [
              t,
              [
                d.cmd.replace(REPO + '/', ''),
                ...d.args.map((a) => (a === rr ? '<fresh dir in /run>' : a.replace(REPO + '/', ''))),
              ],
            ];
          }),
        ),
        runs: results,
        summary,
        ratios: {
          tsrunOverPodman: nullable(ratios.tsrunOverPodman),
          tsrunOverFloor: nullable(ratios.tsrunOverFloor),
          podmanOverFloor: nullable(ratios.podmanOverFloor),
        },
        target: {
          tsrunOverPodmanAtMost: TARGET_RATIO,
          met: ratios.tsrunOverPodman === undefined ? null : ratios.tsrunOverPodman <= TARGET_RATIO,
        },
        failedRuns: failures.length,
      };
      writeFileSync(opts.json, JSON.stringify(json, null, 2) + '\n');
      log(`wrote ${opts.json}`);
    }
    return failures.length ? 1 : 0;
  } finally {
    scratch?.unmount();
    await reg.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench:pull: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
