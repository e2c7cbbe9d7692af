/**
 * Running the field's own programs (runc, CNI plugins, ip, iptables-restore): a thin promise over
 * the addon's posix_spawn (native-helpers/src/spawn.c), so hot paths neither import execa nor
 * fork Node: child_process forks the whole Node process first, ~5 ms of this process's time per
 * program on a 2-vCPU VM, and a bridge `run --rm` starts five of them (docs/benchmarks.md).
 *
 * Contract: `runProgram` never rejects for a non-zero exit (the caller reads `code`: the exit
 * status, 1 for a signal's death); it rejects only when the program cannot be started (an
 * error with `code` ENOENT, EACCES, ...). It settles once the program has exited and its stdout
 * and stderr have ended (as execFile's callback), and reaps it: no zombie is left to a
 * long-lived caller. The program gets stdio and nothing else (every fd of ours is close-on-exec),
 * stdin at its end at once unless `input` is given, signals at their defaults. With `timeoutMs`
 * it is sent SIGTERM when that passes. `which` looks in PATH and then in the sbin directories a
 * root shell would have.
 */
import { accessSync, closeSync, constants } from 'node:fs';
import { net } from './lazy-builtins.js';
import path from 'node:path';
import { native } from '../native/index.js';

export interface ProgramResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runProgram(
  file: string,
  args: string[],
  o: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProgramResult> {
  const env = o.env ?? process.env;
  const exe = whichSync(file, env, []);
  if (!exe) {
    const err = Object.assign(new Error(`spawn ${file} ENOENT`), {
      code: 'ENOENT',
      errno: -2,
      syscall: `spawn ${file}`,
      path: file,
    });
    return Promise.reject(err);
  }
  let child: ReturnType<ReturnType<typeof native>['spawnProgram']>;
  try {
    const vars = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    child = native().spawnProgram(exe, [file, ...args], vars);
  } catch (err) {
    return Promise.reject(err as Error);
  }
  const { pid } = child;
  const { Socket } = net();
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let open = 2;
    let status: number | undefined;
    const timer =
      o.timeoutMs !== undefined
        ? setTimeout(() => {
            if (status === undefined) process.kill(pid, 'SIGTERM');
          }, o.timeoutMs)
        : undefined;
    // The output has ended: the program has exited or is about to (poll for its status briefly).
    const reapSoon = (delay: number): void => {
      status = native().reap(pid, true);
      if (status === -1) {
        status = undefined;
        setTimeout(() => reapSoon(Math.min(delay * 2, 20)), delay);
        return;
      }
      if (timer) clearTimeout(timer);
      const code = (status & 0x7f) === 0 ? (status >> 8) & 0xff : 1;
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    };
    const ended = () => {
      if (--open === 0) reapSoon(1);
    };
    for (const [fd, sink] of [
      [child.stdout, out],
      [child.stderr, err],
    ] as const) {
      const s = new Socket({ fd, readable: true, writable: false });
      s.on('data', (b: Buffer) => sink.push(b));
      s.on('error', () => s.destroy());
      s.once('close', ended);
    }
    if (o.input === undefined) closeSync(child.stdin);
    else {
      const s = new Socket({ fd: child.stdin, readable: false, writable: true });
      s.on('error', () => s.destroy()); // the program exited without reading it all
      s.end(o.input);
    }
  });
}

/** `name`'s path in PATH (then /usr/sbin, /sbin, `extraDirs`); each candidate checked at once (util/fs-quick.ts). */
export async function which(
  name: string,
  env: NodeJS.ProcessEnv,
  extraDirs: string[] = [],
): Promise<string | undefined> {
  return whichSync(name, env, extraDirs);
}

function whichSync(name: string, env: NodeJS.ProcessEnv, extraDirs: string[]): string | undefined {
  if (name.includes('/')) return name;
  const dirs = (env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  for (const d of [...dirs, '/usr/sbin', '/sbin', ...extraDirs]) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
