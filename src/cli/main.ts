/**
 * argv → one use case → exit code. The only place that prints errors and sets the exit code.
 *
 * Exit codes: 0 success; 125 for tsrun's own failures and bad usage (as podman, and as
 * `docker run`); later, 126/127 and the container's own code for run/exec.
 * Start-up time is a feature: command modules are imported only when their verb runs, and use
 * cases only inside the action.
 */
import type { Command } from 'commander';
import { TsrunError } from '../errors.js';
import { projectVersion } from '../util/project.js';

export const EXIT_TSRUN = 125;
/** The reader of our stdout or stderr went away: 128 + SIGPIPE, as a Go CLI killed by it. */
export const EXIT_BROKEN_PIPE = 141;

export interface GlobalOptions {
  root?: string;
  debug?: boolean;
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
  // An unprivileged user's command runs inside the user's rootless namespace (src/rootless/);
  // root's start-up does not even load that module.
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0 && !process.env.TSRUN_ROOTLESS) {
    const { needsNamespace, runInNamespace } = await import('../rootless/enter.js');
    if (needsNamespace(argv, uid, process.env)) {
      try {
        process.exit(await runInNamespace(argv, process.env));
      } catch (err) {
        printError(err, { err: process.stderr }, argv.includes('--debug'));
        process.exit(EXIT_TSRUN);
      }
    }
  }
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

  let code: number;
  try {
    // Like docker: no arguments at all prints the usage and succeeds.
    if (argv.length === 0) program.help();
    await program.parseAsync(argv, { from: 'user' });
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version come through here with exit code 0.
      code = err.exitCode === 0 ? 0 : EXIT_TSRUN;
    } else {
      printError(err, io, Boolean(program.opts<GlobalOptions>().debug));
      const wanted = err instanceof TsrunError ? err.detail?.exitCode : undefined;
      code = typeof wanted === 'number' ? wanted : EXIT_TSRUN;
    }
  }
  // Never exit with output still queued for a slow reader (see stdio.ts).
  await flushStdio();
  process.exit(code);
}
