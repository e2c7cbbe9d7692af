/**
 * `-v`, `--tmpfs` and `--mount` for `run`/`create`, parsed as Docker's CLI does (docker/cli
 * `opts/mount.go`), and tmpfs options merged with Docker's defaults (moby
 * `mount.MergeTmpfsOptions`). Split from host-options.ts, which holds the other host-side flags.
 *
 * Contract: pure; relative bind sources resolve against the `cwd` the caller passes.
 */
import { posix } from 'node:path';
import { TsrunError } from '../errors.js';
import { parseMemory, type BindMount } from './options.js';

export interface TmpfsMount {
  destination: string;
  /** tmpfs options after the user's (size=, mode=, exec, ...), merged with Docker's defaults. */
  options: string[];
}

/** Flags that cancel each other (moby pkg/mount flags): the last one given wins. */
const FLAG_GROUPS: string[][] = [
  ['ro', 'rw'],
  ['exec', 'noexec'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
  ['relatime', 'norelatime'],
  ['strictatime', 'nostrictatime'],
  ['mand', 'nomand'],
  ['dirsync'],
  ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable'],
];
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/**
 * moby mount.MergeTmpfsOptions: defaults first (noexec, nosuid, nodev), then the user's; walking
 * from the end, the last flag of each group and the last value of each data key are kept.
 */
export function mergeTmpfsOptions(user: readonly string[]): string[] {
  const all = ['noexec', 'nosuid', 'nodev', ...user.filter((o) => o !== '' && o !== 'defaults')];
  const out: string[] = [];
  const doneGroups = new Set<number>();
  const doneKeys = new Set<string>();
  for (let i = all.length - 1; i >= 0; i--) {
    const o = all[i] ?? '';
    const g = FLAG_GROUPS.findIndex((grp) => grp.includes(o));
    if (g >= 0) {
      if (doneGroups.has(g)) continue;
      doneGroups.add(g);
      out.unshift(o);
      continue;
    }
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    if (eq < 0 || !TMPFS_DATA.has(key))
      throw new TsrunError('ERR_USAGE', `invalid tmpfs option "${o}"`, {
        hint: 'tmpfs takes size=, mode=, uid=, gid=, nr_inodes= and mount flags such as exec, ro',
      });
    if (doneKeys.has(key)) continue;
    doneKeys.add(key);
    out.unshift(o);
  }
  return out;
}

/** `--tmpfs /path[:opt,opt]`. */
export function parseTmpfs(s: string): TmpfsMount {
  const i = s.indexOf(':');
  const destination = i < 0 ? s : s.slice(0, i);
  if (!destination.startsWith('/'))
    throw new TsrunError('ERR_USAGE', `invalid tmpfs: ${s}: the path must be absolute`, {
      hint: 'use --tmpfs /path[:options]',
    });
  return { destination, options: mergeTmpfsOptions(i < 0 ? [] : s.slice(i + 1).split(',')) };
}

export interface ParsedMount {
  type: 'bind' | 'tmpfs' | 'volume';
  source?: string;
  destination: string;
  readonly: boolean;
  /** bind: rprivate (default), shared, slave, ... */
  propagation?: string;
  /** bind-nonrecursive=true */
  nonRecursive?: boolean;
  /** tmpfs: merged options. */
  options?: string[];
  /** volume: volume-nocopy, volume-driver=, volume-label=K=V (for a volume this run creates). */
  nocopy?: boolean;
  driver?: string;
  labels?: Record<string, string>;
  /** volume: volume-opt=K=V (the local driver takes none; refused where volumes are made). */
  volumeOptions?: Record<string, string>;
}

/** A CSV record as Go's encoding/csv reads it (docker/cli reads --mount that way): quotes may wrap a field. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function boolValue(v: string | undefined, field: string, raw: string): boolean {
  if (v === undefined) return true;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new TsrunError('ERR_USAGE', `invalid value for ${field}: ${v} in '${raw}'`);
}

/**
 * docker/cli opts/mount.go: `type=bind|tmpfs|volume,source=,target=,readonly,...`. The default
 * type is volume, as Docker's (volume-nocopy, volume-driver, volume-label, volume-opt). A bind's
 * relative source is taken from `cwd`; its existence is checked by the caller (Docker refuses a
 * missing one, unlike -v).
 */
export function parseMount(raw: string, cwd: string): ParsedMount {
  let type = 'volume';
  let source: string | undefined;
  let destination: string | undefined;
  let readonly = false;
  let propagation: string | undefined;
  let nonRecursive = false;
  const tmpfsOpts: string[] = [];
  let nocopy = false;
  let driver: string | undefined;
  const labels: Record<string, string> = {};
  const volumeOptions: Record<string, string> = {};
  for (const field of csvFields(raw)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const need = () => {
      if (value === undefined) throw new TsrunError('ERR_USAGE', `invalid field '${field}' must be a key=value pair`);
      return value;
    };
    switch (key) {
      case 'type':
        type = need();
        break;
      case 'source':
      case 'src':
        source = need();
        break;
      case 'target':
      case 'destination':
      case 'dst':
        destination = need();
        break;
      case 'readonly':
      case 'ro':
        readonly = boolValue(value, key, raw);
        break;
      case 'consistency':
        break;
      case 'bind-propagation':
        propagation = need();
        break;
      case 'bind-nonrecursive':
        nonRecursive = boolValue(value, key, raw);
        break;
      case 'tmpfs-size':
        tmpfsOpts.push(`size=${parseMemory(need())}`);
        break;
      case 'tmpfs-mode': {
        const mode = need();
        if (!/^[0-7]+$/.test(mode))
          throw new TsrunError('ERR_USAGE', `invalid value for tmpfs-mode: ${mode}`, {
            hint: 'an octal mode, e.g. 1777',
          });
        tmpfsOpts.push(`mode=${mode}`);
        break;
      }
      case 'volume-nocopy':
        nocopy = boolValue(value, key, raw);
        break;
      case 'volume-driver':
        driver = need();
        break;
      case 'volume-label':
      case 'volume-opt': {
        const kv = need();
        const i = kv.indexOf('=');
        (key === 'volume-label' ? labels : volumeOptions)[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
        break;
      }
      default:
        throw new TsrunError('ERR_USAGE', `unexpected key '${key}' in '${field}'`);
    }
  }
  if (!destination)
    throw new TsrunError('ERR_USAGE', `invalid argument "${raw}" for "--mount" flag: target is required`);
  if (type === 'volume') {
    // No source: an anonymous volume. The name is checked where the volume is made (store/volumes.ts).
    return {
      type,
      ...(source ? { source } : {}),
      destination,
      readonly,
      nocopy,
      ...(driver !== undefined ? { driver } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(Object.keys(volumeOptions).length > 0 ? { volumeOptions } : {}),
    };
  }
  if (type === 'bind') {
    if (!source)
      throw new TsrunError(
        'ERR_USAGE',
        `invalid argument "${raw}" for "--mount" flag: source is required when specifying bind mounts`,
      );
    if (propagation !== undefined && !/^r?(shared|slave|private)$/.test(propagation)) {
      throw new TsrunError('ERR_USAGE', `invalid bind-propagation: ${propagation}`, {
        hint: 'use rprivate, private, rshared, shared, rslave or slave',
      });
    }
    return { type, source: posix.resolve(cwd, source), destination, readonly, propagation, nonRecursive };
  }
  if (type === 'tmpfs') {
    if (source)
      throw new TsrunError(
        'ERR_USAGE',
        `invalid mount config for type "tmpfs": source is not supported for tmpfs mounts`,
      );
    return { type, destination, readonly, options: mergeTmpfsOptions([...(readonly ? ['ro'] : []), ...tmpfsOpts]) };
  }
  throw new TsrunError('ERR_USAGE', `invalid mount type "${type}"`, {
    hint: 'tsrun supports type=bind, type=volume and type=tmpfs',
  });
}

const VOLUME_MODES = /^(ro|rw|z|Z|nocopy|consistent|cached|delegated|r?shared|r?slave|r?private)$/;

/**
 * Docker's `-v` syntax for binds: HOST:CTR[:OPTS], OPTS comma-separated: ro/rw, a propagation
 * (rprivate, shared, rslave, ...), and SELinux z/Z, nocopy and the macOS consistency words, which
 * Docker accepts and which mean nothing here. HOST is absolute, or `./…`, `../…`, `.`, `~/…`
 * (the CLI resolves those against the caller's directory, as Docker's does). Named and
 * anonymous volumes (`NAME:/ctr`, `/ctr`) are told apart before this, in spec/volumes.ts.
 */
export function parseVolume(spec: string, cwd: string, home = '/'): BindMount {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new TsrunError('ERR_USAGE', `invalid volume specification: '${spec}'`, {
      hint: 'use -v /host/path:/container/path[:ro]',
    });
  }
  const [raw, destination, mode] = parts as [string, string, string | undefined];
  let source = raw;
  if (raw === '.' || raw === '..' || raw.startsWith('./') || raw.startsWith('../')) source = posix.resolve(cwd, raw);
  else if (raw === '~' || raw.startsWith('~/')) source = posix.join(home, raw.slice(1));
  if (!source.startsWith('/')) {
    throw new TsrunError('ERR_USAGE', `invalid volume specification: '${spec}': the source is not a host path`, {
      hint: 'a host path is absolute or starts with ./, ../ or ~/; a volume name is parsed by spec/volumes.ts',
    });
  }
  const opts = mode === undefined ? [] : mode.split(',');
  for (const m of opts) {
    if (!VOLUME_MODES.test(m))
      throw new TsrunError('ERR_USAGE', `invalid volume specification: '${spec}': invalid mode: ${m}`, {
        hint: 'modes are ro, rw, z, Z, nocopy and a propagation such as rshared',
      });
  }
  const propagation = opts.find((m) => /^r?(shared|slave|private)$/.test(m));
  return {
    source: posix.resolve(source),
    destination,
    readonly: opts.includes('ro'),
    ...(propagation ? { propagation } : {}),
  };
}
