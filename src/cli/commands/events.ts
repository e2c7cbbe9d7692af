/**
 * `events` (and `system events`): what happened to this store's containers and images, as far as
 * a daemonless tool can know (app/events.ts says which events exist).
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerEventsCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .summary('Get events of this store (as far as a daemonless tool can know)')
      .description(
        'Get events of this store: container create, start, pause, die and image pull, tag — read back from the store, ' +
          'since no daemon watches (destroy, stop, kill, exec and starts before the latest one are not known). ' +
          'Without --until it follows new events until interrupted; without --since it shows only new ones',
      )
      .option(
        '--since <time>',
        'show events created since this time (RFC 3339, unix seconds, or a duration ago such as 10m)',
      )
      .option('--until <time>', 'stream events until this time')
      .option(
        '-f, --filter <key=value>',
        'filter: container=, event=, type=container|image, image=, label=',
        collect,
        [],
      )
      .option('--format <template>', 'Go template (e.g. "{{.Action}} {{.Actor.ID}}"), or json')
      .action(
        exitOne(async (o: { since?: string; until?: string; filter: string[]; format?: string }) => {
          const { streamEvents } = await import('../../app/events.js');
          const line = (e: Awaited<Parameters<Parameters<typeof streamEvents>[2]>[0]>): string => {
            if (o.format) return '';
            const t = new Date(e.timeNano / 1e6)
              .toISOString()
              .replace(/\.(\d{3})Z$/, (_m, ms: string) => `.${ms}000000Z`);
            const attrs = Object.entries(e.Actor.Attributes)
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([k, v]) => `${k}=${v}`)
              .join(', ');
            return `${t} ${e.Type} ${e.Action} ${e.Actor.ID} (${attrs})\n`;
          };
          const { renderObject } = await import('../template.js');
          const abort = new AbortController();
          const stop = () => abort.abort();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          try {
            await streamEvents(
              await context(io),
              { since: o.since, until: o.until, filters: o.filter },
              (e) => {
                io.out.write(o.format ? renderObject(o.format, e as never) : line(e));
              },
              abort.signal,
            );
          } finally {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          }
        }),
      );
  cmd(program.command('events'));
  cmd(group(program, 'system').command('events'));
}
