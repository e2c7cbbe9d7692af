/**
 * Registry credentials: where they live, reading them for pulls, writing them for `tsrun login`,
 * removing them for `tsrun logout`.
 *
 * Files (first one that has something for the registry wins when reading):
 *   1. `$REGISTRY_AUTH_FILE` (containers-auth.json(5)) if set;
 *   2. Docker's `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (docker config-file docs);
 *   3. containers' `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json` when
 *      XDG_RUNTIME_DIR is unset, as containers/image does), then `~/.config/containers/auth.json`.
 * All share the shape `{ auths: { key: { auth, identitytoken? } }, credsStore?, credHelpers? }`.
 *
 * Within one file, as docker/cli's configfile does: `credHelpers[host]` wins over `credsStore`; a
 * configured helper answers instead of that file's `auths` (whose entries are then empty stubs).
 * A helper that has nothing lets the search go on to the next file. `auths` keys are matched by
 * host: `https://host`, `http://host/v1/` and `host` are all `host` (ConvertToHostname); Docker
 * Hub's key is `https://index.docker.io/v1/` and `docker.io`, `index.docker.io`,
 * `registry-1.docker.io` name the same registry.
 *
 * Credential helpers follow docker-credential-helpers' protocol: `docker-credential-<name> get`
 * with the server URL on stdin answers `{"ServerURL","Username","Secret"}`; Username `<token>`
 * means Secret is an identity token; "credentials not found" on stdout (non-zero exit) means
 * nothing stored. `store` takes that JSON on stdin; `erase` takes the server URL.
 *
 * Contract: secrets never appear in messages or events, and helper output is never echoed (it
 * may contain them). Writes are atomic (temp file, mode 0600, rename) and keep every other key of
 * the file; the final file is 0600. "Which file or helper serves registry X" is the pure function
 * `credentialSources`, tested on its own.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from '../util/zod.js';
import { TsrunError } from '../errors.js';
import type { Credentials } from './types.js';
import { defaultContext, type EnvContext } from './registries-conf.js';

export { defaultContext, type EnvContext };

/** An EnvContext, optionally with the time a credential helper may take. */
export interface CredentialsContext extends EnvContext {
  helperTimeoutMs?: number;
}

const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

const authEntrySchema = z.looseObject({
  auth: z.string().optional(),
  identitytoken: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
});
export type AuthEntry = z.infer<typeof authEntrySchema>;

const authFileSchema = z.looseObject({
  auths: z.record(z.string(), authEntrySchema).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});

export type AuthFileKind = 'registry-auth-file' | 'docker' | 'containers';

export interface AuthFile {
  path: string;
  kind: AuthFileKind;
  /** False when the file does not exist (then `data` is empty). */
  exists: boolean;
  /** The whole parsed JSON (other keys kept for rewriting). */
  raw: Record<string, unknown>;
  auths: Record<string, AuthEntry>;
  credsStore: string | undefined;
  credHelpers: Record<string, string>;
}

export type CredentialSource =
  | { kind: 'helper'; helper: string; serverUrl: string; file: string }
  | { kind: 'entry'; file: string; key: string; entry: AuthEntry };

// ---------------------------------------------------------------------------------------------
// Pure: names and matching

/** `https://host/v1/` → `host`, lowercased; Docker Hub's names → `docker.io`. */
export function normalizeKey(key: string): string {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash !== -1) k = k.slice(0, slash);
  k = k.toLowerCase();
  return HUB_HOSTS.has(k) ? 'docker.io' : k;
}

/** The key/server URL Docker uses for a registry: Hub's legacy URL, otherwise host[:port]. */
export function serverKey(registry: string): string {
  return normalizeKey(registry) === 'docker.io' ? DOCKER_HUB_KEY : registry;
}

/** The `auths` key in `auths` that names `registry`: the canonical key first, then any alias. */
export function findAuthKey(auths: Record<string, unknown>, registry: string): string | undefined {
  const canonical = serverKey(registry);
  if (Object.hasOwn(auths, canonical)) return canonical;
  const want = normalizeKey(registry);
  return Object.keys(auths).find((k) => normalizeKey(k) === want);
}

/** The helper a file configures for `registry`: credHelpers (any alias) over credsStore. */
export function helperFor(file: Pick<AuthFile, 'credHelpers' | 'credsStore'>, registry: string): string | undefined {
  const key = findAuthKey(file.credHelpers, registry);
  if (key !== undefined && file.credHelpers[key]) return file.credHelpers[key];
  return file.credsStore || undefined;
}

function hasCredentials(e: AuthEntry): boolean {
  return Boolean(e.auth || e.identitytoken || (e.username && e.password));
}

/**
 * Where credentials for `registry` may come from, in the order to try them. Per file: its helper
 * if one is configured for the registry, else its `auths` entry if it holds credentials.
 */
export function credentialSources(files: AuthFile[], registry: string): CredentialSource[] {
  const out: CredentialSource[] = [];
  for (const f of files) {
    if (!f.exists) continue;
    const helper = helperFor(f, registry);
    if (helper) {
      out.push({ kind: 'helper', helper, serverUrl: serverKey(registry), file: f.path });
      continue;
    }
    const key = findAuthKey(f.auths, registry);
    if (key !== undefined && hasCredentials(f.auths[key]!))
      out.push({ kind: 'entry', file: f.path, key, entry: f.auths[key]! });
  }
  return out;
}

/** Turn an auths entry into Credentials. `auth` is base64("user:pass"); the password may hold ':'. */
export function decodeEntry(entry: AuthEntry, file: string, key: string): Credentials {
  let username = entry.username;
  let password = entry.password;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new TsrunError(
        'ERR_CREDENTIALS',
        `reading credentials for ${key} in ${file}: the "auth" value is not base64 of "username:password"`,
        {
          hint: `log in again (tsrun login ${normalizeKey(key)}) or fix the entry`,
        },
      );
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (entry.identitytoken)
    return username
      ? { kind: 'identity', token: entry.identitytoken, username }
      : { kind: 'identity', token: entry.identitytoken };
  return { kind: 'basic', username: username ?? '', password: password ?? '' };
}

// ---------------------------------------------------------------------------------------------
// Files

export function dockerConfigPath(ctx: EnvContext): string {
  const dir = ctx.env['DOCKER_CONFIG'] || path.join(ctx.home, '.docker');
  return path.join(dir, 'config.json');
}

/** Every file consulted when reading, in order. */
export function authFilePaths(ctx: EnvContext): { path: string; kind: AuthFileKind }[] {
  const out: { path: string; kind: AuthFileKind }[] = [];
  const env = ctx.env;
  if (env['REGISTRY_AUTH_FILE']) out.push({ path: env['REGISTRY_AUTH_FILE'], kind: 'registry-auth-file' });
  out.push({ path: dockerConfigPath(ctx), kind: 'docker' });
  const runtime = env['XDG_RUNTIME_DIR']
    ? path.join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json')
    : `/run/containers/${ctx.uid}/auth.json`;
  out.push({ path: runtime, kind: 'containers' });
  out.push({ path: path.join(ctx.home, '.config', 'containers', 'auth.json'), kind: 'containers' });
  // The same file named twice (e.g. REGISTRY_AUTH_FILE pointing at Docker's) is read once.
  return out.filter((f, i) => out.findIndex((g) => path.resolve(g.path) === path.resolve(f.path)) === i);
}

/** Read and validate one auth file; a missing (or empty) file is an empty one. */
export async function readAuthFile(file: string, kind: AuthFileKind): Promise<AuthFile> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { path: file, kind, exists: false, raw: {}, auths: {}, credsStore: undefined, credHelpers: {} };
    throw new TsrunError('ERR_CREDENTIALS', `reading ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (text.trim() === '')
    return { path: file, kind, exists: true, raw: {}, auths: {}, credsStore: undefined, credHelpers: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // JSON.parse's message can quote the text around the error, which may be a secret: keep only the position.
    const pos = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new TsrunError('ERR_CREDENTIALS', `reading ${file}: invalid JSON${pos ? ` at position ${pos}` : ''}`, {
      hint: 'fix or remove the file, then log in again',
    });
  }
  const parsed = authFileSchema.safeParse(raw);
  if (!parsed.success || typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new TsrunError(
      'ERR_CREDENTIALS',
      `reading ${file}: unexpected content${where ? ` at "${where}"` : ''}${issue ? `: ${issue.message}` : ''}`,
      {
        hint: 'expected { "auths": { "<registry>": { "auth": "<base64 user:password>" } } }',
      },
    );
  }
  const d = parsed.data;
  return {
    path: file,
    kind,
    exists: true,
    raw: raw as Record<string, unknown>,
    auths: d.auths ?? {},
    credsStore: d.credsStore,
    credHelpers: d.credHelpers ?? {},
  };
}

async function readAll(ctx: EnvContext): Promise<AuthFile[]> {
  return Promise.all(authFilePaths(ctx).map((f) => readAuthFile(f.path, f.kind)));
}

/** Write JSON atomically: temp file 0600 in the same directory, fsync, rename; final mode 0600. */
async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  // Like docker/cli, follow a symlinked config to the real file, so the link survives.
  let target = file;
  try {
    target = await fsp.realpath(file);
  } catch {
    /* does not exist yet */
  }
  const dir = path.dirname(target);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(data, null, '\t') + '\n');
    await fh.chmod(0o600);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw new TsrunError('ERR_CREDENTIALS', `writing ${target}: ${(err as Error).message}`, { cause: err });
  }
  await fh.close();
  try {
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw new TsrunError('ERR_CREDENTIALS', `writing ${target}: ${(err as Error).message}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// Credential helpers

const NOT_FOUND_RE = /credentials not found/i;

interface HelperResult {
  stdout: string;
  stderr: string;
  failed: boolean;
  timedOut: boolean;
  exitCode: number | undefined;
  /** errno code when the program could not be started (ENOENT: not on PATH). */
  code: string | undefined;
}

/**
 * Run `docker-credential-<helper> <action>` with `input` on stdin and the context's env (its PATH
 * finds the helper). On timeout the helper is killed and its pipes closed, so a grandchild that
 * keeps them open (a `sleep`, an agent) cannot hold us.
 */
async function runHelper(
  ctx: CredentialsContext,
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
): Promise<HelperResult> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) {
    // The name comes from a config file and becomes part of a program name: no paths.
    throw new TsrunError('ERR_CREDENTIALS', `running credential helper "${helper}": not a valid helper name`, {
      hint: 'credsStore/credHelpers name a helper such as "pass" or "secretservice" (for docker-credential-pass, …)',
    });
  }
  // Imported here: execa costs ~90 ms to load, and most pulls and runs never need a helper.
  const { execa } = await import('execa');
  const sub = execa(`docker-credential-${helper}`, [action], {
    input,
    env: ctx.env,
    extendEnv: false,
    reject: false,
    stripFinalNewline: true,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    sub.kill('SIGKILL');
    sub.stdout?.destroy();
    sub.stderr?.destroy();
  }, ctx.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS);
  try {
    const r = await sub;
    return {
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
      failed: r.failed || timedOut,
      timedOut,
      exitCode: r.exitCode,
      code: (r as { code?: string }).code,
    };
  } finally {
    clearTimeout(timer);
  }
}

function notFound(r: HelperResult): boolean {
  return !r.timedOut && NOT_FOUND_RE.test(r.stdout + '\n' + r.stderr);
}

function helperFailure(helper: string, action: string, registry: string, r: HelperResult): TsrunError {
  const program = `docker-credential-${helper}`;
  // Never include the helper's output: for `get` it may carry the secret.
  if (r.code === 'ENOENT') {
    return new TsrunError(
      'ERR_CREDENTIALS',
      `running ${program} ${action} for ${registry}: ${program} was not found in PATH`,
      {
        hint: `install ${program}, or remove the credsStore/credHelpers entry naming it from your Docker config`,
      },
    );
  }
  const why = r.timedOut
    ? 'it timed out'
    : r.code
      ? `it could not be started (${r.code})`
      : `it exited with status ${r.exitCode ?? 'unknown'}`;
  return new TsrunError('ERR_CREDENTIALS', `running ${program} ${action} for ${registry}: ${why}`, {
    hint: `check that ${program} works on its own (echo <server> | ${program} get)`,
    retryable: r.timedOut,
  });
}

const helperAnswerSchema = z.looseObject({
  ServerURL: z.string().optional(),
  Username: z.string().optional(),
  Secret: z.string(),
});

async function helperGet(
  ctx: CredentialsContext,
  helper: string,
  serverUrl: string,
  registry: string,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  const r = await runHelper(ctx, helper, 'get', serverUrl);
  if (r.failed) {
    if (notFound(r)) return undefined;
    throw helperFailure(helper, 'get', registry, r);
  }
  let parsed;
  try {
    parsed = helperAnswerSchema.parse(JSON.parse(r.stdout));
  } catch {
    throw new TsrunError(
      'ERR_CREDENTIALS',
      `running ${program} get for ${registry}: its answer is not {"Username","Secret"} JSON`,
    );
  }
  if (parsed.Secret === '') return undefined;
  if (parsed.Username === '<token>') return { kind: 'identity', token: parsed.Secret };
  return { kind: 'basic', username: parsed.Username ?? '', password: parsed.Secret };
}

// ---------------------------------------------------------------------------------------------
// Use cases

/** Credentials for `registry` ('docker.io' or host[:port]), or undefined for anonymous access. */
export async function lookupCredentials(ctx: CredentialsContext, registry: string): Promise<Credentials | undefined> {
  const files = await readAll(ctx);
  for (const src of credentialSources(files, registry)) {
    if (src.kind === 'entry') return decodeEntry(src.entry, src.file, src.key);
    const creds = await helperGet(ctx, src.helper, src.serverUrl, registry);
    if (creds) return creds;
  }
  return undefined;
}

export interface StoreResult {
  kind: 'helper' | 'file';
  /** The helper program (`docker-credential-<name>`) or the file written. */
  where: string;
  /** Set when the password now sits base64-encoded (not encrypted) in this file: warn like Docker. */
  plaintextFile?: string;
}

/** Where `tsrun login` stores: the Docker config's helper for the registry, or that file itself. Pure. */
export function storeTarget(
  dockerConfig: AuthFile,
  registry: string,
): { kind: 'helper'; helper: string; serverUrl: string } | { kind: 'file'; file: string; key: string } {
  const helper = helperFor(dockerConfig, registry);
  if (helper) return { kind: 'helper', helper, serverUrl: serverKey(registry) };
  // Always the canonical key (Hub: https://index.docker.io/v1/); storeCredentials drops aliases.
  return { kind: 'file', file: dockerConfig.path, key: serverKey(registry) };
}

/**
 * `tsrun login`: store credentials in `$REGISTRY_AUTH_FILE` when set (as podman login does; a
 * CI job points it at a file of its own), else in the Docker config; or in that file's
 * credential helper.
 */
export async function storeCredentials(
  ctx: CredentialsContext,
  registry: string,
  creds: { username: string; password: string },
): Promise<StoreResult> {
  const authFile = ctx.env['REGISTRY_AUTH_FILE'];
  const file = authFile ? path.resolve(authFile) : dockerConfigPath(ctx);
  const config = await readAuthFile(file, authFile ? 'registry-auth-file' : 'docker');
  const target = storeTarget(config, registry);
  if (target.kind === 'helper') {
    const r = await runHelper(
      ctx,
      target.helper,
      'store',
      JSON.stringify({ ServerURL: target.serverUrl, Username: creds.username, Secret: creds.password }),
    );
    if (r.failed) throw helperFailure(target.helper, 'store', registry, r);
    return { kind: 'helper', where: `docker-credential-${target.helper}` };
  }
  const raw = { ...config.raw };
  const auths = { ...((raw['auths'] as Record<string, unknown> | undefined) ?? {}) };
  // Drop aliases of the same registry so the new entry is the one found.
  for (const k of Object.keys(auths)) if (normalizeKey(k) === normalizeKey(registry)) delete auths[k];
  auths[target.key] = { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
  raw['auths'] = auths;
  await writeJsonAtomic(file, raw);
  return { kind: 'file', where: file, plaintextFile: file };
}

/**
 * `tsrun logout`: erase through the Docker config's helper, and remove the registry's entries
 * from the Docker config and from any other auth file that holds them (as `podman logout`).
 * Returns false when there was nothing to remove.
 */
export async function eraseCredentials(ctx: CredentialsContext, registry: string): Promise<boolean> {
  const files = await readAll(ctx);
  let removed = false;
  const docker = files.find((f) => f.kind === 'docker')!;
  const helper = helperFor(docker, registry);
  if (helper) {
    const r = await runHelper(ctx, helper, 'erase', serverKey(registry));
    if (r.failed) {
      if (!notFound(r)) throw helperFailure(helper, 'erase', registry, r);
    } else {
      removed = true;
    }
  }
  const want = normalizeKey(registry);
  for (const f of files) {
    if (!f.exists) continue;
    const auths = f.raw['auths'];
    if (typeof auths !== 'object' || auths === null) continue;
    const keys = Object.keys(auths).filter((k) => normalizeKey(k) === want);
    if (keys.length === 0) continue;
    // Stub entries (no secret, left by helper logins) are cleaned up but do not count as a removal.
    const next = { ...(auths as Record<string, unknown>) };
    for (const k of keys) {
      if (hasCredentials(f.auths[k] ?? {})) removed = true;
      delete next[k];
    }
    await writeJsonAtomic(f.path, { ...f.raw, auths: next });
  }
  return removed;
}
