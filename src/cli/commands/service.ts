/**
 * `tsrun system service [--time SECONDS] [URI]` and `--exec -- CMD…`: parses and calls src/api.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';

export function registerServiceCommand(system: Command, io: CliIo): void {
  system
    .command('service')
    .description(
      'Serve the Docker Engine API on a unix socket while clients use it (access to the socket is access to your containers)',
    )
    .argument('[args...]', 'URI (a socket path or unix:///path); with --exec: -- COMMAND [ARG...]')
    .option('-t, --time <seconds>', 'exit after this many seconds with no client (0: never)', '5')
    .option('--exec', 'run COMMAND with DOCKER_HOST set, then remove everything it made through the socket')
    .passThroughOptions()
    .action(async (args: string[], o: { time: string; exec?: boolean }) => {
      const { TsrunError } = await import('../../errors.js');
      if (!/^\d+$/.test(o.time))
        throw new TsrunError('ERR_USAGE', `invalid argument "${o.time}" for "-t, --time" flag`, {
          hint: 'a number of seconds (0: never exit)',
        });
      let uri: string | undefined = args[0];
      let cmd: string[] = [];
      if (o.exec) {
        const dash = process.argv.lastIndexOf('--');
        const n = dash >= 0 ? process.argv.length - dash - 1 : args.length;
        cmd = args.slice(args.length - n);
        uri = args.length > n ? args[0] : undefined;
        if (cmd.length === 0)
          throw new TsrunError('ERR_USAGE', '--exec needs a command', { hint: 'tsrun system service --exec -- CMD…' });
      } else if (args.length > 1) {
        throw new TsrunError('ERR_USAGE', '"tsrun system service" accepts at most 1 argument', {
          hint: 'tsrun system service [--time SECONDS] [URI], or --exec -- CMD…',
        });
      }
      const { processContext } = await import('../../app/context.js');
      const ctx = processContext({ root: io.globals().root });
      const { defaultSocket, startService } = await import('../../api/service.js');
      const base = {
        ctx,
        uri: uri ?? defaultSocket(ctx.uid, ctx.env),
        idleSeconds: Number(o.time),
        version: io.version,
        log: io.globals().debug ? (line: string) => void io.err.write(`${line}\n`) : undefined,
      };
      if (o.exec) {
        const { serveForCommand } = await import('../../api/session.js');
        process.exitCode = await serveForCommand(base, cmd);
        return;
      }
      const { reapDeadSessions } = await import('../../app/service-sessions.js');
      const { openEnv } = await import('../../app/containers.js');
      await reapDeadSessions(await openEnv(ctx));
      const s = await startService(base);
      const stop = () => void s.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await s.closed;
    });
}
