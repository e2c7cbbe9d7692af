/**
 * `tsrun exec`: run another process in a running container, as `docker exec` does through its
 * daemon and `podman exec` through conmon.
 *
 * Each exec session gets its own tsrun-monitor (native-helpers/src/monitor.c, `--exec`), which
 * runs `runtime exec --detach --process process.json` and stays the process's parent: its
 * output reaches the caller through the attach socket with backpressure (nothing is lost to a
 * slow reader), `-t` gets a pty the monitor holds (no controlling terminal needed on our side),
 * `-d` returns at once without holding the caller's stdout/stderr, and a detached process is
 * owned and reaped by the monitor instead of ending up a child of the host's init.
 *
 * The process is the container's own (config.json's `process`: capabilities, rlimits, user,
 * env, cwd) with Docker's changes: the command; `-e`/`--env-file` merged over the container's
 * environment (TERM=xterm added with -t, as `docker exec -t`); `-w`; `-u USER` resolved
 * through the container's /etc/passwd and /etc/group, with that user's supplementary groups
 * and only those (runc's `exec --user` would keep the container's: issue 23, bug 2).
 *
 * Session state: <run>/exec-<id>/ (process.json, attach.sock, pid, exit); the caller removes it
 * when it has the exit code, the monitor's exit command (`rm -rf`) when nobody is attached.
 */
import { randomHex } from '../util/random.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { resolveUser } from '../spec/user.js';
import { mergeEnv, parseEnvFile } from '../spec/env.js';
import { parseSpec, serializeSpec } from '../spec/defaults.js';
import type { Process, Spec } from '../spec/types.js';
import { readFileInRoot } from '../snapshot/rootfs-copy.js';
import { attach, spawnMonitor, type Attachment } from '../runtime/monitor.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor } from './containers.js';

export interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env?: string[];
  envFiles?: string[];
  user?: string;
  workdir?: string;
  /** The caller's terminal size, for the pty's first size (-t). */
  consoleSize?: { rows: number; cols: number };
}

export interface ExecSession {
  /** Undefined with -d. */
  attachment?: Attachment;
  /** The process's pid on the host (`exec inspect`'s Pid). */
  pid: number;
  /** Remove the session's state (after the exit frame came). */
  done(): Promise<void>;
}

const envKey = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

/** The process `exec` runs: the container's, changed as Docker changes it. */
export async function execProcess(
  ctx: AppContext,
  rootfs: string,
  base: Process,
  hostname: string,
  args: string[],
  o: ExecOptions,
): Promise<Process> {
  const userEnv: string[] = [];
  for (const f of o.envFiles ?? []) {
    const text = await fs.readFile(path.resolve(f), 'utf8').catch((e: Error) => {
      throw new TsrunError('ERR_USAGE', `reading env file ${f}: ${e.message}`);
    });
    userEnv.push(...parseEnvFile(text, f));
  }
  userEnv.push(...(o.env ?? []));
  const p: Process = { ...base, args, terminal: Boolean(o.tty) };
  let home = base.env.find((e) => envKey(e) === 'HOME')?.slice(5) ?? '/';
  let containerEnv = base.env;
  if (o.user) {
    const u = resolveUser(
      o.user,
      await readFileInRoot(rootfs, '/etc/passwd'),
      await readFileInRoot(rootfs, '/etc/group'),
    );
    // Exactly this user's groups, the primary one included as `run -u` (withUser) and Docker
    // (containerd's WithAdditionalGIDs) list them; none of the container's user's.
    p.user = { ...base.user, uid: u.uid, gid: u.gid, additionalGids: [u.gid, ...u.additionalGids] };
    home = u.home;
    containerEnv = base.env.filter((e) => envKey(e) !== 'HOME');
  }
  p.env = mergeEnv(containerEnv, userEnv, { callerEnv: ctx.env, hostname, tty: Boolean(o.tty), home });
  if (o.workdir !== undefined && o.workdir !== '') {
    if (!o.workdir.startsWith('/')) {
      throw new TsrunError(
        'ERR_USAGE',
        `the working directory '${o.workdir}' is invalid, it needs to be an absolute path`,
      );
    }
    p.cwd = path.posix.normalize(o.workdir);
  }
  const withSize = p as Process & { consoleSize?: { height: number; width: number } };
  delete withSize.consoleSize;
  if (o.tty && o.consoleSize) withSize.consoleSize = { height: o.consoleSize.rows, width: o.consoleSize.cols };
  return p;
}

/**
 * Start an exec session. Attached (no -d): `attachIo` gets the attachment before the process
 * exists; the caller awaits `attachment.exited`, then calls `done`.
 */
export async function execInContainer(
  ctx: AppContext,
  query: string,
  args: string[],
  o: ExecOptions,
  attachIo?: (a: Attachment) => void,
): Promise<ExecSession> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  if (args.length === 0)
    throw new TsrunError('ERR_USAGE', 'exec: no command given', { hint: 'tsrun exec CONTAINER COMMAND [ARG...]' });
  if (c.observed.status !== 'running') {
    throw new TsrunError(
      'ERR_CONTAINER_STATE',
      `exec in ${query}: container ${c.record.id.slice(0, 12)} is not running`,
      {
        hint: `start it first: tsrun start ${query}`,
      },
    );
  }
  const spec = parseSpec(await fs.readFile(c.paths.config, 'utf8'));
  const proc = await execProcess(ctx, c.paths.rootfs, spec.process, c.record.config.hostname, args, o);
  const runtime = await runtimeFor(env, c.record.host.runtime);

  const dir = path.join(env.containers.sp.run, `exec-${randomHex(6)}`);
  await fs.mkdir(dir, { mode: 0o700 });
  const processFile = path.join(dir, 'process.json');
  await fs.writeFile(processFile, serializeSpec(proc as unknown as Spec));
  const done = () => fs.rm(dir, { recursive: true, force: true });
  let attachment: Attachment | undefined;
  let pid: number;
  try {
    ({ pid } = await spawnMonitor({
      id: c.record.id,
      bundle: c.paths.bundle,
      state: dir,
      runtimePath: runtime.info.path,
      runtimeRoot: runtime.root,
      log: '/dev/null',
      tty: Boolean(o.tty),
      stdin: Boolean(o.interactive) && !o.detach,
      execProcess: processFile,
      exitCommand: ['/bin/rm', '-rf', dir],
      reporter: ctx.reporter,
      attachFirst: o.detach
        ? undefined
        : async () => {
            attachment = await attach(path.join(dir, 'attach.sock'));
            attachIo?.(attachment);
          },
    }));
  } catch (err) {
    attachment?.close();
    await done();
    throw err;
  }
  ctx.reporter.emit({
    type: 'container-exec',
    id: c.record.id,
    argv: args,
    ...(o.user ? { user: o.user } : {}),
    cwd: proc.cwd,
    tty: Boolean(o.tty),
    detach: Boolean(o.detach),
  });
  return { attachment, done, pid };
}
