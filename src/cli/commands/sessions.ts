/**
 * The attached-session verbs beside containers.ts: `exec` and `attach`, and the TTY rule they
 * share with `run` and `start`.
 *
 * Docker's rules (docker/cli): `-i -t` with a stdin that is not a terminal fails before
 * anything runs with "the input device is not a TTY", exit status 1 (CheckTty, only when stdin
 * is attached: `run -dit` is fine); `exec -t` alone needs no terminal (the pty is ours);
 * `attach` detaching with the keys prints "read escape sequence" and exits 1, while `run` and
 * `start -a` exit 0; `attach` to a container that is not running fails ("You cannot attach to a
 * stopped container, start it first").
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { explainOption } from '../explain/flag.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Docker's CheckTty. */
export async function checkTty(interactive: boolean | undefined, tty: boolean | undefined): Promise<void> {
  if (interactive && tty && !process.stdin.isTTY) {
    const { TsrunError } = await import('../../errors.js');
    throw new TsrunError('ERR_USAGE', 'the input device is not a TTY', {
      hint: 'drop -t, or run from a terminal',
      detail: { exitCode: 1 },
    });
  }
}

async function context(io: CliIo) {
  const { processContext } = await import('../../app/context.js');
  const { withDebug } = await import('../run-output.js');
  return processContext({ root: io.globals().root, reporter: withDebug(io) });
}

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  envFile: string[];
  user?: string;
  workdir?: string;
  detachKeys?: string;
}

export async function execAction(io: CliIo, name: string, args: string[], o: ExecFlags): Promise<void> {
  if (!o.detach) await checkTty(o.interactive, o.tty);
  const { execInContainer } = await import('../../app/exec.js');
  const { wire, waitAttached, parseDetachKeys } = await import('../attach.js');
  if (o.detachKeys) parseDetachKeys(o.detachKeys);
  let wired: ReturnType<typeof wire> | undefined;
  const consoleSize =
    o.tty && process.stdout.isTTY ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined;
  const s = await execInContainer(
    await context(io),
    name,
    args,
    {
      interactive: o.interactive,
      tty: o.tty,
      detach: o.detach,
      env: o.env,
      envFiles: o.envFile,
      user: o.user,
      workdir: o.workdir,
      consoleSize,
    },
    (a) => {
      wired = wire(a, {
        tty: Boolean(o.tty),
        interactive: Boolean(o.interactive),
        sigProxy: true,
        detachKeys: o.detachKeys,
      });
    },
  );
  if (!s.attachment || !wired) return;
  const code = await waitAttached(s.attachment, wired);
  s.attachment.close();
  if (code !== undefined) await s.done();
  process.exitCode = code ?? 0;
}

interface AttachFlags {
  stdin: boolean;
  sigProxy: boolean;
  detachKeys?: string;
}

export async function attachAction(io: CliIo, name: string, o: AttachFlags): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  const { openEnv, cleanupContainer } = await import('../../app/containers.js');
  const { attach } = await import('../../runtime/monitor.js');
  const { wire, waitAttached, parseDetachKeys } = await import('../attach.js');
  if (o.detachKeys) parseDetachKeys(o.detachKeys);
  const e = await openEnv(await context(io));
  const c = await e.containers.find(name);
  if (c.observed.status !== 'running') {
    throw new TsrunError('ERR_CONTAINER_STATE', 'You cannot attach to a stopped container, start it first', {
      detail: { exitCode: 1 },
    });
  }
  const interactive = o.stdin && c.record.config.openStdin;
  await checkTty(interactive, c.record.config.tty);
  const a = await attach(c.paths.attachSocket);
  const w = wire(a, { tty: c.record.config.tty, interactive, sigProxy: o.sigProxy, detachKeys: o.detachKeys });
  const code = await waitAttached(a, w);
  if (code === undefined) {
    a.close();
    io.err.write('read escape sequence\n');
    process.exitCode = 1;
    return;
  }
  await cleanupContainer(e, c.record.id);
  a.close();
  process.exitCode = code;
}

/** exec and attach, on the program and in the `container` group; `verb`: only that one (containers.ts). */
export function registerSessionCommands(program: Command, io: CliIo, group?: Command, verb?: string): void {
  const want = (name: string) => verb === undefined || verb === name;
  const execCmd = (cmd: Command) =>
    cmd
      .description('Run a command in a running container')
      .argument('<container>')
      .argument('<command...>')
      .option('-i, --interactive', 'keep stdin open')
      .option('-t, --tty', 'allocate a pseudo-terminal')
      .option('-d, --detach', 'run in the background')
      .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect, [])
      .option('--env-file <file>', 'read environment variables from a file', collect, [])
      .option('-u, --user <user[:group]>', 'user name or uid')
      .option('-w, --workdir <dir>', 'working directory')
      .option('--detach-keys <keys>', 'key sequence that detaches (default ctrl-p,ctrl-q)')
      .passThroughOptions()
      .action(async (name: string, args: string[], o: ExecFlags) => execAction(io, name, args, o));
  if (want('exec')) execCmd(explainOption(program.command('exec'), 'exec', io));
  if (group) execCmd(explainOption(group.command('exec'), 'exec', io));

  const attachCmd = (cmd: Command) =>
    cmd
      .description('Attach local standard input, output and error to a running container')
      .argument('<container>')
      .option('--no-stdin', 'do not attach stdin')
      .option('--sig-proxy', 'forward received signals to the container (the default)', true)
      .option('--no-sig-proxy', 'do not forward received signals')
      .option('--detach-keys <keys>', 'key sequence that detaches (default ctrl-p,ctrl-q)')
      .action(async (name: string, o: AttachFlags) => attachAction(io, name, o));
  if (want('attach')) attachCmd(program.command('attach'));
  if (group) attachCmd(group.command('attach'));
}
