/**
 * `tsrun exec`: run another process in a running container, through `runtime exec` in the
 * foreground with the caller's stdio (so the runtime itself allocates and drives the pty with
 * `-t`, resizes included), as `docker exec` does through its daemon.
 *
 * Docker's rules: the container must be running; the process inherits the container's env, user
 * and cwd unless -e/-u/-w say otherwise (-u names resolve through the container's /etc/passwd
 * and /etc/group); without -i it gets no stdin. The exit status is the process's; a command that
 * is not found is 127, one that cannot be executed 126.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { resolveUser } from '../spec/user.js';
import { readFileInRoot } from '../snapshot/rootfs-copy.js';
import { lastLogError } from '../runtime/oci-runtime.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor } from './containers.js';

export interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
}

export async function execInContainer(ctx: AppContext, query: string, args: string[], o: ExecOptions): Promise<number> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  if (c.observed.status !== 'running') {
    throw new TsrunError('ERR_CONTAINER_STATE', `exec in ${query}: container ${c.record.id.slice(0, 12)} is not running`, {
      hint: `start it first: tsrun start ${query}`,
    });
  }
  if (args.length === 0) throw new TsrunError('ERR_USAGE', 'exec: no command given', { hint: 'tsrun exec CONTAINER COMMAND [ARG...]' });
  if (o.workdir !== undefined && !o.workdir.startsWith('/')) {
    throw new TsrunError('ERR_USAGE', `the working directory '${o.workdir}' is invalid, it needs to be an absolute path`);
  }
  const envList = (o.env ?? []).map((e) => {
    if (e.includes('=')) return e;
    const v = ctx.env[e];
    return v === undefined ? undefined : `${e}=${v}`;
  }).filter((e): e is string => e !== undefined);
  let user: string | undefined;
  let additionalGids: number[] | undefined;
  if (o.user) {
    // Through safe-root.ts: the container runs and may swap /etc for a link mid-read (issue 13).
    const read = (f: string) => readFileInRoot(c.paths.rootfs, f);
    const u = resolveUser(o.user, await read('/etc/passwd'), await read('/etc/group'));
    user = `${u.uid}:${u.gid}`;
    additionalGids = u.additionalGids;
    if (!o.env?.some((e) => e.startsWith('HOME='))) envList.push(`HOME=${u.home}`);
  }
  const runtime = await runtimeFor(env, c.record.host.runtime);
  const logFile = path.join(c.paths.state, `exec-${process.pid}.log`);
  const argv = runtime.execArgv(c.record.id, { tty: Boolean(o.tty), env: envList, cwd: o.workdir, user, additionalGids, detach: o.detach, logFile }, args);
  try {
    const code = await runtime.runExec(argv, Boolean(o.interactive));
    if (code === 255) {
      const msg = await lastLogError(logFile);
      if (/executable file not found|no such file or directory/i.test(msg)) return 127;
      if (/permission denied|exec format error|is a directory/i.test(msg)) return 126;
    }
    return code;
  } finally {
    await fs.rm(logFile, { force: true });
  }
}
