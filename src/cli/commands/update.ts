/** `update` (and `container update`): change resource limits (app/update.ts). */
import type { Command } from 'commander';
import { printError, type CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerUpdateCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .description('Update configuration (resource limits) of one or more containers')
      .argument('<container...>', 'container names or ids')
      .option('-m, --memory <bytes>', 'memory limit, e.g. 256m')
      .option('--memory-swap <bytes>', 'memory plus swap limit, -1 for unlimited swap')
      .option('--cpus <number>', 'number of CPUs, e.g. 1.5')
      .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
      .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
      .option('--pids-limit <int>', 'tune the container pids limit (-1 for unlimited)')
      .action(
        exitOne(
          async (
            names: string[],
            o: {
              memory?: string;
              memorySwap?: string;
              cpus?: string;
              cpuShares?: string;
              cpusetCpus?: string;
              pidsLimit?: string;
            },
          ) => {
            const { updateContainer } = await import('../../app/update.js');
            const { parseMemory } = await import('../../spec/options.js');
            const { TsrunError } = await import('../../errors.js');
            const num = (flag: string, v: string | undefined): number | undefined => {
              if (v === undefined) return undefined;
              const n = Number(v);
              if (!Number.isFinite(n)) throw new TsrunError('ERR_USAGE', `invalid argument "${v}" for "${flag}" flag`);
              return n;
            };
            const opts = {
              memory: o.memory !== undefined ? parseMemory(o.memory) : undefined,
              memorySwap:
                o.memorySwap !== undefined ? (o.memorySwap === '-1' ? -1 : parseMemory(o.memorySwap)) : undefined,
              cpus: num('--cpus', o.cpus),
              cpuShares: num('--cpu-shares', o.cpuShares),
              cpusetCpus: o.cpusetCpus,
              pidsLimit: num('--pids-limit', o.pidsLimit),
            };
            const ctx = await context(io);
            let failed = 0;
            for (const n of names) {
              try {
                await updateContainer(ctx, n, opts);
                io.out.write(`${n}\n`);
              } catch (err) {
                failed++;
                printError(err, io, Boolean(io.globals().debug));
              }
            }
            if (failed > 0) process.exitCode = 1;
          },
        ),
      );
  cmd(program.command('update'));
  cmd(group(program, 'container').command('update'));
}
