/**
 * Every tag of a repository (distribution spec "Listing Tags", following `Link: <…>; rel="next"`
 * pages), for `pull --all-tags` and `search --list-tags`. At most 10,000 tags and 100 pages of
 * `pageSize`; names that are not valid tags are dropped; sorted, without repeats.
 */
import { TsrunError } from '../errors.js';
import type { RegistryClient } from './client.js';
import { nextPage, readLimited } from './http.js';

export async function listTags(client: RegistryClient, pageSize = 1000): Promise<string[]> {
  const repository = client.repo;
  const action = `listing the tags of ${repository}`;
  const tags: string[] = [];
  let next: string | undefined = `/v2/${repository}/tags/list?n=${pageSize}`;
  for (let page = 0; next && page < 100 && tags.length < 10_000; page++) {
    const res = await client.call('GET', next, { headers: { Accept: 'application/json' }, ok: [200], action });
    const { bytes } = await readLimited(res, 4 * 1024 * 1024);
    let body: { tags?: unknown };
    try {
      body = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
    } catch {
      throw new TsrunError('ERR_REGISTRY', `${action}: the registry's answer is not JSON`);
    }
    if (Array.isArray(body.tags))
      tags.push(...body.tags.filter((t): t is string => typeof t === 'string' && /^[\w][\w.-]{0,127}$/.test(t)));
    next = nextPage(res);
  }
  return [...new Set(tags)].sort();
}
