/**
 * What rootless mode needs from the host, checked one by one for `tsrun info`: each check says
 * what it found and, when something is missing, the command that fixes it. Read-only: nothing
 * here changes the host or starts a namespace.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { deviceAccess } from '../util/device.js';
import { which } from '../util/exec.js';
import { subordinateRange, usermodFix, type Identity } from './namespace.js';

export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** The command that fixes it (when not ok). */
  fix?: string;
  /** Only some features need it (true: rootless mode as a whole does). */
  required: boolean;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function setuidRoot(file: string | undefined): Promise<boolean> {
  if (!file) return false;
  const st = await fs.stat(file).catch(() => undefined);
  return Boolean(st && st.uid === 0 && (st.mode & 0o4000) !== 0); // S_ISUID
}

export async function rootlessChecks(id: Identity, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const out: Check[] = [];
  for (const [kind, file] of [
    ['uid', '/etc/subuid'],
    ['gid', '/etc/subgid'],
  ] as const) {
    const r = subordinateRange(read(file) ?? '', id.name, id.uid);
    out.push({
      name: `subordinate ${kind}s`,
      required: true,
      ok: r !== undefined && r.count >= 65536,
      detail: r
        ? `${r.start}-${r.start + r.count - 1} (${r.count}) in ${file}`
        : `none for ${id.name} in ${file} (commands fall back to mapping your own id only: images with files of other owners fail)`,
      fix:
        r && r.count < 65536
          ? `as root: usermod --add-sub${kind}s ${r.start}-${r.start + 65535} ${id.name} (images use ids up to 65535)`
          : usermodFix(id.name),
    });
  }
  for (const tool of ['newuidmap', 'newgidmap']) {
    const p = await which(tool, env);
    const ok = await setuidRoot(p);
    out.push({
      name: tool,
      required: true,
      ok,
      detail: p ? (ok ? `${p} (setuid root)` : `${p} is not setuid root`) : 'not installed',
      fix: p ? `as root: apt-get install --reinstall uidmap` : 'as root: apt-get install uidmap',
    });
  }
  const max = (read('/proc/sys/user/max_user_namespaces') ?? '').trim();
  const clone = (read('/proc/sys/kernel/unprivileged_userns_clone') ?? '1').trim();
  out.push({
    name: 'user namespaces',
    required: true,
    ok: max !== '0' && clone !== '0',
    detail: `user.max_user_namespaces = ${max || '?'}${clone === '0' ? ', kernel.unprivileged_userns_clone = 0' : ''}`,
    fix:
      clone === '0'
        ? 'as root: sysctl -w kernel.unprivileged_userns_clone=1'
        : 'as root: sysctl -w user.max_user_namespaces=15000',
  });
  const [unshare, nsenter] = [await which('unshare', env), await which('nsenter', env)];
  out.push({
    name: 'unshare, nsenter',
    required: true,
    ok: Boolean(unshare && nsenter),
    detail: unshare && nsenter ? `${unshare}, ${nsenter}` : 'missing',
    fix: 'as root: apt-get install util-linux',
  });
  const slirp = await which('slirp4netns', env);
  out.push({
    name: 'slirp4netns',
    required: false,
    ok: Boolean(slirp),
    detail: slirp ?? 'not installed (needed for -p)',
    fix: 'as root: apt-get install slirp4netns',
  });
  const tun = await deviceAccess('/dev/net/tun');
  out.push({
    name: '/dev/net/tun',
    required: false,
    ok: tun.usable,
    detail: tun.usable
      ? `usable (mode ${tun.mode})`
      : `not usable by you (mode ${tun.mode}; slirp4netns needs it for -p)`,
    fix: 'as root: chmod 0666 /dev/net/tun (the mode distributions ship)',
  });
  const fuse = await which('fuse-overlayfs', env);
  const devFuse = (await deviceAccess('/dev/fuse')).usable;
  out.push({
    name: 'fuse-overlayfs',
    required: false,
    ok: Boolean(fuse) && devFuse,
    detail: !fuse
      ? 'not installed (only needed where the kernel cannot mount overlayfs in a user namespace)'
      : devFuse
        ? `${fuse}, /dev/fuse usable`
        : `${fuse}, but /dev/fuse is not usable by you`,
    fix: !fuse
      ? 'as root: apt-get install fuse-overlayfs'
      : 'as root: chmod 0666 /dev/fuse (the mode distributions ship)',
  });
  const cgroup2 = (read('/proc/self/mountinfo') ?? '')
    .split('\n')
    .some((l) => / \/sys\/fs\/cgroup .* - cgroup2 /.test(l));
  out.push({
    name: 'resource limits',
    required: false,
    ok: false,
    detail: cgroup2
      ? 'cgroup v2, but tsrun does not use a delegated hierarchy yet: --memory/--cpus/--pids-limit are refused'
      : 'cgroup v1 or hybrid host: --memory/--cpus/--pids-limit are refused',
    fix: 'run as root for limits',
  });
  return out;
}
