/**
 * The cp symlink race of issue 13, shared by test/e2e/cp-race.test.ts (a CI-sized count) and
 * scripts/chaos/cp-race.ts (a long run): a container keeps swapping /x/d between a directory and
 * a symlink to "/", while cp is asked, over and over, to read /x/d<H>/marker out of it and to
 * write /x/d<H>/payload-N into it, where <H> is a host directory the container does not have.
 * Inside the container those paths never exist, so every copy either fails or (if tsrun were
 * fooled into following the link on the host) reads the host's marker or writes into <H>.
 * One such host file read or written is a failure.
 *
 * The copies are made through the `copy` use case in this process (thousands fit in seconds;
 * the CLI adds only Node's start-up around it), plus a few through the real CLI. Every other
 * iteration sets TSRUN_NO_OPENAT2=1, so the O_PATH component walk that stands in for openat2 on
 * older kernels is raced as hard as openat2 itself.
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../../src/util/concurrency.js';
import { existsSync, mkdtempSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { copy } from '../../src/app/cp.js';
import { processContext } from '../../src/app/context.js';
import { tsrun } from './cli.js';
import { eventually } from './containers.js';

export interface RaceResult {
  attempts: { out: number; in: number; cli: number };
  /** Copies that succeeded (each one an escape: the paths exist only on the host). */
  hostReads: number;
  hostWrites: number;
  /** Copies that failed, as they should (the path does not exist in the container). */
  refused: number;
  seconds: number;
}

export async function raceCp(o: {
  root: string;
  image: string;
  count: number;
  name?: string;
  log?: (s: string) => void;
}): Promise<RaceResult> {
  const name = o.name ?? `racer-${process.pid}`;
  // <H> under /var/tmp: a directory a busybox image does not have.
  const hostDir = mkdtempSync('/var/tmp/tsrun-cp-race-');
  const secret = `HOSTSECRET-${randomBytes(8).toString('hex')}\n`;
  await fs.writeFile(path.join(hostDir, 'marker'), secret);
  const work = mkdtempSync(path.join('/tmp', 'tsrun-cp-race-work-'));
  const payload = path.join(work, 'payload');
  await fs.writeFile(payload, 'payload\n');
  const result: RaceResult = {
    attempts: { out: 0, in: 0, cli: 0 },
    hostReads: 0,
    hostWrites: 0,
    refused: 0,
    seconds: 0,
  };
  const started = Date.now();
  const d = await tsrun(
    [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      o.image,
      'sh',
      '-c',
      'mkdir -p /x; while :; do mkdir -p /x/d; rm -rf /x/d; ln -s / /x/d; rm -f /x/d; done',
    ],
    { root: o.root },
  );
  if (d.code !== 0) throw new Error(`starting the racing container: ${d.stderr}`);
  try {
    await eventually(
      'the racer runs',
      async () => (await tsrun(['exec', name, 'test', '-e', '/x'], { root: o.root })).code === 0,
    );
    const ctx = processContext({ root: o.root });
    const ctrMarker = `${name}:/x/d${hostDir}/marker`;
    const written = () => readdirSync(hostDir).filter((n) => n !== 'marker');
    for (let i = 0; i < o.count; i++) {
      if (i % 2 === 1) process.env.TSRUN_NO_OPENAT2 = '1';
      else delete process.env.TSRUN_NO_OPENAT2;
      const out = path.join(work, `out-${i}`);
      result.attempts.out++;
      try {
        await copy(ctx, ctrMarker, out);
        const got = existsSync(out) ? await fs.readFile(out, 'utf8').catch(() => '') : '';
        if (got === secret) result.hostReads++;
        else throw new Error(`copy ${i} succeeded with content ${JSON.stringify(got)}`);
      } catch (err) {
        if ((err as Error).message.startsWith('copy ')) throw err;
        result.refused++;
      }
      await fs.rm(out, { recursive: true, force: true });
      result.attempts.in++;
      try {
        await copy(ctx, payload, `${name}:/x/d${hostDir}/payload-${i}`);
      } catch {
        result.refused++;
      }
      if (i % 500 === 499)
        o.log?.(`${i + 1} of ${o.count}: ${result.hostReads} host reads, ${written().length} host writes`);
    }
    delete process.env.TSRUN_NO_OPENAT2;
    // A few through the CLI, as the reporter did.
    for (let i = 0; i < 10; i++) {
      result.attempts.cli += 2;
      const out = path.join(work, `cli-out-${i}`);
      await tsrun(['cp', ctrMarker, out], { root: o.root });
      if (existsSync(out) && (await fs.readFile(out, 'utf8').catch(() => '')) === secret) result.hostReads++;
      await tsrun(['cp', payload, `${name}:/x/d${hostDir}/cli-payload-${i}`], { root: o.root });
    }
    result.hostWrites = written().length;
  } finally {
    delete process.env.TSRUN_NO_OPENAT2;
    await tsrun(['rm', '-f', name], { root: o.root });
    rmSync(hostDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * rm -rf that outlasts a removed container's monitor, whose cleanup (a second tsrun) may still
 * make its lock file under the store for a moment after `rm -f` returned: Node's rmSync does not
 * list a directory again after ENOTEMPTY, so the whole removal is retried.
 */
export async function removeTree(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || i >= 40) throw err;
      await sleep(250);
    }
  }
}
