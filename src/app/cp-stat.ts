/**
 * What `docker cp` asks before it copies (the Engine's `HEAD /containers/{id}/archive`): the
 * entry at a path in a container, not followed, as Docker's container.PathStat. Resolved the way
 * cp resolves paths (app/container-root.ts, snapshot/safe-root.ts: through fds, inside the root),
 * so a racing container cannot point it at the host.
 */
import { native } from '../native/index.js';
import { closeFd, errno } from '../snapshot/safe-root.js';
import { TsrunError } from '../errors.js';
import { withContainerRoot } from './container-root.js';
import type { Env } from './containers.js';

export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode: permission bits with the type's high bits (dir 1<<31, symlink 1<<27). */
  mode: number;
  mtime: string;
  linkTarget: string;
}

const GO_MODE = { dir: 2 ** 31, symlink: 2 ** 27, file: 0, other: 2 ** 26 };

export async function statInContainer(env: Env, query: string, ctrPath: string): Promise<PathStat> {
  const c = await env.containers.find(query);
  const p = ctrPath.startsWith('/') ? ctrPath : `/${ctrPath}`;
  return withContainerRoot(env, c, (root) => {
    let loc;
    try {
      loc = root.locate(p, false);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') loc = undefined;
      else throw err;
    }
    try {
      const st = loc && loc.name === undefined ? root.rootStat() : loc?.stat;
      if (!loc || !st)
        throw new TsrunError('ERR_USAGE', `Could not find the file ${ctrPath} in container ${query}`, {
          detail: { notFound: true },
        });
      const linkTarget = st.kind === 'symlink' && loc.name ? native().readlinkat(loc.dir, loc.name) : '';
      // Go's FileMode keeps setuid/setgid/sticky in other bits; the permission bits are enough here.
      return Promise.resolve({
        name: loc.name ?? '/',
        size: st.size,
        mode: GO_MODE[st.kind] + (st.perm & 0o777),
        mtime: new Date(Number(st.mtimeNs / 1_000_000n)).toISOString(),
        linkTarget,
      });
    } finally {
      if (loc) closeFd(loc.dir);
    }
  });
}
