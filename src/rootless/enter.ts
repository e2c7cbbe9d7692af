/**
 * The CLI's door into rootless mode: an unprivileged user's command runs again inside the
 * user's namespace (namespace.ts) as a child `nsenter … node bin/tsrun.js ARGS`, whose exit
 * status becomes ours. Node cannot join a user namespace itself (setns(2) into one needs a
 * single-threaded process), hence the second process; it costs one more Node start.
 *
 * Inside, TSRUN_ROOTLESS holds the real uid: paths stay the user's (store under ~/.local/share,
 * state under $XDG_RUNTIME_DIR or /tmp/tsrun-UID) while the process is uid 0 of the namespace.
 * Signals: SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 are passed on; SIGINT too unless stdin is a
 * terminal, where Ctrl-C already reaches both processes (same process group) and passing it on
 * would deliver it twice. Verbs that touch no store (help, version, login, logout, info) stay out.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { constants as osConstants } from 'node:os';
import { TsrunError } from '../errors.js';
import { cliEntry } from '../util/project.js';
import { ensureNamespace, namespaceRequirements, nsenterArgv, userRunBase } from './namespace.js';

const OUTSIDE = new Set(['help', 'login', 'logout', 'info', 'version', 'search']);

/**
 * Does this command of `uid` run in the namespace? `plan` is what the argv names, read from
 * tsrun's own options only (src/cli/own-options.ts): a container's `node --version` is not
 * tsrun's --version.
 */
export function needsNamespace(
  plan: { path: readonly string[]; help: boolean },
  uid: number,
  env: NodeJS.ProcessEnv,
): boolean {
  if (uid === 0 || env.TSRUN_ROOTLESS || plan.help) return false;
  const [verb, sub] = plan.path;
  if (verb === undefined || OUTSIDE.has(verb)) return false;
  return !(verb === 'system' && sub === 'info');
}

/**
 * Inside: go back to the caller's working directory (`nsenter --mount` starts at /), so relative
 * paths (build contexts, -f, cp, --env-file, TSRUN_ROOT) mean what they meant to the caller.
 */
export function restoreCwd(env: NodeJS.ProcessEnv): void {
  const dir = env.TSRUN_CWD;
  delete env.TSRUN_CWD;
  if (!dir) return;
  try {
    process.chdir(dir);
  } catch (err) {
    throw new TsrunError(
      'ERR_ROOTLESS',
      `rootless mode: your working directory ${dir} is not visible in the rootless namespace (${(err as NodeJS.ErrnoException).code})`,
      {
        hint: `it is probably on a file system mounted after the namespace started: end the namespace (no container of yours may be running) with \`kill $(cat ${userRunBase(Number(env.TSRUN_ROOTLESS), env)}/pause.pid)\`, or work from another directory`,
      },
    );
  }
}

/** Run argv in the namespace; resolves with the exit code to use. */
export async function runInNamespace(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const uid = process.getuid?.() ?? 0;
  const id = { uid, gid: process.getgid?.() ?? 0, name: os.userInfo().username };
  const { nsenter } = await namespaceRequirements(id, env);
  const pid = await ensureNamespace(id, env);
  const [cmd, ...args] = nsenterArgv(nsenter, pid, [process.execPath, '--', cliEntry(), ...argv]);
  const child = spawn(cmd as string, args, {
    stdio: 'inherit',
    env: { ...env, TSRUN_ROOTLESS: String(uid), TSRUN_CWD: process.cwd() },
  });
  const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  if (!process.stdin.isTTY) forwarded.push('SIGINT');
  const relay = (sig: NodeJS.Signals) => {
    child.kill(sig);
  };
  for (const s of forwarded) process.on(s, relay);
  if (process.stdin.isTTY) process.on('SIGINT', () => {});
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`Error: running tsrun in the rootless namespace: ${err.message}\n`);
      resolve(125);
    });
    child.on('exit', (code, signal) => {
      for (const s of forwarded) process.off(s, relay);
      resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}
