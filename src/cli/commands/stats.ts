/**
 * `stats [--no-stream] [-a] [--format T] [CONTAINER...]` (and `container stats`): resource use
 * in docker stats's columns (app/stats.ts). Without --no-stream the table is redrawn every
 * second until Ctrl-C, as docker does.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerStatsCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .description(
        'Display a live stream of container(s) resource usage statistics (CPU, memory, network and block I/O, pids)',
      )
      .argument('[container...]', 'container names or ids (default: all running)')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('--no-stream', 'disable streaming stats and only pull the first result')
      .option('--no-trunc', 'do not truncate output')
      .option('--format <template>', 'Go template (e.g. "{{.Name}} {{.CPUPerc}}"), "table ...", or json')
      .action(
        exitOne(async (names: string[], o: { all?: boolean; stream: boolean; trunc: boolean; format?: string }) => {
          const { statsTargets, statsOnce } = await import('../../app/stats.js');
          const { bytesSize, humanSize } = await import('../format.js');
          const { env, list } = await statsTargets(await context(io), names, Boolean(o.all));
          type Row = Awaited<ReturnType<typeof statsOnce>>[number];
          const pct = (v: number) => `${v.toFixed(2)}%`;
          const fields: Record<string, (r: Row) => string | number> = {
            Container: (r) => (o.trunc ? r.id.slice(0, 12) : r.id),
            ID: (r) => (o.trunc ? r.id.slice(0, 12) : r.id),
            Name: (r) => r.name,
            CPUPerc: (r) => pct(r.cpuPercent),
            MemUsage: (r) => `${bytesSize(r.memUsage)} / ${bytesSize(r.memLimit)}`,
            MemPerc: (r) => pct(r.memPercent),
            NetIO: (r) => `${humanSize(r.netRx)} / ${humanSize(r.netTx)}`,
            BlockIO: (r) => `${humanSize(r.blockRead)} / ${humanSize(r.blockWrite)}`,
            PIDs: (r) => r.pids,
          };
          const render = async (): Promise<string> => {
            const rows = await statsOnce(env, list);
            const { renderList, GoStruct } = await import('../template.js');
            return renderList(o.format, rows, {
              toStruct: (r) =>
                new GoStruct({
                  type: '*formatter.statsContext',
                  fields: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, () => f(r)])),
                }),
              headers: {
                Container: 'CONTAINER',
                ID: 'CONTAINER ID',
                Name: 'NAME',
                CPUPerc: 'CPU %',
                MemUsage: 'MEM USAGE / LIMIT',
                MemPerc: 'MEM %',
                NetIO: 'NET I/O',
                BlockIO: 'BLOCK I/O',
                PIDs: 'PIDS',
              },
              defaultTable:
                'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}',
            });
          };
          if (!o.stream) {
            io.out.write(await render());
            return;
          }
          for (;;) {
            const text = await render();
            io.out.write(`\x1b[2J\x1b[H${text}`);
            await new Promise((r) => setTimeout(r, 500));
          }
        }),
      );
  cmd(program.command('stats'));
  cmd(group(program, 'container').command('stats'));
}
