/**
 * `tsrun system prune`: Docker's verb for "remove what is stopped"; here it also repairs what a
 * crash left (app/system.ts). As Docker's, it asks first unless `-f` (no stdin: no).
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { registerServiceCommand } from './service.js';

export function registerSystemCommands(program: Command, io: CliIo): void {
  const infoCmd = (cmd: Command) =>
    cmd
      .description('Show where tsrun keeps things, what the host offers, and (rootless) what is missing')
      .option(
        '-f, --format <format>',
        'Go template (Docker\'s field names, e.g. "{{.DockerRootDir}}"; tsrun\'s report as .Tsrun), or json',
      )
      .action(async (opts: { format?: string }) => {
        const { processContext } = await import('../../app/context.js');
        const { systemInfo } = await import('../../app/info.js');
        const info = await systemInfo(processContext({ root: io.globals().root }), io.version);
        // A CI pre-flight step (`tsrun info`) fails when something rootless mode requires is missing.
        if (info.checks?.some((c) => c.required && !c.ok)) process.exitCode = 1;
        if (opts.format) {
          const { infoFormat } = await import('./version.js');
          io.out.write(await infoFormat(io, info, opts.format));
          return;
        }
        const lines = [
          `tsrun ${info.version}`,
          ` User: ${info.user.name} (uid ${info.user.uid})`,
          ` Rootless: ${info.rootless}`,
          ` Root Dir: ${info.rootDir}`,
          ` Run Dir: ${info.runDir}`,
          ` Runtime: ${info.runtime.error ? `MISSING (${info.runtime.error})` : `${info.runtime.version} (${info.runtime.path})`}`,
          ` Storage Driver: ${info.storage}`,
          ` Networks: ${info.network}`,
        ];
        if (info.checks) {
          lines.push(
            ` User namespace: ${info.pause ? `running (pause process ${info.pause})` : 'not started (the first command starts it)'}`,
            ' Rootless prerequisites:',
          );
          const w = Math.max(...info.checks.map((c) => c.name.length));
          for (const c of info.checks) {
            const state = c.ok ? 'ok' : c.required ? 'MISSING' : 'limited';
            lines.push(
              `  ${state.padEnd(8)} ${c.name.padEnd(w)}  ${c.detail}${c.ok || !c.fix ? '' : `\n  ${''.padEnd(8)} ${''.padEnd(w)}  fix: ${c.fix}`}`,
            );
          }
        }
        io.out.write(`${lines.join('\n')}\n`);
      });
  infoCmd(program.command('info'));
  const system = program.command('system').description('Manage tsrun');
  infoCmd(system.command('info'));
  registerServiceCommand(system, io);
  system
    .command('prune')
    .description(
      'Remove stopped containers, dangling images and the build cache, and repair what crashes left behind (mounts, network attachments)',
    )
    .option('-a, --all', 'remove all images no container uses, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--volumes', 'prune anonymous volumes too')
    .action(async (opts: { all?: boolean; force?: boolean; volumes?: boolean }) => {
      if (!opts.force) {
        const { confirm } = await import('../confirm.js');
        const warning = [
          'WARNING! This will remove:',
          '  - all stopped containers',
          '  - all networks not used by at least one container',
          ...(opts.volumes ? ['  - all anonymous volumes not used by at least one container'] : []),
          opts.all ? '  - all images without at least one container associated to them' : '  - all dangling images',
          '  - all build cache',
          '',
          'Are you sure you want to continue?',
        ].join('\n');
        if (!(await confirm(io.out, warning))) return;
      }
      const { processContext } = await import('../../app/context.js');
      const { openEnv } = await import('../../app/containers.js');
      const { systemPrune } = await import('../../app/system.js');
      const { humanSize } = await import('../format.js');
      const { withDebug } = await import('../run-output.js');
      const r = await systemPrune(await openEnv(processContext({ root: io.globals().root, reporter: withDebug(io) })), {
        all: opts.all,
      });
      // After the containers went: their anonymous volumes are unused now.
      const vols = opts.volumes
        ? await (
            await import('../../app/volumes.js')
          ).pruneVolumes(await openEnv(processContext({ root: io.globals().root })))
        : { removed: [], reclaimed: 0 };
      // Then the user networks no running container is on (Docker's "not used by at least one container").
      const nets = await (
        await import('../../app/networks.js')
      ).networkPrune(processContext({ root: io.globals().root }));
      // Docker's layout: a section per kind of object that had something removed, then the total.
      if (r.containers.length > 0)
        io.out.write(`Deleted Containers:\n${r.containers.map((id) => `${id}\n`).join('')}\n`);
      if (nets.length > 0) io.out.write(`Deleted Networks:\n${nets.map((n) => `${n}\n`).join('')}\n`);
      if (r.networks.length > 0)
        io.out.write(`Torn-down network attachments:\n${r.networks.map((id) => `${id}\n`).join('')}\n`);
      if (vols.removed.length > 0) io.out.write(`Deleted Volumes:\n${vols.removed.map((n) => `${n}\n`).join('')}\n`);
      if (r.images.length > 0)
        io.out.write(
          `Deleted Images:\n${r.images.map((l) => ('untagged' in l ? `untagged: ${l.untagged}\n` : `deleted: ${l.deleted}\n`)).join('')}\n`,
        );
      if (r.buildCache > 0) io.out.write(`Deleted build cache objects: ${r.buildCache}\n\n`);

      if (r.busy)
        io.err.write(
          'Note: a pull, build or container start held the store: unused layers and cache mounts were left for a later prune\n',
        );
      io.out.write(`Total reclaimed space: ${humanSize(r.reclaimed + vols.reclaimed)}\n`);
    });
  system
    .command('reset')
    .description('Remove all containers, images, build cache and state of this store (as podman system reset)')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { force?: boolean }) => {
      const { processContext } = await import('../../app/context.js');
      const { openEnv } = await import('../../app/containers.js');
      const env = await openEnv(processContext({ root: io.globals().root }));
      if (!opts.force) {
        const { confirm } = await import('../confirm.js');
        const warning = [
          'WARNING! This will remove:',
          '        - all containers',
          '        - all images',
          '        - all build cache',
          `        - the root directory: "${env.store.root}"`,
          `        - the run directory: "${env.containers.sp.run}"`,
          'Are you sure you want to continue?',
        ].join('\n');
        if (!(await confirm(io.out, warning))) return;
      }
      const { systemReset } = await import('../../app/reset.js');
      await systemReset(env);
    });
}
