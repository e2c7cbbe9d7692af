/**
 * `tsrun healthcheck run CONTAINER` (podman's command: one probe now, by the container's monitor;
 * exit 0 when it passed, else "unhealthy" — or "starting" within the start period — on stdout
 * and exit 1; 125 when the container is missing, stopped or has no check), and the `--health-*`
 * flags of run and create (Docker's names; checked in runtime/health.ts).
 */
import type { Command } from 'commander';
import type { HealthFlags } from '../../runtime/health.js';
import type { CliIo } from '../output.js';
import { context } from './common.js';

export interface HealthFlagValues {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  /** Commander's value for `--no-healthcheck`: false when given. */
  healthcheck?: boolean;
}

export function healthOptions(cmd: Command): Command {
  return cmd
    .option('--health-cmd <command>', 'command to run to check health (run with /bin/sh -c)')
    .option('--health-interval <duration>', 'time between running the check (ms|s|m|h) (default 30s)')
    .option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h) (default 30s)')
    .option('--health-retries <n>', 'consecutive failures needed to report unhealthy (default 3)')
    .option('--health-start-period <duration>', 'start period for the container before failures count (default 0s)')
    .option('--health-start-interval <duration>', 'time between checks during the start period (default 5s)')
    .option('--no-healthcheck', 'disable any container-specified HEALTHCHECK');
}

export function healthFlags(f: HealthFlagValues): HealthFlags {
  return {
    cmd: f.healthCmd,
    interval: f.healthInterval,
    timeout: f.healthTimeout,
    retries: f.healthRetries,
    startPeriod: f.healthStartPeriod,
    startInterval: f.healthStartInterval,
    none: f.healthcheck === false,
  };
}

export function registerHealthcheckCommands(program: Command, io: CliIo): void {
  const hc = program.command('healthcheck').description('Manage health checks of containers');
  hc.command('run')
    .description("Run a container's health check now")
    .argument('<container>', 'container name or id')
    .action(async (query: string) => {
      const { runHealthcheck } = await import('../../app/healthcheck.js');
      const { TsrunError } = await import('../../errors.js');
      let r;
      try {
        r = await runHealthcheck(await context(io), query);
      } catch (err) {
        // 1 means "unhealthy" here: every failure to check is 125 (podman's code).
        if (!(err instanceof TsrunError)) throw err;
        throw new TsrunError(err.code, err.message, { hint: err.hint, cause: err.cause, detail: { exitCode: 125 } });
      }
      if (r.exitCode !== 0) {
        io.out.write(`${r.status === 'starting' ? 'starting' : 'unhealthy'}\n`);
        process.exitCode = 1;
      }
    });
}
