/**
 * `top CONTAINER [ps OPTIONS]` (and `container top`): the container's processes through the
 * host's ps (app/top.ts). Everything after the container goes to ps: `top c -o pid,comm`.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerTopCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .description('Display the running processes of a container (ps OPTIONS default to -ef)')
      .argument('<container>', 'container name or id')
      .argument('[ps-options...]', 'options for ps, e.g. -o pid,comm')
      .allowUnknownOption()
      .passThroughOptions()
      .helpOption('--help', 'display help for command')
      .action(
        exitOne(async (container: string, psArgs: string[]) => {
          const { top } = await import('../../app/top.js');
          const { table } = await import('../format.js');
          const r = await top(await context(io), container, psArgs);
          io.out.write(table(r.titles, r.processes));
        }),
      );
  cmd(program.command('top'));
  cmd(group(program, 'container').command('top'));
}
