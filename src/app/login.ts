/**
 * `tsrun login` / `logout`: check credentials against the registry (as Docker does, nothing is
 * stored unless the registry accepts them), then store or erase them where Docker keeps them.
 */
import { TsrunError } from '../errors.js';
import { RegistryClient } from '../registry/client.js';
import { eraseCredentials, storeCredentials } from '../registry/credentials.js';
import { endpointsFor, loadRegistriesConf } from '../registry/registries-conf.js';
import type { AppContext } from './context.js';

/** "https://index.docker.io/v1/", "registry-1.docker.io", "docker.io" → "docker.io"; else host[:port]. */
export function registryFromServer(server: string): string {
  const host = server
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (host === '')
    throw new TsrunError('ERR_USAGE', `"${server}" is not a registry address`, {
      hint: 'give host[:port], e.g. registry.example.com:5000',
    });
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host))
    return 'docker.io';
  return host;
}

export async function login(
  ctx: AppContext,
  opts: { server: string; username: string; password: string },
): Promise<{ plaintextFile?: string }> {
  const registry = registryFromServer(opts.server);
  const envCtx = { env: ctx.env, home: ctx.home, uid: ctx.uid };
  const endpoints = endpointsFor(loadRegistriesConf(envCtx), registry, 'library/login', { byDigest: false });
  const primary = endpoints[endpoints.length - 1];
  if (!primary) throw new TsrunError('ERR_CONFIG', `logging in to ${registry}: no location configured`);
  const client = new RegistryClient({ endpoint: primary, reporter: ctx.reporter });
  try {
    await client.checkCredentials({ kind: 'basic', username: opts.username, password: opts.password });
  } catch (err) {
    if (err instanceof TsrunError && err.code === 'ERR_REGISTRY_AUTH') {
      throw new TsrunError(
        'ERR_REGISTRY_AUTH',
        `logging in to ${registry}: the registry refused the username or password`,
        { hint: 'check the username and password' },
      );
    }
    throw err;
  }
  const stored = await storeCredentials(envCtx, registry, { username: opts.username, password: opts.password });
  return { plaintextFile: stored.plaintextFile };
}

export async function logout(ctx: AppContext, server: string): Promise<boolean> {
  return eraseCredentials({ env: ctx.env, home: ctx.home, uid: ctx.uid }, registryFromServer(server));
}
