/**
 * argv → one use case → exit code. The only place that prints errors and sets the exit code.
 *
 * Exit codes: `exitCodeFor` in output.ts, the one place that decides (Docker's rules).
 * Start-up time is a feature: command modules are imported only when their verb runs, and use
 * cases only inside the action.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { projectVersion } from '../util/project.js';
import { EXIT_BROKEN_PIPE, EXIT_TSRUN, exitCodeFor, printError, type CliIo, type GlobalOptions } from './output.js';

export async function main(argv: string[]): Promise<void> {
  const { guardStdio, flushStdio, printOut } = await import('./stdio.js');
  guardStdio(() => process.exit(EXIT_BROKEN_PIPE));
  const { Command: CommandCtor, CommanderError } = await import('commander');
  const program: Command = new CommandCtor('tsrun');
  // Read when used: a command that never writes to stdout or stderr does not make them (stdio.ts).
  const io: CliIo = {
    get out() {
      return process.stdout;
    },
    get err() {
      return process.stderr;
    },
    print: printOut,
    globals: () => program.opts<GlobalOptions>(),
    version: projectVersion(),
  };
  program
    .description('A daemonless container runtime: pull, run and build OCI images without a daemon')
    .version(io.version, '-v, --version', 'print the version')
    .option(
      '--root <dir>',
      'directory for all persistent state (env TSRUN_ROOT; default /var/lib/tsrun for root, ~/.local/share/tsrun otherwise)',
    )
    .option('--debug', 'print every pipeline event and stack traces')
    .option(
      '--config <dir>',
      'location of the client config files (config.json: credentials, psFormat, imagesFormat; env DOCKER_CONFIG; default ~/.docker)',
    )
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });

  await (await import('./register.js')).registerCommands(program, io, argv);

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
    (await import('./explain/flag.js')).finishExplain(true);
    if (!(err instanceof CommanderError)) printError(err, io, Boolean(program.opts<GlobalOptions>().debug));
    code = exitCodeFor(verb, err);
  }
  (await import('./explain/flag.js')).finishExplain(false);
  // Never exit with output still queued for a slow reader (see stdio.ts).
  await flushStdio();
  process.exit(code);
}
