/**
 * `search TERM` (Docker's columns NAME DESCRIPTION STARS OFFICIAL, its --filter, --limit,
 * --no-trunc and --format with Docker's field names) and `search --list-tags IMAGE` (podman's
 * NAME TAG rows). The use case is app/search.ts.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne } from './common.js';

const EXAMPLES = `
Examples:
  tsrun search node                            # Docker Hub (TSRUN_SEARCH_INDEX_URL: another index)
  tsrun search --filter is-official=true --filter stars=100 node
  tsrun search --format '{{.Name}}: {{.StarCount}}' node
  tsrun search localhost:5000/app              # the repositories of that registry whose name has "app"
  tsrun search --list-tags node                # every tag of node (podman's --list-tags)
  tsrun search --list-tags localhost:5000/app --limit 5
`;

const SEARCH_HEADERS = {
  Name: 'NAME',
  Description: 'DESCRIPTION',
  StarCount: 'STARS',
  IsOfficial: 'OFFICIAL',
  IsAutomated: 'AUTOMATED',
};
const TAGS_HEADERS = { Name: 'NAME', Tag: 'TAG' };

interface SearchFlags {
  limit?: string;
  filter: string[];
  format?: string;
  trunc: boolean;
  listTags?: boolean;
}

export function registerSearchCommands(program: Command, io: CliIo): void {
  program
    .command('search')
    .description('Search Docker Hub (or a registry, REGISTRY/TERM) for images; --list-tags: the tags of one')
    .argument('<term>', 'what to look for, or with --list-tags a repository')
    .option(
      '-f, --filter <filter>',
      'is-official=true|false, stars=N (at least N stars), is-automated=true|false',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--limit <n>', 'at most this many results (default 25; with --list-tags: all tags)')
    .option('--format <template>', 'Go template (e.g. "{{.Name}}\\t{{.StarCount}}"), "table ...", or json')
    .option('--no-trunc', 'do not truncate the description')
    .option('--list-tags', "list the tags of the repository TERM (following the registry's pages)")
    .addHelpText('after', EXAMPLES)
    .action(exitOne(async (term: string, o: SearchFlags) => searchAction(io, term, o)));
}

async function searchAction(io: CliIo, term: string, o: SearchFlags): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  let limit: number | undefined;
  if (o.limit !== undefined) {
    limit = Number(o.limit);
    if (!/^-?\d+$/.test(o.limit.trim()))
      throw new TsrunError(
        'ERR_USAGE',
        `invalid argument "${o.limit}" for "--limit" flag: strconv.ParseInt: parsing "${o.limit}": invalid syntax`,
        { detail: { exitCode: 125 } },
      );
  }
  const { renderList, GoStruct } = await import('../template.js');
  if (o.listTags) {
    if (o.filter.length > 0) throw new TsrunError('ERR_USAGE', 'filters are not applicable to --list-tags');
    const { listTags } = await import('../../app/search.js');
    const r = await listTags(await context(io), term);
    const tags = limit !== undefined && limit > 0 ? r.tags.slice(0, limit) : r.tags;
    io.out.write(
      renderList(o.format, tags, {
        toStruct: (tag) => new GoStruct({ type: 'entities.listTagsEntry', fields: { Name: r.name, Tag: tag } }),
        headers: TAGS_HEADERS,
        defaultTable: 'table {{.Name}}\t{{.Tag}}',
      }),
    );
    return;
  }
  const { search } = await import('../../app/search.js');
  const { ellipsis } = await import('../views.js');
  const rows = await search(await context(io), term, { limit, filters: o.filter });
  io.out.write(
    renderList(o.format, rows, {
      toStruct: (r) =>
        new GoStruct({
          type: '*formatter.searchContext',
          fields: {
            Name: r.name,
            Description: () => {
              const d = r.description.replace(/[\r\n]/g, ' ');
              return o.trunc ? ellipsis(d, 45) : d;
            },
            StarCount: String(r.starCount),
            IsOfficial: r.isOfficial ? '[OK]' : '',
            IsAutomated: r.isAutomated ? '[OK]' : '',
          },
        }),
      headers: SEARCH_HEADERS,
      defaultTable: 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}',
    }),
  );
}
