/**
 * `export` / `import` (and `container export`, `image import`): a container's filesystem as a
 * tar, and a filesystem tar as a new image (app/export.ts, app/import.ts).
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerExportCommands(program: Command, io: CliIo): void {
  const exportCmd = (cmd: Command) =>
    cmd
      .description("Export a container's filesystem as a tar archive (to STDOUT by default)")
      .argument('<container>', 'container name or id')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action(
        exitOne(async (container: string, o: { output?: string }) => {
          const { exportContainer, exportToFile } = await import('../../app/export.js');
          const ctx = await context(io);
          if (o.output !== undefined && o.output !== '-') {
            await exportToFile(ctx, container, o.output);
            return;
          }
          if (io.out.isTTY)
            throw new TsrunError('ERR_USAGE', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
          await exportContainer(ctx, container, io.out);
        }),
      );
  exportCmd(program.command('export'));
  exportCmd(group(program, 'container').command('export'));

  const importCmd = (cmd: Command) =>
    cmd
      .description(
        'Import the contents from a tarball (a file, an http(s) URL, or - for STDIN) to create a filesystem image',
      )
      .argument('<file|url|->', 'the tar archive, optionally compressed')
      .argument('[repository[:tag]]', 'name for the new image')
      .option(
        '-c, --change <instruction>',
        'apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)',
        collect,
        [],
      )
      .option('-m, --message <text>', 'set the commit message for the imported image')
      .option('--platform <os/arch[/variant]>', "set the platform (default: this host's)")
      .action(
        exitOne(
          async (
            source: string,
            repository: string | undefined,
            o: { change: string[]; message?: string; platform?: string },
          ) => {
            const { importImage } = await import('../../app/import.js');
            const id = await importImage(await context(io), source, repository, {
              changes: o.change,
              message: o.message,
              platform: o.platform,
            });
            io.out.write(`${id}\n`);
          },
        ),
      );
  importCmd(program.command('import'));
  importCmd(group(program, 'image').command('import'));
}
