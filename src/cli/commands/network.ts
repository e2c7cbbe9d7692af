/**
 * `tsrun network create|ls|inspect|rm|prune|connect|disconnect` (app/networks.ts), with Docker's
 * flags, output and exit status 1 for errors.
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import { printError, type CliIo } from '../output.js';
import { context, exitOne } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function keyValues(list: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i === 0) throw new TsrunError('ERR_USAGE', `invalid argument "${kv}" for "${flag}" flag`);
    out[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}

const LS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';

/** `network inspect` and `inspect --type network`: Docker's JSON, or a template per network. */
export async function networkInspectAction(io: CliIo, refs: string[], format?: string): Promise<void> {
  const { networkInspect } = await import('../../app/networks.js');
  const { renderObjects } = await import('../template.js');
  const { inspectStruct } = await import('../views.js');
  const r = await networkInspect(refs);
  const out = renderObjects(
    format,
    r.found.map((v) => inspectStruct(v, 'network.Inspect')),
  );
  io.out.write(out.out);
  for (const m of r.missing) printError(new TsrunError('ERR_NETWORK_NOT_FOUND', `No such network: ${m}`), io, false);
  for (const e of out.errors) printError(e, io, false);
  if (r.missing.length + out.errors.length > 0) process.exitCode = 1;
}

export function registerNetworkCommands(program: Command, io: CliIo): void {
  const network = program.command('network').description('Manage networks');

  network
    .command('create')
    .description('Create a network')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'driver (bridge, the only one)', 'bridge')
    .option('--subnet <cidr>', 'IPv4 subnet, e.g. 172.28.0.0/16 (default: a free /24 of 10.90.0.0/16)')
    .option('--gateway <ip>', "the subnet's gateway (default: its first address)")
    .option('--internal', 'no way out of the network: no default route, no NAT')
    .option('--label <key=value>', 'set metadata', collect, [])
    .option('-o, --opt <key=value>', 'driver options (kept, shown by inspect)', collect, [])
    .action(
      exitOne(
        async (
          name: string,
          o: { driver: string; subnet?: string; gateway?: string; internal?: boolean; label: string[]; opt: string[] },
        ) => {
          const { networkCreate } = await import('../../app/networks.js');
          const net = await networkCreate(await context(io), {
            name,
            driver: o.driver,
            subnet: o.subnet,
            gateway: o.gateway,
            internal: o.internal,
            labels: keyValues(o.label, '--label'),
            options: keyValues(o.opt, '--opt'),
          });
          io.out.write(`${net.Id}\n`);
        },
      ),
    );

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only display network ids')
    .option('--no-trunc', 'do not truncate the output')
    .option('-f, --filter <filter>', 'filter: name, id, label, driver, type (custom|builtin)', collect, [])
    .option('--format <template>', 'Go template (e.g. "{{.Name}}"), "table ...", or json')
    .action(
      exitOne(async (o: { quiet?: boolean; trunc: boolean; filter: string[]; format?: string }) => {
        const { networkList } = await import('../../app/networks.js');
        const { renderList } = await import('../template.js');
        const { GoStruct } = await import('../gotemplate/value.js');
        let rows = await networkList();
        for (const f of o.filter) {
          const i = f.indexOf('=');
          const [k, v] = i < 0 ? [f, ''] : [f.slice(0, i), f.slice(i + 1)];
          if (k === 'name') rows = rows.filter((r) => r.name.includes(v));
          else if (k === 'id') rows = rows.filter((r) => r.id.startsWith(v));
          else if (k === 'driver') rows = rows.filter((r) => r.driver === v);
          else if (k === 'type') {
            if (v !== 'custom' && v !== 'builtin')
              throw new TsrunError('ERR_USAGE', `invalid filter: 'type'='${v}'`, { detail: { exitCode: 1 } });
            rows = rows.filter((r) => (v === 'custom') === (r.net !== undefined));
          } else if (k === 'label') {
            const j = v.indexOf('=');
            const [lk, lv] = j < 0 ? [v, undefined] : [v.slice(0, j), v.slice(j + 1)];
            rows = rows.filter((r) => r.net && lk in r.net.Labels && (lv === undefined || r.net.Labels[lk] === lv));
          } else throw new TsrunError('ERR_USAGE', `invalid filter '${k}'`, { detail: { exitCode: 1 } });
        }
        const format = o.quiet ? '{{.ID}}' : (o.format ?? LS_TABLE);
        io.print(
          renderList(format, rows, {
            toStruct: (r) =>
              new GoStruct({
                type: 'formatter.networkContext',
                fields: {
                  ID: o.trunc ? r.id.slice(0, 12) : r.id,
                  Name: r.name,
                  Driver: r.driver,
                  Scope: 'local',
                  IPv6: 'false',
                  Internal: String(r.net?.Internal ?? false),
                  CreatedAt: r.net?.Created ?? '',
                  Labels: Object.entries(r.net?.Labels ?? {})
                    .map(([k, v]) => `${k}=${v}`)
                    .join(','),
                },
              }),
            headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE' },
            defaultTable: LS_TABLE,
          }),
        );
      }),
    );

  network
    .command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<network...>', 'network names or ids')
    .option('-f, --format <template>', 'Go template, or json')
    .action(exitOne(async (refs: string[], o: { format?: string }) => networkInspectAction(io, refs, o.format)));

  network
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>', 'network names or ids')
    .option('-f, --force', 'do not error if the network does not exist')
    .action(
      exitOne(async (refs: string[], o: { force?: boolean }) => {
        const { networkRemove } = await import('../../app/networks.js');
        const ctx = await context(io);
        let failed = false;
        for (const ref of refs) {
          try {
            await networkRemove(ctx, ref);
            io.out.write(`${ref}\n`);
          } catch (err) {
            if (o.force && (err as TsrunError).code === 'ERR_NETWORK_NOT_FOUND') continue;
            printError(err, io, false);
            failed = true;
          }
        }
        if (failed) process.exitCode = 1;
      }),
    );

  network
    .command('prune')
    .description('Remove all unused networks')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'only networks with (label=KEY[=VALUE]) or without (label!=…) a label', collect, [])
    .action(
      exitOne(async (o: { force?: boolean; filter: string[] }) => {
        const { networkPrune, pruneFilter } = await import('../../app/networks.js');
        pruneFilter(o.filter); // a bad filter fails before the question
        if (!o.force) {
          const { confirm } = await import('../confirm.js');
          const warning =
            'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?';
          if (!(await confirm(io.out, warning))) return;
        }
        const names = await networkPrune(await context(io), o.filter);
        if (names.length > 0) io.out.write(`Deleted Networks:\n${names.map((n) => `${n}\n`).join('')}`);
      }),
    );

  network
    .command('connect')
    .description('Connect a container to a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('--alias <name>', 'add a network-scoped alias for the container', collect, [])
    .option('--ip <address>', 'IPv4 address (on a network made with --subnet)')
    .action(
      exitOne(async (net: string, container: string, o: { alias: string[]; ip?: string }) => {
        const { openEnv } = await import('../../app/containers.js');
        const { networkConnect } = await import('../../app/networks.js');
        await networkConnect(await openEnv(await context(io)), net, container, { aliases: o.alias, ip: o.ip });
      }),
    );

  network
    .command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action(
      exitOne(async (net: string, container: string, o: { force?: boolean }) => {
        const { openEnv } = await import('../../app/containers.js');
        const { networkDisconnect } = await import('../../app/networks.js');
        await networkDisconnect(await openEnv(await context(io)), net, container, Boolean(o.force));
      }),
    );
}
