/**
 * `tsrun system service --exec -- CMD…`: a socket for the time of one command, and everything
 * made through it removed afterwards: testcontainers' reaper (Ryuk) without a privileged helper
 * container. CMD gets DOCKER_HOST, TESTCONTAINERS_RYUK_DISABLED=true and
 * TESTCONTAINERS_HOST_OVERRIDE (published ports are reached on the loopback address).
 *
 * Contract: CMD's end (an exit, a signal, SIGKILL) ends the session: its containers are
 * removed, then the socket, and the exit status is CMD's (128+N for a signal). If this process
 * dies instead, app/service-sessions.ts's record lets the next service and `system prune` clean up.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { beginSession, endSession, reapDeadSessions } from '../app/service-sessions.js';
import { openEnv } from '../app/containers.js';
import { startService, socketPath, type ServiceOptions } from './service.js';

export async function serveForCommand(o: Omit<ServiceOptions, 'session'>, cmd: string[]): Promise<number> {
  const env = await openEnv(o.ctx);
  await reapDeadSessions(env);
  const session = await beginSession(env, socketPath(o.uri));
  const service = await startService({ ...o, idleSeconds: 0, session });
  let code: number;
  try {
    const child = spawn(cmd[0] as string, cmd.slice(1), {
      stdio: 'inherit',
      env: {
        ...o.ctx.env,
        DOCKER_HOST: `unix://${service.socket}`,
        TESTCONTAINERS_RYUK_DISABLED: 'true',
        TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1',
      },
    });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    code = await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        process.stderr.write(`Error: running ${cmd[0]}: ${err.message}\n`);
        resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126);
      });
      child.once('exit', (c, sig) => resolve(c ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0)));
    });
    for (const [s, h] of handlers) process.off(s, h);
  } finally {
    await service.close();
    await endSession(env, session);
  }
  return code;
}
