/**
 * `--env`, `--env-file` and `--label` for `run`/`create`/`exec`, and the process environment a
 * container gets: the image's ENV, then the user's, as moby's `CreateDaemonEnvironment` merges
 * them (PATH defaulted, HOSTNAME and TERM set). Split from options.ts; same contract: pure.
 */
import { TsrunError } from '../errors.js';
import { DEFAULT_PATH_ENV } from './defaults.js';
import type { SpecOpt } from './options.js';

/** `--label K=V` values (a bare `K` is an empty label), later ones winning, as Docker's. */
export function parseLabels(list: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return labels;
}

export interface EnvContext {
  /** The caller's environment, for bare `-e KEY` / env-file `KEY` (Docker's os.LookupEnv). */
  callerEnv?: Readonly<Record<string, string | undefined>>;
  /** The container's hostname (HOSTNAME=). */
  hostname: string;
  /** With a tty Docker adds TERM=xterm. */
  tty: boolean;
  /** The resolved user's home directory (HOME=, unless the image or user sets it). */
  home: string;
}

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

/** Replace-or-append by key, in place of the first occurrence; a bare `KEY` unsets it. */
function replaceOrAppend(base: string[], overrides: string[]): string[] {
  const out = [...base];
  for (const value of overrides) {
    const key = envKey(value);
    const i = out.findIndex((e) => envKey(e) === key);
    if (!value.includes('=')) {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) {
      out[i] = value;
    } else {
      out.push(value);
    }
  }
  return out;
}

/**
 * Docker's environment, in Docker's order:
 *   1. user values (`--env-file` entries, then `-e`, as the CLI concatenates them); a bare
 *      `KEY` takes the caller's value (docker/cli opts.ValidateEnv) or, when the caller has none,
 *      stays bare, which unsets KEY — image value included (moby ReplaceOrAppendEnvValues);
 *   2. image ENV entries whose key the user did not give (moby daemon/commit.go merge);
 *   3. that list replaces-or-appends onto [PATH=<Docker default>, HOSTNAME=<hostname>,
 *      TERM=xterm (tty only)] (container.CreateDaemonEnvironment), so the image's PATH and the
 *      user's HOSTNAME/TERM win while keeping their slots;
 *   4. HOME=<user's home> is appended when still absent, as runc does at exec time.
 * Unlike Docker, a key given twice by the user keeps one entry (the last value) rather than two.
 */
export function mergeEnv(
  imageEnv: readonly string[] | null | undefined,
  userEnv: readonly string[],
  ctx: EnvContext,
): string[] {
  const user: string[] = [];
  for (const raw of userEnv) {
    const key = envKey(raw);
    if (key === '') {
      throw new TsrunError('ERR_USAGE', `invalid environment variable: ${raw}`, { hint: 'use -e KEY=VALUE or -e KEY' });
    }
    let entry = raw;
    if (!raw.includes('=')) {
      const v = ctx.callerEnv?.[key];
      if (v !== undefined) entry = `${key}=${v}`;
    }
    const i = user.findIndex((e) => envKey(e) === key);
    if (i >= 0) user[i] = entry;
    else user.push(entry);
  }
  const userKeys = new Set(user.map(envKey));
  const config = [...user, ...(imageEnv ?? []).filter((e) => e !== '' && !userKeys.has(envKey(e)))];

  const defaults = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${ctx.hostname}`];
  if (ctx.tty) defaults.push('TERM=xterm');
  const env = replaceOrAppend(defaults, config);
  if (!env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${ctx.home}`);
  return env;
}

export function withEnv(
  imageEnv: readonly string[] | null | undefined,
  userEnv: readonly string[],
  ctx: EnvContext,
): SpecOpt {
  const env = mergeEnv(imageEnv, userEnv, ctx);
  return (spec) => {
    spec.process.env = env;
  };
}

/**
 * Docker's `--env-file` format (docker/cli pkg/kvfile): leading whitespace is dropped; blank
 * lines and lines starting with `#` are skipped; `KEY=VALUE` passes VALUE through untouched
 * (no quotes processing, no trimming); a bare `KEY` is returned bare, to be taken from the
 * caller's environment by `mergeEnv`. A key containing whitespace, or an empty key, is an error.
 */
export function parseEnvFile(text: string, fileName = 'env file'): string[] {
  const out: string[] = [];
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  src.split(/\r?\n/).forEach((rawLine, idx) => {
    const line = rawLine.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    const where = `${fileName} line ${idx + 1}`;
    if (key === '') throw new TsrunError('ERR_USAGE', `reading ${where}: no variable name on line '${line}'`);
    if (/\s/.test(key)) throw new TsrunError('ERR_USAGE', `reading ${where}: variable '${key}' contains whitespaces`);
    out.push(eq < 0 ? key : `${key}=${line.slice(eq + 1)}`);
  });
  return out;
}
