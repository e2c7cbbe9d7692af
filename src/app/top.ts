/**
 * `tsrun top CONTAINER [ps OPTIONS]`: the container's processes as the host's `ps` shows them,
 * as `docker top` does it (moby daemon/top_unix.go): run `ps` with the options (default -ef),
 * find the PID column in its header, and keep the lines whose pid the runtime lists for the
 * container (`runc ps`). Pids are the host's.
 */
import { TsrunError } from '../errors.js';
import { containerPids } from '../runtime/control.js';
import { runProgram } from '../util/exec.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor } from './containers.js';

export interface TopResult {
  titles: string[];
  processes: string[][];
}

/** Split ps's output into the header's fields; the last field keeps the rest of the line (the command). */
export function parsePs(output: string, pids: ReadonlySet<number>): TopResult {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0)
    throw new TsrunError('ERR_USAGE', "Couldn't find PID field in ps output", {
      hint: 'give ps options that print a PID column, e.g. -o pid,comm',
    });
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    if (pids.has(Number(row[pidIndex]))) processes.push(row);
  }
  return { titles, processes };
}

export async function top(ctx: AppContext, query: string, psArgs: string[]): Promise<TopResult> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  if (c.observed.status !== 'running') {
    throw new TsrunError('ERR_CONTAINER_STATE', `container ${c.record.id} is not running`);
  }
  const pids = new Set(await containerPids(await runtimeFor(env, c.record.host.runtime), c.record.id));
  const args = psArgs.length > 0 ? psArgs : ['-ef'];
  const r = await runProgram('ps', args);
  if (r.code !== 0)
    throw new TsrunError('ERR_USAGE', `ps ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return parsePs(r.stdout, pids);
}
