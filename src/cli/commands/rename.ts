/** `rename` (and `container rename`): give a container a new name (app/rename.ts). */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerRenameCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .description('Rename a container')
      .argument('<container>', 'container name or id')
      .argument('<new-name>', 'the new name')
      .action(
        exitOne(async (container: string, newName: string) => {
          const { renameContainer } = await import('../../app/rename.js');
          await renameContainer(await context(io), container, newName);
        }),
      );
  cmd(program.command('rename'));
  cmd(group(program, 'container').command('rename'));
}
