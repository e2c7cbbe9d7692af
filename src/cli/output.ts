/**
 * What every CLI command shares, and the one rule for exit codes: the I/O a command gets
 * (`CliIo`), how an error is printed, and which code a failure exits with. Commands import this
 * module, never main.ts (which imports the commands).
 *
 * Exit codes, as Docker's CLI sets them (docker/cli cmd/docker/docker.go, cli/cobra.go): 0 success;
 * `run`, `create`, `start`, `exec`: the container's or command's own code, 126 (cannot execute),
 * 127 (not found), 125 for tsrun's own failures; every other verb exits 1 on error (a missing
 * object, a failed rm/stop/rmi, a template error, an unknown command, a wrong number of
 * arguments); a bad flag (unknown, missing or invalid value) exits 125 for every verb, as
 * Docker's FlagErrorFunc does; a TsrunError may carry Docker's own code (`inspect` template
 * parse error: 64). `exitCodeFor` is the one place that decides.
 */
import { TsrunError } from '../errors.js';

export const EXIT_TSRUN = 125;
/** The reader of our stdout or stderr went away: 128 + SIGPIPE, as a Go CLI killed by it. */
export const EXIT_BROKEN_PIPE = 141;

/** The verbs whose failures are 125 (tsrun's own) or the container's code, as `docker run`. */
const RUN_VERBS = new Set(['run', 'create', 'start', 'exec']);

/** Commander's errors that are pflag's flag errors in Docker (exit 125 for every verb). */
const FLAG_ERRORS = new Set([
  'commander.unknownOption',
  'commander.optionMissingArgument',
  'commander.invalidArgument',
  'commander.missingMandatoryOptionValue',
  'commander.conflictingOption',
]);

/**
 * The exit code for a failure of `verb` (the leaf command: `container rm` is rm). `reported` is
 * a code a command set itself (125 from a helper means "failed": 1 outside the run verbs).
 */
export function exitCodeFor(verb: string | undefined, err: unknown, reported?: number): number {
  const run = verb !== undefined && RUN_VERBS.has(verb);
  if (err === undefined) return reported === EXIT_TSRUN && !run ? 1 : (reported ?? 0);
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
  /** A command's whole output at once, to `out` (a listing: stdio.ts printOut, cheaper than `out`). */
  print(text: string): void;
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
