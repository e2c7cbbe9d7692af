/**
 * `tsrun cp`: copy between a container's filesystem and the host, in either direction, or as a
 * tar stream with "-" (docker cp). Exactly one side is `CONTAINER:PATH`; a path starting with "/"
 * or "." is always local, as in docker/cli's splitCpArg, and a relative host path is relative to
 * the caller's working directory.
 *
 * The container's side is its root as the container sees it (app/container-root.ts: its init's
 * /proc/<pid>/root while it runs, a stand-in with its bind mounts when it is stopped), walked
 * only through file descriptors (snapshot/safe-root.ts), so a running container that races the
 * copy cannot make it read or write the host (issue 13), and copies go into and out of its bind
 * mounts and /etc/hosts as Docker's do (issue 23). The path rules are snapshot/rootfs-copy.ts's,
 * the tar streams snapshot/rootfs-tar.ts's.
 */
import type { Writable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { copyIn, copyOut, type CopyResult } from '../snapshot/rootfs-copy.js';
import { tarIn, tarOut } from '../snapshot/rootfs-tar.js';
import type { AppContext } from './context.js';
import { openEnv } from './containers.js';
import { withContainerRoot } from './container-root.js';

export interface CpOptions {
  /** -a: keep uid/gid. */
  archive?: boolean;
  /** -L: follow a symlink given as the source. */
  followLink?: boolean;
  /** Where "-" reads and writes (the CLI passes its stdin and stdout). */
  stdin?: NodeJS.ReadableStream;
  stdout?: Writable;
}

function split(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

export async function copy(ctx: AppContext, src: string, dest: string, o: CpOptions = {}): Promise<CopyResult> {
  const s = split(src);
  const d = split(dest);
  if (s.container && d.container)
    throw new TsrunError('ERR_USAGE', 'copying between containers is not supported', {
      hint: 'copy to the host first',
    });
  if (!s.container && !d.container)
    throw new TsrunError('ERR_USAGE', 'must specify at least one container source', {
      hint: 'tsrun cp CONTAINER:PATH HOSTPATH, or tsrun cp HOSTPATH CONTAINER:PATH',
    });
  const env = await openEnv(ctx);
  const c = await env.containers.find((s.container ?? d.container) as string);
  const ctrPath = (p: string) => (p.startsWith('/') ? p : `/${p}`);
  const opts = { preserveOwnership: o.archive, followLink: o.followLink, readonlyRoot: c.record.host.readonly };
  return withContainerRoot(env, c, (root) => {
    if (s.container) {
      if (d.path === '-') return tarOut(root, ctrPath(s.path), o.stdout ?? process.stdout, opts);
      return copyOut(root, ctrPath(s.path), d.path, opts);
    }
    if (s.path === '-') return tarIn(root, o.stdin ?? process.stdin, ctrPath(d.path), d.container as string, opts);
    return copyIn(root, s.path, ctrPath(d.path), opts);
  });
}
