/**
 * Container verbs: run, create, start, stop, restart, kill, rm, ps, logs, exec, wait, cp, and the
 * `container` group (ls, rm, prune, inspect, ...). Flags, columns and exit codes follow `docker`:
 * `run` and `exec` exit with the container's status, 125 for tsrun's own errors, 126 when the
 * command cannot run and 127 when it is not found. Each action turns flags into options, calls
 * one use case, and prints.
 */
import type { Command } from 'commander';
import type { Reporter } from '../../events.js';
import { EXIT_TSRUN, printError, type CliIo } from '../output.js';
import { explaining, explainOption } from '../explain/flag.js';
import type { PsFlags } from './ps.js';
import { checkTty, registerSessionCommands } from './sessions.js';
import { attachStreams, runOptions, toRunOptions, type RunFlags } from './run-options.js';

const collect = (v: string, prev: string[]) => [...prev, v];

async function context(io: CliIo, reporter?: Reporter) {
  const { processContext } = await import('../../app/context.js');
  const { withDebug } = await import('../run-output.js');
  return processContext({ root: io.globals().root, reporter: withDebug(io, reporter) });
}

async function env(io: CliIo) {
  const { openEnv } = await import('../../app/containers.js');
  return openEnv(await context(io));
}

async function pullReporter(io: CliIo): Promise<Reporter> {
  const progress = await import('../progress.js');
  const { runTextReporter } = await import('../run-output.js');
  const { fanout } = await import('../../events.js');
  // stderr is made only when there is something to say (stdio.ts).
  const err = { write: (s: string) => io.err.write(s) };
  if (io.globals().debug || explaining()) return runTextReporter(err);
  return fanout(runTextReporter(err), progress.plainPullReporter(err, err));
}

async function runAction(io: CliIo, image: string, args: string[], f: RunFlags): Promise<void> {
  if (f.dryRun) return (await import('./dry-run.js')).dryRunAction(io, image, args, f);
  const streams = await attachStreams(f);
  f.interactive = streams.stdin;
  // Docker checks the terminal only when it attaches: `run -dit` works without one.
  if (!f.detach) await checkTty(f.interactive, f.tty);
  const { wire, waitAttached, parseDetachKeys } = await import('../attach.js');
  if (f.detachKeys) parseDetachKeys(f.detachKeys);
  const ctx = await context(io, await pullReporter(io));
  const { runContainer } = await import('../../app/run.js');
  let wired: ReturnType<typeof wire> | undefined;
  const r = await runContainer(ctx, toRunOptions(image, args, f), (a) => {
    wired = wire(a, {
      tty: Boolean(f.tty),
      interactive: Boolean(f.interactive),
      sigProxy: f.sigProxy,
      detachKeys: f.detachKeys,
      streams,
    });
  });
  if (f.detach || !r.attachment || !wired) {
    io.out.write(`${r.id}\n`);
    return;
  }
  const code = await waitAttached(r.attachment, wired);
  if (code === undefined) {
    // Detached with the keys: the container runs on, its monitor cleans up after it.
    r.attachment.close();
    return;
  }
  const { cleanupContainer } = await import('../../app/containers.js');
  await cleanupContainer(r.env, r.id);
  r.attachment.close();
  process.exitCode = code;
}

async function createAction(io: CliIo, image: string, args: string[], f: RunFlags): Promise<void> {
  f.interactive = (await attachStreams(f)).stdin;
  const ctx = await context(io, await pullReporter(io));
  const { createContainer } = await import('../../app/run.js');
  const { id } = await createContainer(ctx, toRunOptions(image, args, f));
  io.out.write(`${id}\n`);
}

/** Run `fn` for each name, print the name on success, report failures; any failure is the verb's failure (main.ts: exit 1, as docker stop/rm/kill). */
async function each(io: CliIo, names: string[], fn: (name: string) => Promise<unknown>): Promise<void> {
  let failed = false;
  for (const n of names) {
    try {
      await fn(n);
      io.out.write(`${n}\n`);
    } catch (err) {
      printError(err, io, Boolean(io.globals().debug));
      failed = true;
    }
  }
  if (failed) process.exitCode = EXIT_TSRUN;
}

/** `each`, with every container handled at once (Docker's CLI stops and restarts in parallel); output in argument order. */
async function eachParallel(io: CliIo, names: string[], fn: (name: string) => Promise<unknown>): Promise<void> {
  const done = names.map((n) =>
    fn(n).then(
      () => undefined,
      (err: unknown) => ({ err }),
    ),
  );
  let failed = false;
  for (const [i, p] of done.entries()) {
    const r = await p;
    if (r) {
      printError(r.err, io, Boolean(io.globals().debug));
      failed = true;
    } else {
      io.out.write(`${names[i]}\n`);
    }
  }
  if (failed) process.exitCode = EXIT_TSRUN;
}

/** stop/restart: -t, --time and Docker's newer --timeout; unset: the container's --stop-timeout, else 10. */
async function stopTimeout(o: { time?: string; timeout?: string }): Promise<number | undefined> {
  const v = o.timeout ?? o.time;
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) {
    const { TsrunError } = await import('../../errors.js');
    throw new TsrunError(
      'ERR_USAGE',
      `invalid argument "${v}" for "-t, --timeout" flag: strconv.ParseInt: parsing "${v}": invalid syntax`,
    );
  }
  return Math.max(0, Number(v));
}

type StopFlags = { time?: string; timeout?: string; signal?: string };

async function startAction(
  io: CliIo,
  names: string[],
  o: { attach?: boolean; interactive?: boolean; detachKeys?: string },
): Promise<void> {
  const e = await env(io);
  const { startContainer, cleanupContainer } = await import('../../app/containers.js');
  if (o.attach || o.interactive) {
    const { wire, waitAttached, parseDetachKeys } = await import('../attach.js');
    if (o.detachKeys) parseDetachKeys(o.detachKeys);
    const c = await e.containers.find(names[0] ?? '');
    await checkTty(o.interactive, c.record.config.tty);
    let wired: ReturnType<typeof wire> | undefined;
    const a = await startContainer(e, c, {
      attachIo: (att) => {
        wired = wire(att, {
          tty: c.record.config.tty,
          interactive: Boolean(o.interactive),
          sigProxy: true,
          detachKeys: o.detachKeys,
        });
      },
    });
    if (!a || !wired) return;
    const code = await waitAttached(a, wired);
    if (code === undefined) {
      a.close();
      return;
    }
    process.exitCode = code;
    await cleanupContainer(e, c.record.id);
    a.close();
    return;
  }
  await each(io, names, async (n) => {
    const c = await e.containers.find(n);
    if (c.observed.status === 'running') return;
    await startContainer(e, c);
  });
}

async function logsAction(
  io: CliIo,
  name: string,
  o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string; until?: string; details?: boolean },
): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  let tail: number | undefined;
  if (o.tail !== undefined && o.tail !== 'all') {
    tail = Number(o.tail);
    if (!Number.isInteger(tail))
      throw new TsrunError('ERR_USAGE', `invalid --tail "${o.tail}"`, { hint: 'a number of lines, or all' });
  }
  const { parseLogTime } = await import('../../app/log-times.js');
  const since = o.since !== undefined && o.since !== '' ? parseLogTime('since', o.since) : undefined;
  const until = o.until !== undefined && o.until !== '' ? parseLogTime('until', o.until) : undefined;
  const e = await env(io);
  const { readLogs } = await import('../../app/logs.js');
  const { writeOut } = await import('../stdio.js');
  for await (const l of readLogs(e, name, { follow: o.follow, tail, since, until })) {
    const stream = l.stream === 'stdout' ? io.out : io.err;
    if (o.timestamps) stream.write(`${l.time} `);
    // Docker's --details: the log's attributes, then a space; tsrun's logs have none.
    if (o.details) stream.write(' ');
    stream.write(l.text);
    if (l.newline) await writeOut(stream, '\n');
    else await writeOut(stream, '');
  }
}

async function inspectContainers(io: CliIo, names: string[], o: { format?: string; size?: boolean }): Promise<void> {
  const { inspectAction } = await import('./inspect.js');
  return inspectAction(io, names, o, 'container');
}

/**
 * `verb`: the command line's sole verb when it has one (cli/register.ts): then only that verb is
 * registered, without the `container` group (a sole verb is never `container`). `run` and
 * `create` alone declare a hundred options each, four commands with the group's (~2 ms of a
 * `ps`).
 */
export function registerContainerCommands(program: Command, io: CliIo, verb?: string): void {
  const want = (name: string) => verb === undefined || verb === name;
  const runCmd = (cmd: Command) =>
    runOptions(cmd.description('Create and run a new container from an image'), { run: true }).action(
      async (image: string, args: string[], f: RunFlags) => runAction(io, image, args, f),
    );
  if (want('run')) runCmd(explainOption(program.command('run'), 'run', io));

  const createCmd = (cmd: Command) =>
    runOptions(cmd.description('Create a new container without starting it'), { run: false }).action(
      async (image: string, args: string[], f: RunFlags) => createAction(io, image, args, f),
    );
  if (want('create')) createCmd(explainOption(program.command('create'), 'create', io));

  const startCmd = (cmd: Command) =>
    cmd
      .description('Start one or more stopped containers')
      .argument('<container...>')
      .option('-a, --attach', 'attach stdout/stderr and forward signals')
      .option('-i, --interactive', 'attach stdin')
      .option('--detach-keys <keys>', 'key sequence that detaches (default ctrl-p,ctrl-q)')
      .action(async (names: string[], o: { attach?: boolean; interactive?: boolean; detachKeys?: string }) =>
        startAction(io, names, o),
      );
  if (want('start')) startCmd(explainOption(program.command('start'), 'start', io));

  const stopCmd = (cmd: Command) =>
    cmd
      .description('Stop one or more running containers (stop signal, then SIGKILL)')
      .argument('<container...>')
      .option(
        '-t, --time <seconds>',
        "seconds to wait before killing (default: the container's --stop-timeout, else 10)",
      )
      .option('--timeout <seconds>', 'the same as -t')
      .option('-s, --signal <signal>', "signal to send (default: the container's --stop-signal, else SIGTERM)")
      .action(async (names: string[], o: StopFlags) => {
        const { stopContainer } = await import('../../app/containers.js');
        const e = await env(io);
        const t = await stopTimeout(o);
        await eachParallel(io, names, (n) => stopContainer(e, n, t, o.signal));
      });
  if (want('stop')) stopCmd(explainOption(program.command('stop'), 'stop', io));

  const restartCmd = (cmd: Command) =>
    cmd
      .description('Restart one or more containers')
      .argument('<container...>')
      .option(
        '-t, --time <seconds>',
        "seconds to wait before killing (default: the container's --stop-timeout, else 10)",
      )
      .option('--timeout <seconds>', 'the same as -t')
      .option('-s, --signal <signal>', "signal to send (default: the container's --stop-signal, else SIGTERM)")
      .action(async (names: string[], o: StopFlags) => {
        const { stopContainer, startContainer } = await import('../../app/containers.js');
        const e = await env(io);
        const t = await stopTimeout(o);
        // A manual restart is not one of the policy's: RestartCount stays (Docker).
        await eachParallel(io, names, async (n) => {
          await stopContainer(e, n, t, o.signal);
          await startContainer(e, await e.containers.find(n));
        });
      });
  if (want('restart')) restartCmd(explainOption(program.command('restart'), 'restart', io));

  const killCmd = (cmd: Command) =>
    cmd
      .description('Send a signal to one or more running containers')
      .argument('<container...>')
      .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
      .action(async (names: string[], o: { signal: string }) => {
        const { killContainer } = await import('../../app/containers.js');
        const e = await env(io);
        await each(io, names, (n) => killContainer(e, n, o.signal));
      });
  if (want('kill')) killCmd(program.command('kill'));

  const rmCmd = (cmd: Command) =>
    cmd
      .description('Remove one or more containers')
      .argument('<container...>')
      .option('-f, --force', 'kill and remove a running container')
      .option('-v, --volumes', 'remove the anonymous volumes of the container too (named volumes stay)')
      .action(async (names: string[], o: { force?: boolean; volumes?: boolean }) => {
        const { removeContainer } = await import('../../app/containers.js');
        const e = await env(io);
        await each(io, names, (n) => removeContainer(e, n, Boolean(o.force), Boolean(o.volumes)));
      });
  if (want('rm')) rmCmd(explainOption(program.command('rm'), 'rm', io));

  const psCmd = (cmd: Command) =>
    cmd
      .description('List containers')
      .option('-a, --all', 'show all containers (default: running only)')
      .option('-q, --quiet', 'only show ids')
      .option('-l, --latest', 'show the latest created container')
      .option('-n, --last <n>', 'show the n last created containers (all states)')
      .option('-s, --size', 'display total file sizes')
      .option(
        '-f, --filter <key=value>',
        'filter: status, name, id, label, ancestor, exited, network, volume, before, since, publish, expose, health',
        collect,
        [],
      )
      .option('--no-trunc', 'do not truncate output')
      .option('--format <template>', 'Go template (e.g. "{{.Names}}"), "table ...", or json')
      .action(async (o: PsFlags) => (await import('./ps.js')).psAction(io, o));
  if (want('ps')) psCmd(program.command('ps'));

  const logsCmd = (cmd: Command) =>
    cmd
      .description('Show the output of a container')
      .argument('<container>')
      .option('-f, --follow', 'follow the output')
      .option('-n, --tail <lines>', 'number of lines from the end (or all)')
      .option('-t, --timestamps', 'show timestamps')
      .option(
        '--since <time>',
        'only lines since a time (2013-01-02T13:23:37Z, a Unix timestamp) or a duration back from now (42m)',
      )
      .option('--until <time>', 'only lines before a time or a duration back from now')
      .option('--details', 'show the extra details given to the logs')
      .action(
        async (
          name: string,
          o: {
            follow?: boolean;
            tail?: string;
            timestamps?: boolean;
            since?: string;
            until?: string;
            details?: boolean;
          },
        ) => logsAction(io, name, o),
      );
  if (want('logs')) logsCmd(program.command('logs'));

  const waitCmd = (cmd: Command) =>
    cmd
      .description('Wait for containers to stop, then print their exit codes')
      .argument('<container...>')
      .action(async (names: string[]) => {
        const { waitContainer } = await import('../../app/containers.js');
        const e = await env(io);
        let failed = false;
        for (const n of names) {
          try {
            io.out.write(`${await waitContainer(e, n)}\n`);
          } catch (err) {
            printError(err, io, false);
            failed = true;
          }
        }
        if (failed) process.exitCode = EXIT_TSRUN;
      });
  if (want('wait')) waitCmd(program.command('wait'));

  const cpCmd = (cmd: Command) =>
    cmd
      .description('Copy files between a container and the host (CONTAINER:PATH on one side)')
      .argument('<src>')
      .argument('<dest>')
      .option('-a, --archive', 'keep uid/gid of the copied files')
      .option('-L, --follow-link', 'always follow a symbolic link given as SRC_PATH')
      .addHelpText(
        'after',
        '\nUse - as SRC_PATH to extract a tar from stdin into a directory, or as DEST_PATH to write a tar to stdout.',
      )
      .action(async (src: string, dest: string, o: { archive?: boolean; followLink?: boolean }) => {
        const { copy } = await import('../../app/cp.js');
        await copy(await context(io), src, dest, {
          archive: Boolean(o.archive),
          followLink: Boolean(o.followLink),
          stdout: io.out,
        });
      });
  if (want('cp')) cpCmd(program.command('cp'));

  const portCmd = (cmd: Command) =>
    cmd
      .description('List the port mappings of a container, or look one up')
      .argument('<container>')
      .argument('[port]', 'PRIVATE_PORT[/PROTO]')
      .action(async (name: string, port: string | undefined) => {
        const { containerPorts } = await import('../../app/container-views.js');
        for (const l of await containerPorts(await env(io), name, port)) io.out.write(`${l}\n`);
      });
  if (want('port')) portCmd(program.command('port'));

  if (verb !== undefined) {
    registerSessionCommands(program, io, undefined, verb);
    return;
  }
  const group = program.command('container').description('Manage containers');
  runCmd(explainOption(group.command('run'), 'run', io));
  createCmd(explainOption(group.command('create'), 'create', io));
  startCmd(explainOption(group.command('start'), 'start', io));
  stopCmd(explainOption(group.command('stop'), 'stop', io));
  restartCmd(explainOption(group.command('restart'), 'restart', io));
  killCmd(group.command('kill'));
  rmCmd(explainOption(group.command('rm').alias('remove'), 'rm', io));
  psCmd(group.command('ls').alias('list').alias('ps'));
  logsCmd(group.command('logs'));
  registerSessionCommands(program, io, group);
  waitCmd(group.command('wait'));
  cpCmd(group.command('cp'));
  portCmd(group.command('port'));
  group
    .command('inspect')
    .description('Show details of one or more containers as JSON')
    .argument('<container...>')
    .option('-f, --format <template>', 'Go template, or json')
    .option('-s, --size', 'display total file sizes')
    .action(async (names: string[], o: { format?: string; size?: boolean }) => inspectContainers(io, names, o));
  group
    .command('prune')
    .description('Remove all stopped containers')
    .option('-f, --force', 'do not ask for confirmation (tsrun never asks)')
    .action(async () => {
      const { pruneContainers } = await import('../../app/containers.js');
      const removed = await pruneContainers(await env(io));
      io.out.write('Deleted Containers:\n');
      for (const id of removed) io.out.write(`${id}\n`);
      io.out.write('\n');
    });
  // Run by the monitor after a container exits; idempotent.
  group
    .command('cleanup', { hidden: true })
    .argument('<id>')
    .action(async (id: string) => {
      const { cleanupAfterExit } = await import('../../app/containers.js');
      await cleanupAfterExit(await context(io), id);
    });
}

export { inspectContainers };
