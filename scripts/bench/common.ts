/**
 * What the run and network benchmarks share: the tsrun entry point, command-line options,
 * running a program (synchronously, or timed), and the median.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** tsrun run as its users run it: the executable (bin/tsrun.js's shell line starts Node). */
export const TSRUN = path.join(REPO, 'bin', 'tsrun.js');

export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

/** Who runs a command: another user (rootless benchmarks), with that user's environment. */
export interface As {
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function sh(
  cmd: string,
  args: string[],
  as: As = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...as });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Wall time of one run, stdout discarded, stderr kept for the failure message. */
export function timed(
  cmd: string,
  args: string[],
  as: As = {},
): Promise<{ ms: number; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...as });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, code, stderr }));
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Unmount anything left mounted under `dir` (deepest first: podman's overlay driver leaves its own), then remove it. */
export function removeTree(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
