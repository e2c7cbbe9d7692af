/**
 * `tsrun cp`: copy between a container's root filesystem and the host, in either direction
 * (docker cp). Exactly one side is `CONTAINER:PATH`; a path starting with "/" or "." is always
 * local, as in docker/cli's splitCpArg. The container's root is used through its overlay mount:
 * the live one while it runs, a temporary one (under the container's lock) when it is stopped.
 * The path rules and the symlink safety are snapshot/rootfs-copy.ts's. Volumes bind-mounted into
 * the container are not visible this way (docker cp would copy from them): a known gap.
 */
import { TsrunError } from '../errors.js';
import { copyIn, copyOut, type CopyResult } from '../snapshot/rootfs-copy.js';
import { unmountAll } from '../snapshot/overlay.js';
import type { AppContext } from './context.js';
import { isMounted, openEnv, rootfsMount, ensureMounted } from './containers.js';

function split(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

export async function copy(ctx: AppContext, src: string, dest: string, o: { archive?: boolean } = {}): Promise<CopyResult> {
  const s = split(src);
  const d = split(dest);
  if (s.container && d.container) throw new TsrunError('ERR_USAGE', 'copying between containers is not supported', { hint: 'copy to the host first' });
  if (!s.container && !d.container) throw new TsrunError('ERR_USAGE', 'must specify at least one container source', { hint: 'tsrun cp CONTAINER:PATH HOSTPATH, or tsrun cp HOSTPATH CONTAINER:PATH' });
  const env = await openEnv(ctx);
  const c = await env.containers.find((s.container ?? d.container) as string);
  const ctrPath = (p: string) => (p.startsWith('/') ? p : `/${p}`);
  const run = () => (s.container
    ? copyOut(c.paths.rootfs, ctrPath(s.path), d.path, { preserveOwnership: o.archive })
    : copyIn(c.paths.rootfs, s.path, ctrPath(d.path), { preserveOwnership: o.archive }));
  if (c.observed.status === 'running' && isMounted(c.paths.rootfs)) return run();
  return env.containers.lock(c.record.id, async () => {
    const mounted = isMounted(c.paths.rootfs);
    if (!mounted) await env.store.withSharedLock(() => ensureMounted(env, c));
    try {
      return await run();
    } finally {
      if (!mounted) await unmountAll([rootfsMount(env, c)]);
    }
  });
}
