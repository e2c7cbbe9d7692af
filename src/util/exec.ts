/**
 * Running the field's own programs (runc, CNI plugins, ip): a thin promise over child_process,
 * so hot paths do not pay for importing execa.
 *
 * Contract: `runProgram` never rejects for a non-zero exit (the caller reads `code`); it rejects
 * only when the program cannot be started. Node opens every fd close-on-exec, so the program
 * gets stdio and nothing else. `which` looks in PATH and then in the sbin directories a root
 * shell would have.
 */
import { childProcess } from './lazy-builtins.js';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

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
  return new Promise((resolve, reject) => {
    const child = childProcess().execFile(
      file,
      args,
      { maxBuffer: 16 * 1024 * 1024, env: o.env, timeout: o.timeoutMs },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown }) | null;
        if (e && typeof e.code === 'string') {
          reject(e);
          return;
        }
        const code = e ? (typeof e.code === 'number' ? e.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** `name`'s path in PATH (then /usr/sbin, /sbin, `extraDirs`); each candidate checked at once (util/fs-quick.ts). */
export async function which(
  name: string,
  env: NodeJS.ProcessEnv,
  extraDirs: string[] = [],
): Promise<string | undefined> {
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
