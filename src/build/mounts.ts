/**
 * `RUN --mount=…` (Dockerfile reference, "RUN --mount"; BuildKit's syntax): what a RUN step may
 * see besides its root, none of which ends up in the layer.
 *
 *   type=cache,target=/root/.npm[,id=…][,sharing=shared|locked|private][,mode=0755][,uid=0][,gid=0][,ro]
 *       a directory kept across builds (under the store), for package managers' caches;
 *   type=secret,id=token[,target=/run/secrets/token][,required][,mode=0400][,uid=0][,gid=0]
 *       a file given to `tsrun build --secret id=token,src=FILE|env=VAR`, read-only, never in a
 *       layer, the history or the cache key;
 *   type=bind[,source=path][,target=/mnt]            (the default type)
 *       a read-only view of a path of the build context (its content is part of the cache key);
 *   type=tmpfs,target=/tmp[,size=64m]
 *
 * Pure: `parseRunMount` turns one flag value into data and names what is wrong, with the line.
 */
import path from 'node:path';
import { TsrunError } from '../errors.js';

export type RunMount =
  | {
      type: 'cache';
      target: string;
      id: string;
      sharing: 'shared' | 'locked' | 'private';
      readonly: boolean;
      mode: number;
      uid: number;
      gid: number;
    }
  | { type: 'secret'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'bind'; target: string; source: string }
  | { type: 'tmpfs'; target: string; size?: string };

/** Split on commas outside double quotes; quotes are removed. */
function csv(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((f) => f.trim()).filter(Boolean);
}

export function parseRunMount(spec: string, workdir: string, line: number): RunMount {
  const fail = (msg: string): never => {
    throw new TsrunError('ERR_DOCKERFILE', `line ${line}: RUN --mount=${spec}: ${msg}`);
  };
  const kv = new Map<string, string>();
  for (const field of csv(spec)) {
    const eq = field.indexOf('=');
    kv.set((eq < 0 ? field : field.slice(0, eq)).toLowerCase(), eq < 0 ? 'true' : field.slice(eq + 1));
  }
  const known = new Set([
    'type',
    'target',
    'dst',
    'destination',
    'source',
    'src',
    'id',
    'sharing',
    'mode',
    'uid',
    'gid',
    'ro',
    'readonly',
    'rw',
    'readwrite',
    'required',
    'size',
    'from',
  ]);
  for (const k of kv.keys()) if (!known.has(k)) fail(`unknown option "${k}"`);
  const type = kv.get('type') ?? 'bind';
  const rawTarget = kv.get('target') ?? kv.get('dst') ?? kv.get('destination');
  const target = (t: string) => path.posix.resolve(workdir || '/', t);
  const num = (k: string, dflt: number, base = 10): number => {
    const v = kv.get(k);
    if (v === undefined) return dflt;
    const n = parseInt(v, base);
    if (!Number.isInteger(n) || n < 0 || !(base === 8 ? /^[0-7]+$/ : /^\d+$/).test(v))
      fail(`${k} must be ${base === 8 ? 'an octal mode' : 'a number'}`);
    return n;
  };
  const yes = (k: string) => kv.get(k) === 'true';
  switch (type) {
    case 'cache': {
      if (!rawTarget) fail('a cache mount needs target=');
      const sharing = kv.get('sharing') ?? 'shared';
      if (sharing !== 'shared' && sharing !== 'locked' && sharing !== 'private')
        fail('sharing is shared, locked or private');
      if (kv.has('from') || kv.has('source') || kv.has('src'))
        fail('a cache mount from another stage or image is not supported');
      const t = target(rawTarget as string);
      return {
        type,
        target: t,
        id: kv.get('id') ?? t,
        sharing: sharing as 'shared',
        readonly: yes('ro') || yes('readonly'),
        mode: num('mode', 0o755, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
      };
    }
    case 'secret': {
      const id = kv.get('id') ?? (rawTarget ? path.posix.basename(rawTarget) : undefined);
      if (!id) fail('a secret mount needs id=');
      return {
        type,
        id: id as string,
        target: target(rawTarget ?? `/run/secrets/${id}`),
        required: yes('required'),
        mode: num('mode', 0o400, 8),
        uid: num('uid', 0),
        gid: num('gid', 0),
      };
    }
    case 'bind': {
      if (!rawTarget) fail('a bind mount needs target=');
      if (kv.has('from'))
        fail('binding from another stage or image is not supported yet (bind a path of the build context)');
      if (yes('rw') || yes('readwrite')) fail('read-write bind mounts are not supported (the context is read-only)');
      return { type, target: target(rawTarget as string), source: kv.get('source') ?? kv.get('src') ?? '.' };
    }
    case 'tmpfs':
      if (!rawTarget) fail('a tmpfs mount needs target=');
      return { type, target: target(rawTarget as string), size: kv.get('size') };
    default:
      return fail(`type must be cache, secret, bind or tmpfs (ssh is not supported)`);
  }
}
