/**
 * `save` / `load` (and `image save` / `image load`): images to and from a tar (app/save.ts,
 * app/load.ts), with Docker's flags and output.
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

export function registerSaveCommands(program: Command, io: CliIo): void {
  const saveCmd = (cmd: Command) =>
    cmd
      .description(
        'Save one or more images to a tar archive (streamed to STDOUT by default): docker-archive and OCI layout in one',
      )
      .argument('<image...>', 'image names or ids')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action(
        exitOne(async (images: string[], o: { output?: string }) => {
          const { saveToFile, saveImages } = await import('../../app/save.js');
          const ctx = await context(io);
          if (o.output !== undefined && o.output !== '-') {
            await saveToFile(ctx, images, o.output);
            return;
          }
          if (io.out.isTTY) {
            throw new TsrunError('ERR_USAGE', 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
          }
          await saveImages(ctx, images, io.out);
        }),
      );
  saveCmd(program.command('save'));
  saveCmd(group(program, 'image').command('save'));

  const loadCmd = (cmd: Command) =>
    cmd
      .description(
        'Load images from a tar archive or STDIN (docker save/podman save/skopeo docker-archive output, or an OCI layout tar)',
      )
      .option('-i, --input <file>', 'read from a tar archive file (optionally compressed), instead of STDIN')
      .option('-q, --quiet', 'suppress the load output')
      .action(
        exitOne(async (o: { input?: string; quiet?: boolean }) => {
          const { loadImages, loadInput } = await import('../../app/load.js');
          if (o.input === undefined && process.stdin.isTTY) {
            throw new TsrunError('ERR_USAGE', 'requested load from stdin, but stdin is empty', {
              hint: 'tsrun load -i FILE, or tsrun load < FILE',
            });
          }
          const input = await loadInput(o.input);
          await loadImages(await context(io), input, (img) => {
            if (img.tags.length === 0) io.out.write(`Loaded image ID: ${img.id}\n`);
            for (const t of img.tags) io.out.write(`Loaded image: ${t}\n`);
          });
        }),
      );
  loadCmd(program.command('load'));
  loadCmd(group(program, 'image').command('load'));
}
