/**
 * Drive the real CLI as a user would, capturing output and exit code: bin/tsrun.js is executed
 * itself (its shell line starts Node), not handed to node.
 */
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/tsrun.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function tsrun(
  args: string[],
  opts: { root: string; env?: Record<string, string | undefined>; input?: string },
): Promise<CliResult> {
  const r = await execa(BIN, ['--root', opts.root, ...args], {
    reject: false,
    env: { HOME: opts.env?.HOME ?? process.env.HOME ?? '/root', ...opts.env },
    input: opts.input ?? '',
    timeout: 120_000,
    stripFinalNewline: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Start the CLI without waiting (for kill and concurrency tests). */
export function spawnTsrun(args: string[], opts: { root: string; env?: Record<string, string> }): ResultPromise {
  return execa(BIN, ['--root', opts.root, ...args], {
    reject: false,
    env: opts.env ?? {},
    stdin: 'ignore',
    stripFinalNewline: false,
  });
}
