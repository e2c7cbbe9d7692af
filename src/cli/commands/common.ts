/**
 * What the command files for save/load, export/import, commit, diff, pause/unpause, rename,
 * top, stats, update and events share: Docker's exit status 1 for their errors, a group command
 * (`image`, `container`) to hang their aliases on, and the context.
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import type { CliIo } from '../output.js';

/**
 * Run `fn`; a failure exits 1, as these docker commands do (only run/create/start/exec use 125,
 * src/cli/main.ts), unless the error already asks for a code.
 */
export function exitOne<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof TsrunError) {
        if (typeof err.detail?.exitCode === 'number') throw err;
        throw new TsrunError(err.code, err.message, {
          hint: err.hint,
          cause: err.cause ?? err,
          retryable: err.retryable,
          detail: { ...err.detail, exitCode: 1 },
        });
      }
      const e = err as Error;
      throw new TsrunError('ERR_INTERNAL', e?.message ?? String(err), { cause: err, detail: { exitCode: 1 } });
    }
  };
}

/** The `image` or `container` group another file registered, or a new one. */
export function group(program: Command, name: 'image' | 'container' | 'system'): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name);
}

export async function context(io: CliIo) {
  const { processContext } = await import('../../app/context.js');
  const { withDebug } = await import('../run-output.js');
  return processContext({ root: io.globals().root, reporter: withDebug(io) });
}
