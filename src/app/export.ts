/**
 * `tsrun export CONTAINER`: the container's whole filesystem (its image's layers with its own
 * changes on top, as the merged overlay shows it) as one tar, as `docker export` writes it: no
 * image metadata, no volumes bind-mounted into it. The tar is made by layers/diff.ts's writer
 * (entries sorted, owners and modes and xattrs kept, hardlinks kept, symlinks as links, nothing
 * followed). A running container is frozen while it is read (Docker does not, but its tar is
 * then a moving target) where the freezer exists (not rootless), a stopped one has its root
 * mounted for the duration. Either way the tree is read from directory fds, each entry opened
 * O_NOFOLLOW relative to its parent's (layers/diff.ts), so a container swapping a directory for
 * a symlink meanwhile cannot get a host file into the tar.
 */
import type { Writable } from 'node:stream';
import { diffTar } from '../layers/diff.js';
import { StreamOut, toFile } from '../util/stream-out.js';
import type { AppContext } from './context.js';
import { openEnv } from './containers.js';
import { withRootfs } from './container-fs.js';
import { withFrozen } from './pause.js';
import { unpackAs } from './unpack-as.js';

export async function exportContainer(ctx: AppContext, query: string, out: Writable): Promise<void> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  const s = new StreamOut(out, `exporting container ${c.record.name}`);
  await withFrozen(env, c, true, () =>
    withRootfs(env, c, async (rootfs) => {
      // diffTar walks `rootfs` from its fd, never by path (issue 13): what keeps a rootless
      // container, which is read live, from getting host files into the tar.
      await s.writeAll(diffTar(rootfs, { overlayXattrPrefix: unpackAs(ctx).overlayXattrPrefix }));
    }),
  );
}

export function exportToFile(ctx: AppContext, query: string, file: string): Promise<void> {
  return toFile(file, `exporting container ${query}`, (out) => exportContainer(ctx, query, out));
}
