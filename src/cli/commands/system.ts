/**
 * `tsrun system prune`: Docker's verb for "remove what is stopped"; here it also repairs what a
 * crash left (app/system.ts). Like `container prune` it never asks (`-f` is accepted).
 */
import type { Command } from 'commander';
import type { CliIo } from '../main.js';

export function registerSystemCommands(program: Command, io: CliIo): void {
  const system = program.command('system').description('Manage tsrun');
  system.command('prune').description('Remove stopped containers and the build cache, and repair what crashes left behind (mounts, network attachments)')
    .option('-f, --force', 'do not ask for confirmation (tsrun never asks)')
    .action(async () => {
      const { processContext } = await import('../../app/context.js');
      const { openEnv } = await import('../../app/containers.js');
      const { systemPrune } = await import('../../app/system.js');
      const r = await systemPrune(await openEnv(processContext({ root: io.globals().root })));
      io.out.write('Deleted Containers:\n');
      for (const id of r.containers) io.out.write(`${id}\n`);
      if (r.networks.length > 0) {
        io.out.write('\nTorn-down network attachments:\n');
        for (const id of r.networks) io.out.write(`${id}\n`);
      }
      if (r.buildCache > 0) io.out.write(`\nDeleted build cache objects: ${r.buildCache}\n`);
      io.out.write('\n');
    });
}
