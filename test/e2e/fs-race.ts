/**
 * The export/diff/commit symlink race of issue 13, shared by test/e2e/cp-race.test.ts (a
 * CI-sized count) and scripts/chaos/cp-race.ts (a long run). A container keeps swapping /x/d
 * between a directory and a symlink to <H>, a host directory the container does not have, that
 * holds a marker file with unique content. Inside the container no file is named `marker`, so a
 * single `marker` in an exported tar, a diff line or a committed layer — or the marker's content
 * anywhere in them — is a host file read through the link (the walk took /x/d for a directory,
 * and by the time it listed or opened it, it was the link).
 *
 * The racer is a small static program (compiled here with cc, bind-mounted into a busybox
 * container) that swaps /x/d and /x/l with renameat2(RENAME_EXCHANGE), holding each state
 * for a random 0-400 µs: a walk that resolves a path twice loses within a few hundred tries — the shell loop of the issue (mkdir; rm; ln -s; rm) flips it a few
 * hundred times a second and is caught by cp's longer walks, but rarely by these.
 * Why <H> and not "/": one lost race is then enough to show (the link's target is the marker's
 * directory, not four levels above it), and wrong code lists one small host directory instead
 * of walking the host's whole tree (/proc included).
 *
 * Each operation is raced two ways: through its use case as the command runs it (frozen where
 * the cgroup freezer exists: as root), and through the walk alone on the live container
 * (`diffTar` of the merged root as export makes it, `changesOf` of the upper dir as diff makes
 * it, commit with pause off), which is what a rootless container, which has no freezer, always
 * gets. The walk is what must be safe; the freeze is an addition.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { commitContainer } from '../../src/app/commit.js';
import { processContext } from '../../src/app/context.js';
import { openEnv } from '../../src/app/containers.js';
import { upperView } from '../../src/app/container-fs.js';
import { changesOf, containerDiff } from '../../src/app/diff.js';
import { exportContainer } from '../../src/app/export.js';
import { diffTar } from '../../src/layers/diff.js';
import { tsrun } from './cli.js';
import { eventually } from './containers.js';

export interface FsRaceResult {
  attempts: { export: number; diff: number; commit: number };
  /** Operations whose output held the host's marker (by name or by content). */
  leaks: { export: number; diff: number; commit: number };
  /** Operations that failed (a path changing under a walk may make it fail; never leak). */
  failed: number;
  seconds: number;
}

class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of gen) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Does a tar hold the marker: its content, or an entry named marker (ustar name field)? */
function tarLeaks(tar: Buffer, secret: string): boolean {
  if (tar.includes(secret)) return true;
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    if (/^x\/[dl]\/marker\0/.test(tar.subarray(off, off + 100).toString('latin1'))) return true;
  }
  return false;
}

/** A file named marker under `dir` (a committed layer), links never followed. */
function treeHasMarker(dir: string): boolean {
  for (const n of readdirSync(dir)) {
    if (n === 'marker') return true;
    const p = path.join(dir, n);
    if (lstatSync(p).isDirectory() && treeHasMarker(p)) return true;
  }
  return false;
}

const RACER_C = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(void) {
  for (unsigned i = 1;; i = i * 1103515245u + 12345u) {
    renameat2(AT_FDCWD, "/x/d", AT_FDCWD, "/x/l", RENAME_EXCHANGE);
    struct timespec t = { 0, (long)((i >> 8) % 400) * 1000 };
    nanosleep(&t, NULL);
  }
}
`;
/** The racer, built static (a busybox image has no libc) into `dir`. */
export function buildRacer(dir: string): string {
  const src = path.join(dir, 'racer.c');
  const bin = path.join(dir, 'racer');
  execFileSync('sh', ['-c', `cat > ${src} && cc -static -O2 -o ${bin} ${src}`], { input: RACER_C });
  return bin;
}

export async function raceFs(o: {
  root: string;
  image: string;
  count: number;
  name?: string;
  log?: (s: string) => void;
}): Promise<FsRaceResult> {
  const name = o.name ?? `fsracer-${process.pid}`;
  const hostDir = mkdtempSync('/var/tmp/tsrun-fs-race-');
  const secret = `HOSTSECRET-${randomBytes(8).toString('hex')}\n`;
  await fs.writeFile(path.join(hostDir, 'marker'), secret);
  const r: FsRaceResult = {
    attempts: { export: 0, diff: 0, commit: 0 },
    leaks: { export: 0, diff: 0, commit: 0 },
    failed: 0,
    seconds: 0,
  };
  const started = Date.now();
  const racer = buildRacer(hostDir);
  const d = await tsrun(
    [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      '-v',
      `${racer}:/racer:ro`,
      o.image,
      'sh',
      '-c',
      `mkdir -p /x/d; ln -s ${hostDir} /x/l; exec /racer`,
    ],
    { root: o.root },
  );
  if (d.code !== 0) throw new Error(`starting the racing container: ${d.stderr}`);
  const ctx = processContext({ root: o.root });
  const leakingLayers = new Set<string>();
  /** Committed layers (by directory) that hold a marker: each is a host file in an image. */
  const committedLeaks = () => {
    const layers = path.join(o.root, 'layers');
    for (const l of existsSync(layers) ? readdirSync(layers) : []) {
      const x = path.join(layers, l, 'diff', 'x');
      if (!leakingLayers.has(l) && existsSync(x) && treeHasMarker(x)) leakingLayers.add(l);
    }
    return leakingLayers.size;
  };
  const attempt = async (what: keyof FsRaceResult['leaks'], fn: () => Promise<boolean>) => {
    r.attempts[what]++;
    try {
      if (await fn()) r.leaks[what]++;
    } catch {
      r.failed++;
    }
  };
  try {
    await eventually(
      'the racer runs',
      async () => (await tsrun(['exec', name, 'test', '-L', '/x/l'], { root: o.root })).code === 0,
    );
    const env = await openEnv(ctx);
    for (let i = 0; i < o.count; i++) {
      const c = await env.containers.find(name);
      const view = upperView(env, c, 'racing');
      // The walks alone, live (as for a rootless container).
      await attempt('export', async () =>
        tarLeaks(await collect(diffTar(c.paths.rootfs, { overlayXattrPrefix: view.xattrPrefix })), secret),
      );
      for (let k = 0; k < 20; k++)
        await attempt('diff', async () => changesOf(view).some((ch) => ch.path.endsWith('/marker')));
      await attempt('commit', async () => {
        const before = leakingLayers.size;
        await commitContainer(ctx, name, undefined, { pause: false });
        return committedLeaks() > before;
      });
      // The use cases as the commands run them (frozen as root).
      if (i % 10 === 0) {
        await attempt('export', async () => {
          const out = new Collect();
          await exportContainer(ctx, name, out);
          return tarLeaks(Buffer.concat(out.chunks), secret);
        });
        await attempt('diff', async () => (await containerDiff(ctx, name)).some((ch) => ch.path.endsWith('/marker')));
        await attempt('commit', async () => {
          const before = leakingLayers.size;
          await commitContainer(ctx, name, undefined);
          return committedLeaks() > before;
        });
      }
      if (i % 100 === 99) o.log?.(`${i + 1} of ${o.count}: ${JSON.stringify(r.leaks)}`);
    }
  } finally {
    await tsrun(['rm', '-f', name], { root: o.root });
    rmSync(hostDir, { recursive: true, force: true });
  }
  r.seconds = (Date.now() - started) / 1000;
  return r;
}
