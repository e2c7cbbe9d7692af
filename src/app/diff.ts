/**
 * `tsrun diff CONTAINER` (`container diff`): what the container changed in its image's
 * filesystem, as `docker diff` prints it — `A` added, `C` changed, `D` deleted, one path per
 * line, sorted — read from the overlay's upper directory: a whiteout is a deletion, an entry the
 * image has is a change (a directory counts as changed when something in it changed, as in
 * Docker), anything else is an addition; an opaque directory also deletes what the image had in it.
 * The runtime's mount points (/etc/hosts, /proc… when the image lacks them) are left out, as
 * Docker leaves out its init layer. A running container is frozen while its upper dir is read.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
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

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** The changes an upper dir records against its lower layers, sorted by path. */
export function changesOf(v: UpperView): Change[] {
  const out: Change[] = [];
  const walk = (rel: string) => {
    const dir = rel === '' ? v.upper : path.join(v.upper, rel);
    const names = readdirSync(dir);
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (v.excluded.has(childRel) || name === '.wh..wh..opq') continue;
      const st = lstatSync(path.join(dir, name));
      if (isWhiteout(st)) {
        out.push({ kind: 'D', path: `/${childRel}` });
        continue;
      }
      if (name.startsWith('.wh.') && st.isFile()) {
        // fuse-overlayfs may write OCI-style whiteouts.
        out.push({ kind: 'D', path: `/${rel === '' ? '' : `${rel}/`}${name.slice(4)}` });
        continue;
      }
      const existed = inLower(v, childRel);
      out.push({ kind: existed ? 'C' : 'A', path: `/${childRel}` });
      if (!st.isDirectory()) continue;
      const p = path.join(dir, name);
      const isOpaque = ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque']
        .some((x) => native().lgetxattr(p, x)?.toString() === 'y');
      if (isOpaque && existed) {
        const mine = new Set(readdirSync(p));
        for (const n of lowerNames(v, childRel)) if (!mine.has(n)) out.push({ kind: 'D', path: `/${childRel}/${n}` });
      }
      walk(childRel);
    }
  };
  walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
