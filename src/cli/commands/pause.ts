/**
 * `pause` / `unpause` (and their `container` forms): freeze and thaw containers (app/pause.ts).
 * Like docker, each container is tried; the errors are printed and the command exits 1 if any failed.
 */
import type { Command } from 'commander';
import { printError, type CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerPauseCommands(program: Command, io: CliIo): void {
  for (const verb of ['pause', 'unpause'] as const) {
    const cmd = (c: Command) =>
      c
        .description(
          verb === 'pause'
            ? 'Pause all processes within one or more containers'
            : 'Unpause all processes within one or more containers',
        )
        .argument('<container...>', 'container names or ids')
        .action(
          exitOne(async (names: string[]) => {
            const app = await import('../../app/pause.js');
            const ctx = await context(io);
            let failed = 0;
            for (const n of names) {
              try {
                await app[verb](ctx, n);
                io.out.write(`${n}\n`);
              } catch (err) {
                failed++;
                printError(err, io, Boolean(io.globals().debug));
              }
            }
            if (failed > 0) process.exitCode = 1;
          }),
        );
    cmd(program.command(verb));
    cmd(group(program, 'container').command(verb));
  }
}
