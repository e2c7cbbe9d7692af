/**
 * `tsrun system prune`: Docker's verb for "remove what is stopped"; here it also repairs what a
 * crash left (app/system.ts). Like `container prune` it never asks (`-f` is accepted).
 */
import type { Command } from 'commander';
import type { CliIo } from '../main.js';

export function registerSystemCommands(program: Command, io: CliIo): void {
  const infoCmd = (cmd: Command) => cmd
    .description('Show where tsrun keeps things, what the host offers, and (rootless) what is missing')
    .option('-f, --format <format>', 'Go template (Docker\'s field names, e.g. "{{.DockerRootDir}}"; tsrun\'s report as .Tsrun), or json')
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
        lines.push(` User namespace: ${info.pause ? `running (pause process ${info.pause})` : 'not started (the first command starts it)'}`, ' Rootless prerequisites:');
        const w = Math.max(...info.checks.map((c) => c.name.length));
        for (const c of info.checks) {
          const state = c.ok ? 'ok' : c.required ? 'MISSING' : 'limited';
          lines.push(`  ${state.padEnd(8)} ${c.name.padEnd(w)}  ${c.detail}${c.ok || !c.fix ? '' : `\n  ${''.padEnd(8)} ${''.padEnd(w)}  fix: ${c.fix}`}`);
        }
      }
      io.out.write(`${lines.join('\n')}\n`);
    });
  infoCmd(program.command('info'));
  const system = program.command('system').description('Manage tsrun');
  infoCmd(system.command('info'));
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
