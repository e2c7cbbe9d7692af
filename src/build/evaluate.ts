/**
 * What each instruction does to the image config, as pure functions (Dockerfile reference, one
 * section per instruction). The builder (app/build.ts) runs the filesystem steps; everything
 * here is data in, data out, so each Docker rule is a unit test.
 *
 * Rules worth knowing: ENV and LABEL see variables as they were *before* the instruction; the
 * shell form of CMD/ENTRYPOINT/RUN is `SHELL` + [text] (default ["/bin/sh", "-c"]); an
 * ENTRYPOINT set in a stage clears a CMD inherited from the base image; EXPOSE defaults to tcp;
 * HEALTHCHECK durations are stored in nanoseconds; WORKDIR is relative to the previous one.
 */
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { ContainerConfig } from '../oci/schemas.js';
import { parseGroup, parsePasswd } from '../spec/user.js';
import type { Instruction } from './dockerfile.js';
import { expandWord, expandWords, keyValues, rawWords, type Vars } from './words.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The variables an instruction sees: build args in scope, overridden by ENV. */
export function scopeVars(config: ContainerConfig, args: ReadonlyMap<string, string>): Map<string, string> {
  const vars = new Map(args);
  for (const e of config.Env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) vars.set(e.slice(0, i), e.slice(i + 1));
  }
  return vars;
}

/** Replace-or-append KEY=VALUE entries by key. */
export function setEnv(env: readonly string[] | null | undefined, pairs: readonly [string, string][]): string[] {
  const out = [...(env ?? [])];
  for (const [k, v] of pairs) {
    const i = out.findIndex((e) => e.slice(0, e.indexOf('=')) === k);
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  return out;
}

/**
 * argv for RUN/CMD/ENTRYPOINT: the JSON form as given, or SHELL + [text]. A RUN heredoc
 * (BuildKit's Dockerfile 1.4 syntax) is given to the shell as written, which runs
 * `cmd <<EOF … EOF` itself; a bare `RUN <<EOF` runs the heredoc's body as the script
 * (`<<-` strips leading tabs). A body starting with `#!` would need its own interpreter: refused.
 */
export function commandOf(ins: Instruction, config: ContainerConfig): string[] {
  const shell = config.Shell && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL;
  if (ins.json) return ins.json;
  if (!ins.heredoc) return [...shell, ins.args];
  const [first = '', ...rest] = ins.args.split('\n');
  const bare = /^<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2\s*$/.exec(first.trim());
  if (!bare) return [...shell, ins.args];
  const end = rest.indexOf(bare[3] as string);
  const body = (end < 0 ? rest : rest.slice(0, end)).map((l) => (bare[1] ? l.replace(/^\t+/, '') : l));
  if (body[0]?.startsWith('#!')) {
    throw new TsrunError(
      'ERR_DOCKERFILE',
      `line ${ins.line}: a RUN heredoc with a #! interpreter is not supported yet`,
      { hint: 'pipe it instead: RUN python3 <<EOF … EOF' },
    );
  }
  return [...shell, body.join('\n')];
}

const NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("30s", "1m30s") in nanoseconds. */
export function parseDuration(s: string, what: string): number {
  let total = 0;
  let rest = s;
  if (!rest) throw new TsrunError('ERR_DOCKERFILE', `${what}: empty duration`);
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m)
      throw new TsrunError('ERR_DOCKERFILE', `${what}: invalid duration "${s}"`, {
        hint: 'use a Go duration such as 30s, 1m30s or 500ms',
      });
    total += Number(m[1]) * (NS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

export interface MetaResult {
  config: ContainerConfig;
  /** For the image config's `author` (MAINTAINER). */
  author?: string;
}

export interface StageFlags {
  /** CMD was set in this stage (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

/**
 * Apply a metadata-only instruction (everything but FROM, ARG, RUN, COPY, ADD). WORKDIR's
 * directory is made by the builder; here it only changes the config.
 */
export function applyMetadata(
  ins: Instruction,
  config: ContainerConfig,
  vars: Vars,
  escape: string,
  flags: StageFlags,
): MetaResult {
  const c: ContainerConfig = { ...config };
  const fail = (msg: string): never => {
    throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: ${msg}`);
  };
  switch (ins.keyword) {
    case 'ENV':
      c.Env = setEnv(c.Env, keyValues(ins.args, vars, escape, 'ENV'));
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of keyValues(ins.args, vars, escape, 'LABEL')) c.Labels[k] = v;
      break;
    case 'EXPOSE': {
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of expandWords(ins.args, vars, escape)) {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!m) fail(`EXPOSE: invalid port "${p}" (use PORT or PORT/PROTO, e.g. 3000 or 53/udp)`);
        const [, from, to, proto = 'tcp'] = m as RegExpExecArray;
        for (let n = Number(from); n <= Number(to ?? from); n++) c.ExposedPorts[`${n}/${proto.toLowerCase()}`] = {};
      }
      break;
    }
    case 'CMD':
      c.Cmd = commandOf(ins, c);
      flags.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = commandOf(ins, c);
      if (!flags.cmdSet) c.Cmd = null;
      break;
    case 'WORKDIR': {
      const dir = expandWord(ins.args, vars, escape);
      c.WorkingDir = path.posix.resolve(c.WorkingDir || '/', dir);
      break;
    }
    case 'USER':
      c.User = expandWord(ins.args, vars, escape);
      break;
    case 'STOPSIGNAL':
      c.StopSignal = expandWord(ins.args, vars, escape);
      break;
    case 'VOLUME': {
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of ins.json ?? expandWords(ins.args, vars, escape)) {
        if (!v) fail('VOLUME: empty path');
        c.Volumes[v] = {};
      }
      break;
    }
    case 'SHELL':
      c.Shell = ins.json ?? fail('SHELL must be a JSON array');
      break;
    case 'HEALTHCHECK':
      c.Healthcheck = healthcheck(ins);
      break;
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), ins.args];
      break;
    case 'MAINTAINER':
      return { config: c, author: expandWord(ins.args, vars, escape) };
    default:
      fail(`${ins.keyword} is not a metadata instruction`);
  }
  return { config: c };
}

function healthcheck(ins: Instruction): Record<string, unknown> {
  const text = ins.args.trim();
  if (/^none$/i.test(text)) return { Test: ['NONE'] };
  const m = /^cmd\s+([\s\S]*)$/i.exec(text);
  if (!m) throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: HEALTHCHECK takes NONE or CMD <command>`);
  const rest = (m[1] as string).trim();
  let test: string[];
  try {
    const j: unknown = rest.startsWith('[') ? JSON.parse(rest) : undefined;
    test = Array.isArray(j) ? ['CMD', ...(j as string[])] : ['CMD-SHELL', rest];
  } catch {
    test = ['CMD-SHELL', rest];
  }
  const h: Record<string, unknown> = { Test: test };
  const f = ins.flags;
  if (f.interval !== undefined) h.Interval = parseDuration(f.interval, 'HEALTHCHECK --interval');
  if (f.timeout !== undefined) h.Timeout = parseDuration(f.timeout, 'HEALTHCHECK --timeout');
  if (f['start-period'] !== undefined) h.StartPeriod = parseDuration(f['start-period'], 'HEALTHCHECK --start-period');
  if (f['start-interval'] !== undefined)
    h.StartInterval = parseDuration(f['start-interval'], 'HEALTHCHECK --start-interval');
  if (f.retries !== undefined) {
    const r = Number(f.retries);
    if (!Number.isInteger(r) || r < 0)
      throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: HEALTHCHECK --retries must be a whole number`);
    h.Retries = r;
  }
  return h;
}

/**
 * `ARG name[=default] ...`: the names declared and their values — the `--build-arg` value if
 * given, else the default (expanded), else the value the same ARG had before the first FROM.
 */
export function declareArgs(
  ins: Instruction,
  vars: Vars,
  escape: string,
  buildArgs: ReadonlyMap<string, string>,
  globals: ReadonlyMap<string, string>,
): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  for (const word of rawWords(ins.args, escape)) {
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: ARG: invalid name "${name}"`);
    const dflt = eq < 0 ? globals.get(name) : expandWord(word.slice(eq + 1), vars, escape);
    out.push([name, buildArgs.has(name) ? buildArgs.get(name) : dflt]);
  }
  return out;
}

/**
 * `--chown=user[:group]` (COPY/ADD): names through the image's /etc/passwd and /etc/group,
 * numbers as given; a user without a group uses the user's uid as gid too (Docker's rule for
 * --chown, unlike `-u`).
 */
export function resolveChown(
  spec: string,
  passwd: string | undefined,
  group: string | undefined,
): { uid: number; gid: number } {
  const [u = '', g] = spec.split(':');
  const num = (s: string) => (/^\d+$/.test(s) ? Number(s) : undefined);
  const uid = num(u) ?? parsePasswd(passwd ?? '').find((e) => e.name === u)?.uid;
  if (uid === undefined)
    throw new TsrunError('ERR_BUILD_STEP', `--chown: no user "${u}" in the image's /etc/passwd`, {
      hint: 'use a numeric uid, or create the user in an earlier RUN',
    });
  if (g === undefined || g === '') return { uid, gid: uid };
  const gid = num(g) ?? parseGroup(group ?? '').find((e) => e.name === g)?.gid;
  if (gid === undefined)
    throw new TsrunError('ERR_BUILD_STEP', `--chown: no group "${g}" in the image's /etc/group`, {
      hint: 'use a numeric gid',
    });
  return { uid, gid };
}

/** `--build-arg K=V`, or a bare `K` taken from the caller's environment (skipped when unset there). */
export function parseBuildArgs(list: readonly string[], callerEnv: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of list) {
    const i = a.indexOf('=');
    if (i === 0)
      throw new TsrunError('ERR_USAGE', `invalid --build-arg "${a}"`, { hint: 'use --build-arg NAME=VALUE' });
    if (i > 0) out.set(a.slice(0, i), a.slice(i + 1));
    else if (callerEnv[a] !== undefined) out.set(a, callerEnv[a] as string);
  }
  return out;
}
