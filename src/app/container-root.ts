/**
 * A container's root filesystem as the container itself sees it, as a `SafeRoot`
 * (snapshot/safe-root.ts), for commands that read or write inside it (cp today).
 *
 * - Running (or created: runc's init has already entered its root): the root is opened as
 *   /proc/<init pid>/root. A walk from that fd follows the container's own mount table, so its
 *   bind mounts, and the /etc/hosts, /etc/hostname and /etc/resolv.conf tsrun bind-mounts, are
 *   what a copy sees and changes — as Docker's cp, which works in the container's mounts. The pid
 *   is checked again after the open (the container still runs with that init), so a pid that
 *   was reused by another process in between is never taken for the container.
 * - Stopped: under the container's lock, its overlay is mounted (as `start` would) and
 *   native-helpers' tsrun-rootns builds, in a private mount namespace, the root with the bind
 *   mounts of its config.json (read-only ones read-only, and with --read-only the root too),
 *   then stands in for the init: its /proc/<pid>/root is opened the same way. When `fn` is done
 *   the helper is told to exit (its namespace and mounts go with it) and the overlay is unmounted.
 *
 * Why not path strings under bundle/rootfs: that directory is only the overlay, without the
 * container's mounts (issue 23: copies into a bind mount vanished under it, /etc/hosts read as
 * an empty file), and any path string is re-resolved by each syscall (issue 13).
 */
import { childProcess } from '../util/lazy-builtins.js';
import { promises as fs } from 'node:fs';
import { TsrunError } from '../errors.js';
import { SafeRoot } from '../snapshot/safe-root.js';
import { unmountAll } from '../snapshot/overlay.js';
import { isActive, type Container } from '../runtime/records.js';
import { nativeBuild } from '../util/project.js';
import { ensureMounted, isMounted, rootfsMount, type Env } from './containers.js';

export async function withContainerRoot<T>(env: Env, c: Container, fn: (root: SafeRoot) => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const live = liveRoot(env, c);
    if (live) {
      try {
        return await fn(live);
      } finally {
        live.close();
      }
    }
    const now = env.containers.observe(c.record);
    if (!isActive(now.observed)) break;
    c = now; // it started meanwhile: try its init again
  }
  return env.containers.lock(c.record.id, async () => {
    const now = env.containers.observe(c.record);
    const live = liveRoot(env, now);
    if (live) {
      try {
        return await fn(live);
      } finally {
        live.close();
      }
    }
    const mounted = isMounted(c.paths.rootfs);
    if (!mounted) await env.store.withSharedLock(() => ensureMounted(env, c));
    try {
      return await withStandIn(c, fn);
    } finally {
      if (!mounted) await unmountAll([rootfsMount(env, c)]);
    }
  });
}

/** /proc/<init>/root of a container whose monitor is alive, if its init is still the one. */
function liveRoot(env: Env, c: Container): SafeRoot | undefined {
  const pid = c.observed.pid;
  if (!isActive(c.observed) || !(pid > 0)) return undefined;
  let root: SafeRoot;
  try {
    root = SafeRoot.open(`/proc/${pid}/root`, c.record.name);
  } catch {
    return undefined;
  }
  const again = env.containers.observe(c.record).observed;
  if (isActive(again) && again.pid === pid) return root;
  root.close();
  return undefined;
}

interface ConfigMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** The bind mounts a stand-in root gets: the container's, without /proc, /sys and /dev ones. */
async function bindArgs(c: Container): Promise<string[]> {
  let mounts: ConfigMount[] = [];
  try {
    mounts = (JSON.parse(await fs.readFile(c.paths.config, 'utf8')) as { mounts?: ConfigMount[] }).mounts ?? [];
  } catch {
    /* never configured: no mounts */
  }
  const args: string[] = [];
  for (const m of mounts) {
    if (m.type !== 'bind' || !m.source || /^\/(proc|sys|dev)(\/|$)/.test(m.destination)) continue;
    args.push(m.source, m.destination, m.options?.includes('ro') ? 'ro' : 'rw');
  }
  return args;
}

async function withStandIn<T>(c: Container, fn: (root: SafeRoot) => Promise<T>): Promise<T> {
  const argv = [...(c.record.host.readonly ? ['--ro'] : []), c.paths.rootfs, ...(await bindArgs(c))];
  const helper = childProcess().spawn(nativeBuild('tsrun-rootns'), argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number>((resolve) => helper.on('close', (code) => resolve(code ?? 1)));
  let stderr = '';
  helper.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  helper.on('error', () => {
    /* reported through `exited` */
  });
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    helper.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  try {
    if (!ready || !helper.pid) {
      throw new TsrunError(
        'ERR_STORE',
        `mounting container ${c.record.name}'s volumes: ${stderr.trim() || 'tsrun-rootns failed'}`,
        {
          hint: 'run `npm run build` in the tsrun checkout if native-helpers/build/Release/tsrun-rootns is missing',
        },
      );
    }
    const root = SafeRoot.open(`/proc/${helper.pid}/root`, c.record.name);
    try {
      return await fn(root);
    } finally {
      root.close();
    }
  } finally {
    helper.stdin.end();
    await exited;
  }
}
