/**
 * `commit` (and `container commit`): a container's changes as a new image (app/commit.ts).
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerCommitCommands(program: Command, io: CliIo): void {
  const commitCmd = (cmd: Command) =>
    cmd
      .description("Create a new image from a container's changes")
      .argument('<container>', 'container name or id')
      .argument('[repository[:tag]]', 'name for the new image')
      .option('-a, --author <string>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option(
        '-c, --change <instruction>',
        'apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)',
        collect,
        [],
      )
      .option('-m, --message <text>', 'commit message')
      .option('-p, --pause [bool]', 'pause the container during commit (default true; --pause=false to not)', 'true')
      .action(
        exitOne(
          async (
            container: string,
            repository: string | undefined,
            o: { author?: string; change: string[]; message?: string; pause: string | boolean },
          ) => {
            const { commitContainer } = await import('../../app/commit.js');
            const pause = !(o.pause === 'false' || o.pause === false || o.pause === '0');
            const id = await commitContainer(await context(io), container, repository, {
              changes: o.change,
              message: o.message,
              author: o.author,
              pause,
            });
            io.out.write(`${id}\n`);
          },
        ),
      );
  commitCmd(program.command('commit'));
  commitCmd(group(program, 'container').command('commit'));
}
