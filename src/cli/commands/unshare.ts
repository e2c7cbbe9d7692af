/**
 * `tsrun unshare [COMMAND...]`: run a command inside the user's rootless namespace, as
 * `podman unshare` does: uid 0 there is the user, the image and container files owned by
 * subordinate ids are the command's to read, change or delete (`tsrun unshare rm -rf
 * ~/.local/share/tsrun`), and the store's mounts are visible. Without a command, $SHELL (or
 * /bin/sh). The exit status is the command's (126 cannot run it, 127 not found). The store root
 * and run directory are in CONTAINERS_GRAPHROOT and CONTAINERS_RUNROOT, podman's names.
 * Root has no such namespace: it is an error there, as with podman.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';

export function registerUnshareCommand(program: Command, io: CliIo): void {
  program
    .command('unshare')
    .description('Run a command (default: your shell) in the rootless user namespace, as uid 0 there')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions()
    .action(async (argv: string[]) => {
      const { TsrunError } = await import('../../errors.js');
      const { processContext } = await import('../../app/context.js');
      const ctx = processContext({ root: io.globals().root });
      if (!ctx.rootless) {
        throw new TsrunError(
          'ERR_USAGE',
          'tsrun unshare is for rootless mode (an unprivileged user); root has no user namespace to enter',
          { hint: 'as root, run the command directly' },
        );
      }
      const { storePaths } = await import('../../runtime/paths.js');
      const { spawn } = await import('node:child_process');
      const { constants: osConstants } = await import('node:os');
      const [cmd, ...args] = argv.length > 0 ? argv : [ctx.env.SHELL || '/bin/sh'];
      const env = {
        ...ctx.env,
        CONTAINERS_GRAPHROOT: ctx.root,
        CONTAINERS_RUNROOT: storePaths(ctx.root, ctx.uid, ctx.env).run,
      };
      process.exitCode = await new Promise<number>((resolve) => {
        const child = spawn(cmd as string, args, { stdio: 'inherit', env });
        // The terminal's signals reach the command itself (same process group); nothing to do here.
        for (const s of ['SIGINT', 'SIGQUIT'] as const) process.on(s, () => {});
        child.on('error', (err: NodeJS.ErrnoException) => {
          io.err.write(`Error: ${cmd}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`);
          resolve(err.code === 'ENOENT' ? 127 : 126);
        });
        child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)));
      });
    });
}
