/**
 * The runtime operations beyond the runtime-spec's lifecycle, as runc's (and crun's) command line
 * spells them: pause/resume (the cgroup freezer), update (resources), ps (the container's pids),
 * events --stats (one JSON sample of the cgroup's counters, v1 or v2, so tsrun never parses
 * cgroup files itself) and state.
 *
 * Contract: like oci-runtime.ts, every call uses the store's `--root`; a failure becomes
 * ERR_RUNTIME with the runtime's own last line. Nothing here changes tsrun's records.
 */
import { TsrunError } from '../errors.js';
import { runProgram } from '../util/exec.js';
import type { OciRuntime } from './oci-runtime.js';

async function call(rt: OciRuntime, args: string[], what: string, input?: string): Promise<string> {
  const r = await runProgram(rt.info.path, ['--root', rt.root, ...args], { input });
  if (r.code !== 0) {
    const msg = r.stderr
      .trim()
      .split('\n')
      .pop()
      ?.replace(/^time="[^"]*" level=\w+ msg="(.*)"$/, '$1');
    throw new TsrunError(
      'ERR_RUNTIME',
      `${what}: ${rt.info.name} ${args[0]} failed: ${msg || `exit status ${r.code}`}`,
    );
  }
  return r.stdout;
}

export function pauseContainer(rt: OciRuntime, id: string): Promise<string> {
  return call(rt, ['pause', id], `pausing container ${id.slice(0, 12)}`);
}

export function resumeContainer(rt: OciRuntime, id: string): Promise<string> {
  return call(rt, ['resume', id], `unpausing container ${id.slice(0, 12)}`);
}

/** The runtime's view: 'created' | 'running' | 'paused' | 'stopped', or undefined if unknown to it. */
export async function runtimeStatus(rt: OciRuntime, id: string): Promise<string | undefined> {
  const r = await runProgram(rt.info.path, ['--root', rt.root, 'state', id]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { status?: string }).status;
}

/** Host pids of every process in the container. */
export async function containerPids(rt: OciRuntime, id: string): Promise<number[]> {
  const out = await call(rt, ['ps', '--format', 'json', id], `listing the processes of container ${id.slice(0, 12)}`);
  return (JSON.parse(out) as number[] | null) ?? [];
}

/** Resources as runc update's --resources JSON (runtime-spec config-linux.md, "Control groups"). */
export interface ResourceUpdate {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  blockIO?: { weight?: number };
}

export async function updateResources(rt: OciRuntime, id: string, r: ResourceUpdate): Promise<void> {
  await call(rt, ['update', '--resources', '-', id], `updating container ${id.slice(0, 12)}`, JSON.stringify(r));
}

/** runc's `events --stats` sample (runc/types/events.go: Stats), the fields tsrun reads. */
export interface RuntimeStats {
  cpu?: { usage?: { total?: number } };
  memory?: { usage?: { usage?: number; limit?: number }; stats?: Record<string, number>; raw?: Record<string, number> };
  pids?: { current?: number; limit?: number };
  blkio?: { ioServiceBytesRecursive?: { op?: string; value?: number }[] | null };
}

export async function runtimeStats(rt: OciRuntime, id: string): Promise<RuntimeStats> {
  const out = await call(rt, ['events', '--stats', id], `reading the statistics of container ${id.slice(0, 12)}`);
  const ev = JSON.parse(out) as { data?: RuntimeStats };
  return ev.data ?? {};
}
