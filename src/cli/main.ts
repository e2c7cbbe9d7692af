/**
 * argv → one use case → exit code. The only place that prints errors and sets the exit code.
 *
 * Exit codes, as Docker's CLI sets them (docker/cli cmd/docker/docker.go, cli/cobra.go): 0 success;
 * `run`, `create`, `start`, `exec`: the container's or command's own code, 126 (cannot execute),
 * 127 (not found), 125 for tsrun's own failures; every other verb exits 1 on error (a missing
 * object, a failed rm/stop/rmi, a template error, an unknown command, a wrong number of
 * arguments); a bad flag (unknown, missing or invalid value) exits 125 for every verb, as
 * Docker's FlagErrorFunc does; a TsrunError may carry Docker's own code (`inspect` template
 * parse error: 64). `exitCodeFor` is the one place that decides.
 * Start-up time is a feature: command modules are imported only when their verb runs, and use
 * cases only inside the action.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { projectVersion } from '../util/project.js';

export const EXIT_TSRUN = 125;
/** The reader of our stdout or stderr went away: 128 + SIGPIPE, as a Go CLI killed by it. */
export const EXIT_BROKEN_PIPE = 141;

/** The verbs whose failures are 125 (tsrun's own) or the container's code, as `docker run`. */
const RUN_VERBS = new Set(['run', 'create', 'start', 'exec']);

/** Commander's errors that are pflag's flag errors in Docker (exit 125 for every verb). */
const FLAG_ERRORS = new Set(['commander.unknownOption', 'commander.optionMissingArgument', 'commander.invalidArgument',
  'commander.missingMandatoryOptionValue', 'commander.conflictingOption']);

/**
 * The exit code for a failure of `verb` (the leaf command: `container rm` is rm). `reported` is
 * a code a command set itself (125 from a helper means "failed": 1 outside the run verbs).
 */
export function exitCodeFor(verb: string | undefined, err: unknown, reported?: number): number {
  const run = verb !== undefined && RUN_VERBS.has(verb);
  if (err === undefined) return reported === EXIT_TSRUN && !run ? 1 : reported ?? 0;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('commander.')) {
    // A group alone (`tsrun container`) shows its help: Docker exits 0.
    if ((err as { exitCode?: number }).exitCode === 0 || code === 'commander.help') return 0;
    return FLAG_ERRORS.has(code) ? EXIT_TSRUN : 1;
  }
  const wanted = err instanceof TsrunError ? err.detail?.exitCode : undefined;
  if (typeof wanted === 'number') return wanted;
  return run ? EXIT_TSRUN : 1;
}

export interface GlobalOptions {
  root?: string;
  debug?: boolean;
  /** Where the client config.json lives (Docker's --config; sets DOCKER_CONFIG). */
  config?: string;
}

/** Everything a command needs from the CLI around it. */
export interface CliIo {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  globals(): GlobalOptions;
  /** tsrun's version (package.json), read once. */
  version: string;
}

export function printError(err: unknown, io: Pick<CliIo, 'err'>, debug: boolean): void {
  if (err instanceof TsrunError) {
    io.err.write(`Error: ${err.message}\n`);
    if (err.hint) io.err.write(`hint: ${err.hint}\n`);
    if (debug && err.stack) io.err.write(`${err.stack}\n`);
  } else {
    const e = err as Error;
    io.err.write(`Error: ${e?.message ?? String(err)}\n`);
    if (debug && e?.stack) io.err.write(`${e.stack}\n`);
  }
}

export async function main(argv: string[]): Promise<void> {
  const { guardStdio, flushStdio } = await import('./stdio.js');
  guardStdio(() => process.exit(EXIT_BROKEN_PIPE));
  const { Command: CommandCtor, CommanderError } = await import('commander');
  const program: Command = new CommandCtor('tsrun');
  const io: CliIo = {
    out: process.stdout,
    err: process.stderr,
    globals: () => program.opts<GlobalOptions>(),
    version: projectVersion(),
  };
  program
    .description('A daemonless container runtime: pull, run and build OCI images without a daemon')
    .version(io.version, '-v, --version', 'print the version')
    .option('--root <dir>', 'directory for all persistent state (env TSRUN_ROOT; default /var/lib/tsrun for root, ~/.local/share/tsrun otherwise)')
    .option('--debug', 'print every pipeline event and stack traces')
    .option('--config <dir>', 'location of the client config files (config.json: credentials, psFormat, imagesFormat; env DOCKER_CONFIG; default ~/.docker)')
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });

  const { registerImageCommands } = await import('./commands/images.js');
  registerImageCommands(program, io);
  const { registerAuthCommands } = await import('./commands/login.js');
  registerAuthCommands(program, io);
  const { registerContainerCommands } = await import('./commands/containers.js');
  registerContainerCommands(program, io);
  const { registerBuildCommands } = await import('./commands/build.js');
  registerBuildCommands(program, io);
  const { registerSystemCommands } = await import('./commands/system.js');
  registerSystemCommands(program, io);
  (await import('./commands/save.js')).registerSaveCommands(program, io);
  (await import('./commands/export.js')).registerExportCommands(program, io);
  (await import('./commands/commit.js')).registerCommitCommands(program, io);
  (await import('./commands/diff.js')).registerDiffCommands(program, io);
  (await import('./commands/pause.js')).registerPauseCommands(program, io);
  (await import('./commands/rename.js')).registerRenameCommands(program, io);
  (await import('./commands/top.js')).registerTopCommands(program, io);
  (await import('./commands/stats.js')).registerStatsCommands(program, io);
  (await import('./commands/update.js')).registerUpdateCommands(program, io);
  (await import('./commands/events.js')).registerEventsCommands(program, io);
  const { registerVersionCommand } = await import('./commands/version.js');
  registerVersionCommand(program, io);
  const { registerUnshareCommand } = await import('./commands/unshare.js');
  registerUnshareCommand(program, io);

  // An unprivileged user's command runs inside the user's rootless namespace (src/rootless/);
  // root's start-up does not even load that module.
  const uid = process.getuid?.() ?? 0;
  if (process.env.TSRUN_CWD && process.env.TSRUN_ROOTLESS) {
    try {
      (await import('../rootless/enter.js')).restoreCwd(process.env);
    } catch (err) {
      printError(err, { err: process.stderr }, argv.includes('--debug'));
      await flushStdio();
      process.exit(EXIT_TSRUN);
    }
  } else if (uid !== 0 && !process.env.TSRUN_ROOTLESS) {
    const { needsNamespace, runInNamespace } = await import('../rootless/enter.js');
    const { commandPlan } = await import('./own-options.js');
    const plan = commandPlan(program, argv);
    if (needsNamespace(plan, uid, process.env)) {
      try {
        process.exit(await runInNamespace(argv, process.env));
      } catch (err) {
        printError(err, { err: process.stderr }, argv.includes('--debug'));
        await flushStdio();
        process.exit(exitCodeFor(plan.path[0], err));
      }
    }
  }

  let code: number;
  let verb: string | undefined;
  try {
    // Like docker: no arguments at all prints the usage and succeeds.
    if (argv.length === 0) program.help();
    const { normalize } = await import('./pflag.js');
    const n = normalize(program, argv);
    verb = n.verb;
    program.hook('preAction', (_top, action) => {
      const dir = program.opts<GlobalOptions>().config;
      if (dir) process.env.DOCKER_CONFIG = path.resolve(dir);
      for (let c: Command | null = action; c; c = c.parent) {
        for (const [k, v] of Object.entries(n.overrides.get(c) ?? {})) c.setOptionValueWithSource(k, v, 'cli');
      }
    });
    await program.parseAsync(n.argv, { from: 'user' });
    code = exitCodeFor(verb, undefined, typeof process.exitCode === 'number' ? process.exitCode : 0);
  } catch (err) {
    // Commander has printed its own message (--help and --version come through here with 0).
    if (!(err instanceof CommanderError)) printError(err, io, Boolean(program.opts<GlobalOptions>().debug));
    code = exitCodeFor(verb, err);
  }
  // Never exit with output still queued for a slow reader (see stdio.ts).
  await flushStdio();
  process.exit(code);
}
