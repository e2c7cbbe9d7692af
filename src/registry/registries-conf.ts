/**
 * registries.conf: where a repository may be pulled from (mirrors, rewritten locations), which
 * registries are insecure and which are blocked.
 *
 * Follows containers-registries.conf(5), v2 format only, and containers/image's
 * pkg/sysregistriesv2 for the parts the man page leaves open:
 * - Files: `$CONTAINERS_REGISTRIES_CONF` alone when set (containers/image would still read the
 *   system drop-in directory then; we read only that file so an override really is one). Else the
 *   user file `$HOME/.config/containers/registries.conf` if it exists, with only the user drop-in
 *   dir; else `<systemDir>/registries.conf` with `<systemDir>/registries.conf.d` and then the user
 *   drop-in dir. Drop-ins are `*.conf`, applied in lexical order within each directory; an entry in a
 *   later file replaces an earlier one with the same prefix, and scalar keys set later win.
 * - Matching (`refMatchingPrefix`): the entry's prefix (default: its location) matches
 *   `host/repository` exactly or on a `/` boundary, so `example.com/foo` does not match
 *   `example.com/foobar`, and `example.com` does not match `example.com:5000` (containers/image
 *   accepts that one by accident and says not to rely on it). `*.example.com` matches any
 *   subdomain host (any port), not example.com itself. The longest prefix wins.
 * - Rewriting: the matched prefix is replaced by the location (or a mirror's location).
 * - Mirrors (`PullSourcesFromReference`): tried first, in file order; `pull-from-mirror`
 *   'digest-only' / 'tag-only' and the registry-wide `mirror-by-digest-only` filter them.
 *
 * Unqualified names: `unqualified-search-registries` and `short-name-mode` are read and validated
 * but not used; a short name like `node` always means docker.io/library/node, as with Docker
 * (src/reference does that normalisation), so there is no short-name prompting or searching.
 *
 * Contract: loading is synchronous and read-only; a missing file is an empty configuration; any
 * problem in a file is TsrunError('ERR_CONFIG', 'reading <file>: …'). Matching is pure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from '../util/zod.js';
import { TsrunError } from '../errors.js';
import type { Endpoint } from './types.js';

/** The process facts these modules need, passed in so tests can supply their own. */
export interface EnvContext {
  env: NodeJS.ProcessEnv;
  home: string;
  uid: number;
}

export function defaultContext(): EnvContext {
  const env = process.env;
  return { env, home: env.HOME || os.homedir(), uid: process.getuid ? process.getuid() : 0 };
}

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryEntry {
  /** Normalised prefix: no trailing '/', defaulted to location. May be `*.example.com`. */
  prefix: string;
  /** '' only for wildcard prefixes (then the reference is used as is). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
  /** The file this entry came from, for messages. */
  source: string;
}

export interface RegistriesConf {
  /** Sorted by prefix; one entry per prefix. */
  registries: RegistryEntry[];
  /** Read, not used: short names always resolve to docker.io (see the module comment). */
  unqualifiedSearchRegistries: string[] | undefined;
  shortNameMode: string | undefined;
  /** The files actually read, in order (missing ones are not listed). */
  sources: string[];
}

export function emptyRegistriesConf(): RegistriesConf {
  return { registries: [], unqualifiedSearchRegistries: undefined, shortNameMode: undefined, sources: [] };
}

const mirrorSchema = z.looseObject({
  location: z.string(),
  insecure: z.boolean().optional(),
  'pull-from-mirror': z.enum(['all', 'digest-only', 'tag-only']).optional(),
});

const registrySchema = z.looseObject({
  prefix: z.string().optional(),
  location: z.string().optional(),
  insecure: z.boolean().optional(),
  blocked: z.boolean().optional(),
  'mirror-by-digest-only': z.boolean().optional(),
  mirror: z.array(mirrorSchema).optional(),
});

const fileSchema = z.looseObject({
  registry: z.array(registrySchema).optional(),
  'unqualified-search-registries': z.array(z.string()).optional(),
  'short-name-mode': z.enum(['enforcing', 'permissive', 'disabled']).optional(),
});

const V2_HINT = 'see containers-registries.conf(5) for the v2 format';

function configError(file: string, cause: string, hint = V2_HINT): TsrunError {
  return new TsrunError('ERR_CONFIG', `reading ${file}: ${cause}`, { hint });
}

/** Strip trailing slashes; refuse URL schemes (as containers/image's parseLocation does). */
function parseLocation(file: string, value: string): string {
  const trimmed = value.replace(/\/+$/, '');
  if (/^https?:\/\//i.test(trimmed)) {
    throw configError(
      file,
      `invalid location "${value}": URI schemes are not supported`,
      'write host[:port][/path], without http:// or https://',
    );
  }
  return trimmed;
}

interface ParsedFile {
  registries: RegistryEntry[];
  unqualifiedSearchRegistries: string[] | undefined;
  shortNameMode: string | undefined;
}

/** Parse one registries.conf text (v2). `file` is only used in messages and `source`. */
export function parseRegistriesConf(text: string, file: string): ParsedFile {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0] ?? err.message;
      throw new TsrunError(
        'ERR_CONFIG',
        `reading ${file}: invalid TOML at line ${err.line}, column ${err.column}: ${first}`,
        { hint: 'fix the TOML syntax', cause: err },
      );
    }
    throw configError(file, `invalid TOML: ${(err as Error).message}`);
  }
  const top = raw as Record<string, unknown>;
  if (
    'registries' in top &&
    typeof top['registries'] === 'object' &&
    top['registries'] !== null &&
    !Array.isArray(top['registries'])
  ) {
    throw new TsrunError('ERR_CONFIG', `reading ${file}: the v1 format is not supported`, {
      hint: 'convert it to the v2 format (see containers-registries.conf(5))',
    });
  }
  const result = fileSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw configError(file, `${where || 'top level'}: ${issue.message}`);
  }
  const data = result.data;
  const registries: RegistryEntry[] = [];
  for (const r of data.registry ?? []) {
    const location = parseLocation(file, r.location ?? '');
    let prefix: string;
    if (r.prefix === undefined || r.prefix === '') {
      if (location === '') throw configError(file, 'a [[registry]] has neither prefix nor location');
      prefix = location;
    } else {
      prefix = parseLocation(file, r.prefix);
      if (prefix.startsWith('*.')) {
        if (/[/:@*]/.test(prefix.slice(2))) {
          throw configError(
            file,
            `invalid prefix "${r.prefix}": a wildcard prefix is "*.domain", without port, path or other "*"`,
          );
        }
      } else if (prefix.includes('*')) {
        throw configError(file, `invalid prefix "${r.prefix}": a wildcard is only allowed as a leading "*."`);
      } else if (location === '') {
        throw configError(
          file,
          `the [[registry]] with prefix "${prefix}" has no location (only a "*.domain" prefix may omit it)`,
        );
      }
    }
    const mirrors: MirrorEntry[] = [];
    for (const m of r.mirror ?? []) {
      const mloc = parseLocation(file, m.location);
      if (mloc === '') throw configError(file, `a mirror of "${prefix}" has an empty location`);
      if (r['mirror-by-digest-only'] && m['pull-from-mirror'] !== undefined) {
        throw configError(
          file,
          `registry "${prefix}" sets mirror-by-digest-only and mirror "${mloc}" sets pull-from-mirror; use only one`,
        );
      }
      mirrors.push({ location: mloc, insecure: m.insecure ?? false, pullFromMirror: m['pull-from-mirror'] ?? 'all' });
    }
    registries.push({
      prefix,
      location,
      insecure: r.insecure ?? false,
      blocked: r.blocked ?? false,
      mirrorByDigestOnly: r['mirror-by-digest-only'] ?? false,
      mirrors,
      source: file,
    });
  }
  return {
    registries,
    unqualifiedSearchRegistries: data['unqualified-search-registries'],
    shortNameMode: data['short-name-mode'],
  };
}

/** Later files win: an entry replaces an earlier one with the same prefix (containers/image's merge). */
export function mergeRegistriesConf(base: RegistriesConf, update: ParsedFile, file: string): RegistriesConf {
  const byPrefix = new Map<string, RegistryEntry>();
  for (const r of base.registries) byPrefix.set(r.prefix, r);
  // Within one file the first entry for a prefix wins (later duplicates are unreachable anyway).
  const seen = new Set<string>();
  for (const r of update.registries) {
    if (seen.has(r.prefix)) continue;
    seen.add(r.prefix);
    byPrefix.set(r.prefix, r);
  }
  return {
    registries: [...byPrefix.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0)),
    unqualifiedSearchRegistries: update.unqualifiedSearchRegistries ?? base.unqualifiedSearchRegistries,
    shortNameMode: update.shortNameMode ?? base.shortNameMode,
    sources: [...base.sources, file],
  };
}

/** Which files to read, in order: [main file, ...drop-ins]. Pure apart from existence checks. */
export function registriesConfFiles(ctx: EnvContext, systemDir = '/etc/containers'): string[] {
  const override = ctx.env['CONTAINERS_REGISTRIES_CONF'];
  if (override) return [override];
  const userFile = path.join(ctx.home, '.config', 'containers', 'registries.conf');
  const userDir = path.join(ctx.home, '.config', 'containers', 'registries.conf.d');
  if (fs.existsSync(userFile)) return [userFile, ...dropIns(userDir)];
  return [
    path.join(systemDir, 'registries.conf'),
    ...dropIns(path.join(systemDir, 'registries.conf.d')),
    ...dropIns(userDir),
  ];
}

function dropIns(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return [];
    throw new TsrunError('ERR_CONFIG', `reading ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return names
    .filter((n) => n.endsWith('.conf'))
    .sort()
    .map((n) => path.join(dir, n));
}

/** Load and merge registries.conf and its drop-ins. Missing files are skipped. */
export function loadRegistriesConf(ctx: EnvContext, systemDir = '/etc/containers'): RegistriesConf {
  let conf = emptyRegistriesConf();
  for (const file of registriesConfFiles(ctx, systemDir)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new TsrunError('ERR_CONFIG', `reading ${file}: ${(err as Error).message}`, { cause: err });
    }
    conf = mergeRegistriesConf(conf, parseRegistriesConf(text, file), file);
  }
  return conf;
}

/**
 * Length of `ref` matched by `prefix`, or -1. `ref` is `host/repository`.
 * For a wildcard prefix the match ends after the host name (before any port), as in containers/image.
 */
export function matchPrefix(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const slash = ref.indexOf('/');
    const hostPort = slash === -1 ? ref : ref.slice(0, slash);
    const host = hostPort.startsWith('[') ? hostPort : hostPort.replace(/:\d+$/, '');
    const suffix = prefix.slice(1).toLowerCase();
    return host.length > suffix.length && host.toLowerCase().endsWith(suffix) ? host.length : -1;
  }
  if (ref === prefix) return prefix.length;
  if (ref.length > prefix.length && ref.startsWith(prefix) && ref[prefix.length] === '/') return prefix.length;
  return -1;
}

/** The entry whose prefix matches `host/repository` longest, if any. */
export function findRegistry(conf: RegistriesConf, registry: string, repository: string): RegistryEntry | undefined {
  const ref = `${registry}/${repository}`;
  let best: RegistryEntry | undefined;
  for (const r of conf.registries) {
    if (matchPrefix(ref, r.prefix) !== -1 && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best;
}

const LOOPBACK_RE = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/** localhost, 127.0.0.0/8 and [::1], any port: always insecure, as Docker treats 127.0.0.0/8. */
export function isLoopback(host: string): boolean {
  return LOOPBACK_RE.test(host);
}

/** docker.io (and its old name) is served by registry-1.docker.io. */
function apiHost(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' ? 'registry-1.docker.io' : host;
}

function toEndpoint(ref: string, conf: RegistriesConf, file: string, insecure: boolean, mirror: boolean): Endpoint {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) {
    throw new TsrunError('ERR_CONFIG', `reading ${file}: rewriting gave "${ref}", which has no repository path`, {
      hint: 'a location must keep host/repository shape after the prefix is replaced',
      detail: { sources: conf.sources },
    });
  }
  const host = apiHost(ref.slice(0, slash));
  return { host, repository: ref.slice(slash + 1), insecure: insecure || isLoopback(host), mirror };
}

/**
 * Where to pull `registry/repository` from: mirrors first (in order, filtered by pull-from-mirror
 * against `byDigest`), then the (possibly rewritten) primary location. `repository` is the
 * normalised one (docker.io keeps `library/`). Throws ERR_REGISTRY_BLOCKED for a blocked entry.
 */
export function endpointsFor(
  conf: RegistriesConf,
  registry: string,
  repository: string,
  opts: { byDigest: boolean },
): Endpoint[] {
  const ref = `${registry}/${repository}`;
  const entry = findRegistry(conf, registry, repository);
  if (!entry) return [toEndpoint(ref, conf, '(none)', false, false)];
  if (entry.blocked) {
    throw new TsrunError('ERR_REGISTRY_BLOCKED', `${ref}: registry ${entry.prefix} is blocked in ${entry.source}`, {
      hint: `remove "blocked = true" from the [[registry]] with prefix "${entry.prefix}" in ${entry.source}, or pull the image from another registry`,
    });
  }
  const matched = matchPrefix(ref, entry.prefix);
  const rest = ref.slice(matched);
  const out: Endpoint[] = [];
  for (const m of entry.mirrors) {
    const use = entry.mirrorByDigestOnly
      ? opts.byDigest
      : m.pullFromMirror === 'all' ||
        (opts.byDigest ? m.pullFromMirror === 'digest-only' : m.pullFromMirror === 'tag-only');
    if (use) out.push(toEndpoint(m.location + rest, conf, entry.source, m.insecure, true));
  }
  const primary = entry.location === '' ? ref : entry.location + rest;
  out.push(toEndpoint(primary, conf, entry.source, entry.insecure, false));
  return out;
}
