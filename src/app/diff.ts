/**
 * `tsrun diff CONTAINER` (`container diff`): what the container changed in its image's
 * filesystem, as `docker diff` prints it — `A` added, `C` changed, `D` deleted, one path per
 * line, sorted — read from the overlay's upper directory: a whiteout is a deletion, an entry the
 * image has is a change (a directory counts as changed when something in it changed, as in
 * Docker), anything else is an addition; an opaque directory also deletes what the image had in it.
 * The runtime's mount points (/etc/hosts, /proc… when the image lacks them) are left out, as
 * Docker leaves out its init layer. A running container is frozen while its upper dir is read
 * (where the freezer exists: not rootless), and the upper dir is walked from directory fds, each
 * entry opened O_PATH|O_NOFOLLOW relative to its directory (issue 13): a directory the container
 * swaps for a symlink meanwhile is never entered, so no host name can appear here.
 */
import { native } from '../native/index.js';
import { closeFd, errno, O_PATH, openTrusted } from '../snapshot/safe-root.js';
import type { AppContext } from './context.js';
import { openEnv } from './containers.js';
import { inLower, lowerNames, upperView, type UpperView } from './container-fs.js';
import { withFrozen } from './pause.js';

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

export async function containerDiff(ctx: AppContext, query: string): Promise<Change[]> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  const view = upperView(env, c, `diffing container ${c.record.name}`);
  return withFrozen(env, c, true, async () => changesOf(view));
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;
const OPAQUE = ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque'];

/** The changes an upper dir records against its lower layers, sorted by path. */
export function changesOf(v: UpperView): Change[] {
  const out: Change[] = [];
  const n = native();
  const walk = (dirFd: number, rel: string) => {
    for (const name of n.readdir(dirFd)) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (v.excluded.has(childRel) || name === '.wh..wh..opq') continue;
      let fd: number;
      try {
        fd = n.openat(dirFd, name, O_PATH, 0);
      } catch (err) {
        if (errno(err) === 'ENOENT') continue; // removed meanwhile (a live container)
        throw err;
      }
      try {
        const st = n.statx(fd, '', false);
        const type = st.mode & S_IFMT;
        if (type === S_IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0) {
          out.push({ kind: 'D', path: `/${childRel}` });
          continue;
        }
        if (name.startsWith('.wh.') && type === S_IFREG) {
          // fuse-overlayfs may write OCI-style whiteouts.
          out.push({ kind: 'D', path: `/${rel === '' ? '' : `${rel}/`}${name.slice(4)}` });
          continue;
        }
        const existed = inLower(v, childRel);
        out.push({ kind: existed ? 'C' : 'A', path: `/${childRel}` });
        if (type !== S_IFDIR) continue;
        const isOpaque = OPAQUE.some((x) => n.fgetxattr(fd, x)?.toString() === 'y');
        if (isOpaque && existed) {
          const mine = new Set(n.readdir(fd));
          for (const l of lowerNames(v, childRel)) if (!mine.has(l)) out.push({ kind: 'D', path: `/${childRel}/${l}` });
        }
        walk(fd, childRel);
      } finally {
        closeFd(fd);
      }
    }
  };
  const root = openTrusted(v.upper);
  try {
    walk(root, '');
  } finally {
    closeFd(root);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
