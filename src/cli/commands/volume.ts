/**
 * `tsrun volume create|ls|inspect|rm|prune` (app/volumes.ts), with Docker's output: `create`
 * prints the name, `ls` Docker's table (`DRIVER  VOLUME NAME`) or a Go template over Docker's
 * volume context, `inspect` Docker's JSON, `rm` each name it removed, `prune` "Deleted Volumes:"
 * and "Total reclaimed space:". Errors exit 1, as Docker's.
 */
import type { Command } from 'commander';
import { printError, type CliIo } from '../output.js';
import type { VolumeRow } from '../../app/volumes.js';
import { context, exitOne } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function keyValues(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}

async function env(io: CliIo) {
  const { openEnv } = await import('../../app/containers.js');
  return openEnv(await context(io));
}

/** Docker's volumeContext (cli/command/formatter/volume.go). */
async function volumeFormat() {
  const { GoStruct } = await import('../template.js');
  return {
    defaultTable: 'table {{.Driver}}\t{{.Name}}',
    headers: {
      Name: 'VOLUME NAME',
      Driver: 'DRIVER',
      Scope: 'SCOPE',
      Mountpoint: 'MOUNTPOINT',
      Labels: 'LABELS',
      Links: 'LINKS',
      Size: 'SIZE',
      Availability: 'AVAILABILITY',
      Group: 'GROUP',
    },
    toStruct: (v: VolumeRow) => {
      const labels = v.Labels ?? {};
      const s = new GoStruct({
        type: '*formatter.volumeContext',
        fields: {
          Name: v.Name,
          Driver: v.Driver,
          Scope: v.Scope,
          Mountpoint: v.Mountpoint,
          Labels: Object.entries(labels)
            .map(([k, val]) => `${k}=${val}`)
            .join(','),
          Links: 'N/A',
          Size: 'N/A',
          Availability: 'N/A',
          Group: 'N/A',
        },
        methods: { Label: { params: ['string'], fn: (k) => labels[k as string] ?? '' } },
      });
      s.spec.json = () =>
        Object.fromEntries(
          Object.keys(s.spec.fields)
            .sort()
            .map((k) => [k, s.field(k)]),
        );
      return s;
    },
  };
}

export function registerVolumeCommands(program: Command, io: CliIo): void {
  const volume = program.command('volume').description('Manage volumes');

  volume
    .command('create')
    .description('Create a volume')
    .argument('[name]', 'the name (default: a random one, an anonymous volume)')
    .option('-d, --driver <driver>', 'volume driver (only local)', 'local')
    .option('--label <key=value>', 'set metadata on the volume', collect, [])
    .option('-o, --opt <key=value>', 'driver options (the local driver takes none)', collect, [])
    .option('--name <name>', 'the name (as the argument)')
    .action(
      exitOne(async (arg: string | undefined, o: { driver: string; label: string[]; opt: string[]; name?: string }) => {
        const { createVolume } = await import('../../app/volumes.js');
        const v = await createVolume(await env(io), {
          name: arg ?? o.name,
          driver: o.driver,
          labels: keyValues(o.label),
          options: keyValues(o.opt),
        });
        io.out.write(`${v.Name}\n`);
      }),
    );

  volume
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-q, --quiet', 'only display volume names')
    .option('-f, --filter <filter>', 'filter output (dangling=true|false, name=…, label=…, driver=local)', collect, [])
    .option('--format <format>', 'format output using a Go template, or table, or json')
    .action(
      exitOne(async (o: { quiet?: boolean; filter: string[]; format?: string }) => {
        const { listVolumes } = await import('../../app/volumes.js');
        const { renderList } = await import('../template.js');
        const rows = await listVolumes(await env(io), o.filter);
        const format = o.quiet ? '{{.Name}}' : o.format;
        io.print(renderList(format, rows, await volumeFormat()));
      }),
    );

  volume
    .command('inspect')
    .description('Display detailed information on one or more volumes')
    .argument('<volume...>')
    .option('-f, --format <format>', 'format output using a Go template, or json')
    .action(
      exitOne(async (names: string[], o: { format?: string }) => {
        const { inspectVolume } = await import('../../app/volumes.js');
        const { renderObjects, parseTemplate } = await import('../template.js');
        const { inspectStruct } = await import('../views.js');
        if (o.format && o.format !== 'json') parseTemplate(o.format, 'template parsing error', 64);
        const e = await env(io);
        const found = [];
        const errors: Error[] = [];
        for (const n of names) {
          try {
            const v = await inspectVolume(e, n);
            found.push(inspectStruct(v as unknown as Record<string, unknown>, 'volume.Volume'));
          } catch (err) {
            errors.push(err as Error);
          }
        }
        const r = renderObjects(o.format, found);
        io.out.write(r.out);
        for (const err of [...errors, ...r.errors]) printError(err, io, false);
        if (errors.length + r.errors.length > 0) process.exitCode = 1;
      }),
    );

  volume
    .command('rm')
    .alias('remove')
    .description('Remove one or more volumes (not one a container uses)')
    .argument('<volume...>')
    .option('-f, --force', 'no error for a volume that does not exist')
    .action(
      exitOne(async (names: string[], o: { force?: boolean }) => {
        const { removeVolumes } = await import('../../app/volumes.js');
        const r = await removeVolumes(await env(io), names, Boolean(o.force));
        for (const n of r.removed) io.out.write(`${n}\n`);
        for (const err of r.errors) printError(err, io, Boolean(io.globals().debug));
        if (r.errors.length > 0) process.exitCode = 1;
      }),
    );

  volume
    .command('prune')
    .description('Remove unused anonymous volumes (with -a: every unused volume)')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(
      exitOne(async (o: { all?: boolean; force?: boolean }) => {
        if (!o.force) {
          const { confirm } = await import('../confirm.js');
          const warning = o.all
            ? 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?'
            : 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?';
          if (!(await confirm(io.out, warning))) return;
        }
        const { pruneVolumes } = await import('../../app/volumes.js');
        const { humanSize } = await import('../format.js');
        const r = await pruneVolumes(await env(io), { all: o.all });
        if (r.removed.length > 0) io.out.write(`Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`);
        io.out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      }),
    );
}
