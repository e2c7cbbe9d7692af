/**
 * `--explain[=brief|full|json]` on the commands that do work: the flag, and the one explainer of
 * this process. `explainOption` adds the flag (and a --help example) to a command; when the
 * command runs with it, a preAction hook makes the explainer (reporter.ts, loaded only then),
 * which `explainListeners()` hands to whoever builds the command's reporter (run-output.ts's
 * withDebug for the container verbs; pull, push and build add it themselves). main.ts calls
 * `finishExplain` once the command is over, so the stages not reached are told too.
 *
 * `--explain` alone is brief (pflag.ts gives a flag whose value is optional no next word:
 * `run --explain busybox` is not a mode). Kept small: command modules import it at start-up.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import type { Reporter } from '../../events.js';
import type { ExplainReporter } from './reporter.js';
import type { ExplainVerb } from './stages.js';

let active: ExplainReporter | undefined;

const EXAMPLES: Record<ExplainVerb, string> = {
  pull: 'tsrun pull --explain busybox',
  push: 'tsrun push --explain localhost:5000/me/app:1',
  run:
    'tsrun run --explain --rm -p 8080:80 busybox httpd -f -p 80\n' +
    '  tsrun run --explain=full --rm busybox true          # and every argv, CNI input and result, timings\n' +
    '  tsrun run --explain=json --rm busybox true 2>&1 >/dev/null | jq -c .event   # docs/explain-schema.md',
  create: 'tsrun create --explain --name web busybox sleep 60',
  start: 'tsrun start --explain web',
  stop: 'tsrun stop --explain web',
  restart: 'tsrun restart --explain web',
  rm: 'tsrun rm --explain -f web',
  exec: 'tsrun exec --explain web ls /',
  build: 'tsrun build --explain -t app .',
};

/** Add `--explain` to a command that does work. */
export function explainOption(cmd: Command, verb: ExplainVerb, io: Pick<CliIo, 'err'>): Command {
  return cmd
    .option('--explain [mode]', 'tell each stage on stderr, with commands to look and do it by hand: brief, full, json')
    .addHelpText(
      'after',
      `\nExplained (stages, what to look at, the same step by hand; docs/how-containers-work.md):\n  ${EXAMPLES[verb]}\n`,
    )
    .hook('preAction', async (_cmd, action) => {
      const v = action.opts<{ explain?: string | boolean }>().explain;
      if (v === undefined || v === false) return;
      const mode = v === true || v === '' ? 'brief' : v;
      if (mode !== 'brief' && mode !== 'full' && mode !== 'json') {
        const { TsrunError } = await import('../../errors.js');
        throw new TsrunError('ERR_USAGE', `invalid argument "${mode}" for "--explain" flag: brief, full or json`, {
          detail: { exitCode: 125, flagError: true },
        });
      }
      const { explainReporter } = await import('./reporter.js');
      const err = io.err;
      active = explainReporter({
        verb,
        mode,
        err,
        color: Boolean(err.isTTY) && process.env.NO_COLOR === undefined,
      });
    });
}

/** The explainer as a listener, if this command explains (else none). */
export function explainListeners(): Reporter[] {
  return active ? [active] : [];
}

export const explaining = (): boolean => active !== undefined;

/** Tell what is left (main.ts, once the command is over; `failed`: it failed). */
export function finishExplain(failed: boolean): void {
  active?.finish(failed);
}
