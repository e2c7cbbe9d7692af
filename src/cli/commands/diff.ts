/**
 * `diff` (and `container diff`): Docker's `A|C|D PATH` lines for a container's changes (app/diff.ts).
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerDiffCommands(program: Command, io: CliIo): void {
  const diffCmd = (cmd: Command) =>
    cmd
      .description(
        "Inspect changes to files or directories on a container's filesystem (A added, C changed, D deleted)",
      )
      .argument('<container>', 'container name or id')
      .action(
        exitOne(async (container: string) => {
          const { containerDiff } = await import('../../app/diff.js');
          const changes = await containerDiff(await context(io), container);
          io.out.write(changes.map((ch) => `${ch.kind} ${ch.path}\n`).join(''));
        }),
      );
  diffCmd(program.command('diff'));
  diffCmd(group(program, 'container').command('diff'));
}
