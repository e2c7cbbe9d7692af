/**
 * `tsrun search TERM` and `tsrun search --list-tags IMAGE`.
 *
 * Where to search follows Docker (registry.ParseSearchIndexInfo): a term whose first component
 * looks like a host (has a `.` or `:`, or is `localhost`) searches that registry, anything else
 * Docker Hub.
 * - Docker Hub: its search API, `GET https://index.docker.io/v1/search?q=TERM&n=LIMIT` (the JSON
 *   shape `{num_results, query, results: [{name, description, star_count, is_official,
 *   is_automated}]}`), anonymously. `TSRUN_SEARCH_INDEX_URL` replaces the base URL (a local
 *   server speaking the same API; Docker Hub is not reachable where tsrun is developed).
 * - Any other registry: the distribution API has no search, so its catalog (`GET /v2/_catalog`,
 *   distribution spec "Listing Repositories", `Link` pages of 100) is listed and the repositories
 *   whose name contains TERM (case-insensitive) are the results, with no description or stars.
 *   Auth is the pull client's (a 401's challenge, a Bearer token for `registry:catalog:*` or
 *   Basic, with the credentials of `tsrun login`); registries.conf's `insecure` and `blocked`
 *   apply.
 * Filters are Docker's (daemon/search.go): `is-official=true|false`, `stars=N` (the largest N
 * given wins), `is-automated=true|false`; another key or value is an error. Docker applies them
 * after the limit (the registry gets `n=LIMIT`); so does tsrun.
 *
 * `--list-tags`: every tag of the repository (`/v2/<name>/tags/list?n=100`, following `Link`
 * pages), as podman's `search --list-tags`, through the same endpoints as pull (mirrors first).
 *
 * Contract: read-only, no store access. Registry answers are validated (zod) before use.
 */
import { z } from '../util/zod.js';
import { TsrunError, wrapError } from '../errors.js';
import { familiarRepository, parseReference } from '../reference/reference.js';
import { RegistryClient } from '../registry/client.js';
import { lookupCredentials } from '../registry/credentials.js';
import { nextPage, readLimited, registryError, send } from '../registry/http.js';
import { endpointsFor, loadRegistriesConf } from '../registry/registries-conf.js';
import type { AppContext } from './context.js';
import { remoteTags } from './pull.js';

export interface SearchResult {
  name: string;
  description: string;
  starCount: number;
  isOfficial: boolean;
  isAutomated: boolean;
}

export interface SearchOptions {
  limit?: number;
  /** `--filter KEY=VALUE`, each as given. */
  filters?: string[];
}

export const DEFAULT_INDEX_URL = 'https://index.docker.io';
const HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

const hubAnswer = z.object({
  results: z
    .array(
      z.object({
        name: z.string().max(512),
        description: z
          .string()
          .max(64 * 1024)
          .nullish(),
        star_count: z.number().int().nonnegative().nullish(),
        is_official: z.boolean().nullish(),
        is_automated: z.boolean().nullish(),
      }),
    )
    .nullish(),
});

const catalogAnswer = z.object({ repositories: z.array(z.string().max(512)).nullish() });

interface Filters {
  official?: boolean;
  automated?: boolean;
  stars?: number;
}

const invalid = (f: string) => new TsrunError('ERR_USAGE', `invalid filter '${f}'`);

/** Docker's search filters (daemon/search.go): unknown keys and values are errors. */
export function parseSearchFilters(filters: readonly string[]): Filters {
  const out: Filters = {};
  const bools = new Map<string, Set<string>>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new TsrunError('ERR_USAGE', `bad format of filter (expected name=value)`);
    const key = f.slice(0, eq).trim().toLowerCase();
    const value = f.slice(eq + 1);
    if (key === 'stars') {
      if (!/^-?\d+$/.test(value)) throw invalid(`stars=${value}`);
      out.stars = Math.max(out.stars ?? 0, Number(value));
    } else if (key === 'is-official' || key === 'is-automated') {
      bools.set(key, (bools.get(key) ?? new Set()).add(value));
    } else throw invalid(key);
  }
  for (const [key, values] of bools) {
    const v = [...values];
    if (v.length !== 1 || (v[0] !== 'true' && v[0] !== 'false')) throw invalid(`${key}=${v.join(',')}`);
    if (key === 'is-official') out.official = v[0] === 'true';
    else out.automated = v[0] === 'true';
  }
  return out;
}

/** Docker's splitReposSearchTerm: [registry host, or undefined for Docker Hub; the term]. */
export function splitSearchTerm(term: string): [string | undefined, string] {
  const slash = term.indexOf('/');
  if (slash < 0) return [undefined, term];
  const first = term.slice(0, slash);
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return [undefined, term];
  return [HUB_NAMES.has(first) ? undefined : first, term.slice(slash + 1)];
}

export async function search(ctx: AppContext, term: string, o: SearchOptions = {}): Promise<SearchResult[]> {
  const limit = o.limit ?? 25;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new TsrunError('ERR_USAGE', `limit ${limit} is outside the range of [1, 100]`);
  }
  const filters = parseSearchFilters(o.filters ?? []);
  const [host, q] = splitSearchTerm(term);
  const found = host === undefined ? await searchHub(ctx, q, limit) : await searchCatalog(ctx, host, q, limit);
  return found.filter(
    (r) =>
      (filters.official === undefined || r.isOfficial === filters.official) &&
      (filters.automated === undefined || r.isAutomated === filters.automated) &&
      (filters.stars === undefined || r.starCount >= filters.stars),
  );
}

async function searchHub(ctx: AppContext, q: string, limit: number): Promise<SearchResult[]> {
  const base = (ctx.env.TSRUN_SEARCH_INDEX_URL || DEFAULT_INDEX_URL).replace(/\/+$/, '');
  const url = `${base}/v1/search?q=${encodeURIComponent(q)}&n=${limit}`;
  const action = `searching ${new URL(base).host} for "${q}"`;
  let bytes: Buffer;
  try {
    const res = await send({ url, headers: { Accept: 'application/json' } }, { reporter: ctx.reporter });
    if (!res.ok) throw await registryError(res, { action, host: new URL(base).host });
    bytes = (await readLimited(res, 8 * 1024 * 1024)).bytes;
  } catch (err) {
    throw err instanceof TsrunError && err.message.startsWith(action) ? err : wrapError(action, err, 'ERR_REGISTRY');
  }
  const parsed = hubAnswer.safeParse(parseJson(bytes, action));
  if (!parsed.success) throw new TsrunError('ERR_REGISTRY', `${action}: the answer is not a search result`);
  return (parsed.data.results ?? []).slice(0, limit).map((r) => ({
    name: r.name,
    description: r.description ?? '',
    starCount: r.star_count ?? 0,
    isOfficial: r.is_official ?? false,
    isAutomated: r.is_automated ?? false,
  }));
}

function parseJson(bytes: Buffer, action: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new TsrunError('ERR_REGISTRY', `${action}: the answer is not JSON`);
  }
}

/** The registry's own location for `host` (not a mirror: mirrors hold only what was pulled). */
function ownEndpoint(ctx: AppContext, host: string) {
  const regCtx = { env: ctx.env, home: ctx.home, uid: ctx.uid };
  const all = endpointsFor(loadRegistriesConf(regCtx), host, 'library/catalog', { byDigest: false });
  const own = all.find((e) => !e.mirror) ?? all[all.length - 1];
  if (!own) throw new TsrunError('ERR_REGISTRY', `searching ${host}: no registry location`);
  return { endpoint: { ...own, host, repository: '' }, regCtx };
}

async function searchCatalog(ctx: AppContext, host: string, q: string, limit: number): Promise<SearchResult[]> {
  const { endpoint, regCtx } = ownEndpoint(ctx, host);
  const client = new RegistryClient({
    endpoint,
    credentials: () => lookupCredentials(regCtx, host),
    reporter: ctx.reporter,
    extraScopes: ['registry:catalog:*'],
  });
  const action = `searching the catalog of ${host}`;
  const needle = q.toLowerCase();
  const out: SearchResult[] = [];
  let next: string | undefined = '/v2/_catalog?n=100';
  try {
    for (let page = 0; next && page < 100 && out.length < limit; page++) {
      const res = await client.call('GET', next, { headers: { Accept: 'application/json' }, ok: [200], action });
      const { bytes } = await readLimited(res, 4 * 1024 * 1024);
      const parsed = catalogAnswer.safeParse(parseJson(bytes, action));
      if (!parsed.success) throw new TsrunError('ERR_REGISTRY', `${action}: the answer is not a catalog`);
      for (const repo of parsed.data.repositories ?? []) {
        if (repo.toLowerCase().includes(needle) && out.length < limit)
          out.push({ name: `${host}/${repo}`, description: '', starCount: 0, isOfficial: false, isAutomated: false });
      }
      next = nextPage(res);
    }
  } catch (err) {
    throw err instanceof TsrunError && err.message.startsWith(action) ? err : wrapError(action, err, 'ERR_REGISTRY');
  }
  return out;
}

/** `search --list-tags IMAGE`: the repository's familiar name and every tag, sorted. */
export async function listTags(ctx: AppContext, image: string): Promise<{ name: string; tags: string[] }> {
  const ref = parseReference(image);
  if (ref.digest || /:[^/]*$/.test(image)) {
    throw new TsrunError('ERR_USAGE', `reference "${image}" must not have a tag: --list-tags lists them`, {
      hint: `tsrun search --list-tags ${familiarRepository(ref)}`,
    });
  }
  // Pages of 100 (the registry's own default may be smaller), following each page's Link.
  return { name: familiarRepository(ref), tags: await remoteTags(ctx, image, 100) };
}
