/**
 * Rootless mode's user namespace (user_namespaces(7); podman's "pause process" design).
 *
 * An unprivileged user gets one long-lived namespace pair per machine: a user namespace mapping
 * uid 0 to the user and uids 1..N to the user's subordinate range from /etc/subuid (gids from
 * /etc/subgid), so image files owned by uid 1000 stay uid 1000 inside and land on disk as
 * subordinate ids, never as the real root; and a mount namespace where the store's overlay
 * mounts live. A tiny process (`sleep infinity`, started through util-linux `unshare`, which
 * writes the maps with the setuid `newuidmap`/`newgidmap` from Debian's uidmap) keeps both alive;
 * every tsrun command of that user re-runs itself inside them with `nsenter`, as podman does, so
 * detached containers, their mounts and later `exec`/`stop`/`rm` all see the same world.
 *
 * Contract: `ensureNamespace` is safe to call concurrently (a file lock serialises creation) and
 * checks that a recorded process really is our pause process before reusing it; a missing piece
 * (no range, no uidmap, user namespaces disabled) is an ERR_ROOTLESS naming the command that
 * fixes it. The namespace dies with the pause process (kill it, or reboot).
 */
import { childProcess } from '../util/lazy-builtins.js';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { TsrunEvent } from '../events.js';
import { withFileLock } from '../native/index.js';
import { runProgram, which } from '../util/exec.js';
import { sleep } from '../util/concurrency.js';

export interface IdRange {
  start: number;
  count: number;
}

/** The first subordinate range of `user` (name or uid) in an /etc/subuid-format text. */
export function subordinateRange(text: string, name: string, uid: number): IdRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (
      (who === name || who === String(uid)) &&
      /^\d+$/.test(start ?? '') &&
      /^\d+$/.test(count ?? '') &&
      Number(count) > 0
    ) {
      return { start: Number(start), count: Number(count) };
    }
  }
  return undefined;
}

/**
 * A 65536-id range for `usermod --add-subuids/--add-subgids` that overlaps no range already in
 * /etc/subuid or /etc/subgid (`texts`): the first free one from 100000, as useradd picks.
 */
export function freeRange(texts: readonly string[], count = 65536): IdRange {
  const taken: IdRange[] = [];
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const [, start, n] = line.trim().split(':');
      if (/^\d+$/.test(start ?? '') && /^\d+$/.test(n ?? '')) taken.push({ start: Number(start), count: Number(n) });
    }
  }
  let start = 100000;
  for (let moved = true; moved;) {
    moved = false;
    for (const t of taken) {
      if (start < t.start + t.count && t.start < start + count) {
        start = t.start + t.count;
        moved = true;
      }
    }
  }
  return { start, count };
}

/** The usermod command that gives `name` subordinate uids and gids no one else has. */
export function usermodFix(name: string): string {
  const r = freeRange([readOr('/etc/subuid'), readOr('/etc/subgid')]);
  const range = `${r.start}-${r.start + r.count - 1}`;
  return `as root: usermod --add-subuids ${range} --add-subgids ${range} ${name}`;
}

export interface Identity {
  uid: number;
  gid: number;
  name: string;
}

/** The volatile directory for a non-root user's runtime state (as storePaths). */
export function userRunBase(uid: number, env: NodeJS.ProcessEnv): string {
  return env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'tsrun') : `/tmp/tsrun-${uid}`;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Is `pid` our pause process (sleep infinity, owned by uid, with a mapped user namespace)? */
function isPause(pid: number, uid: number): boolean {
  const cmdline = readOr(`/proc/${pid}/cmdline`);
  if (cmdline !== 'sleep\0infinity\0') return false;
  const uids = /^Uid:\s+(\d+)/m.exec(readOr(`/proc/${pid}/status`))?.[1];
  if (Number(uids) !== uid) return false;
  return readOr(`/proc/${pid}/uid_map`).trim() !== '';
}

const rootlessError = (msg: string, hint: string) => new TsrunError('ERR_ROOTLESS', msg, { hint });

/**
 * What creating the namespace needs; throws ERR_ROOTLESS for the first thing missing. Without
 * subordinate ranges (`single`), the namespace maps the user's own id only, as podman falls back
 * to: images whose files all belong to root work, others fail at unpacking, saying why.
 */
export async function namespaceRequirements(
  id: Identity,
  env: NodeJS.ProcessEnv,
): Promise<{ uids?: IdRange; gids?: IdRange; single?: string; unshare: string; nsenter: string }> {
  const found = {
    uids: subordinateRange(readOr('/etc/subuid'), id.name, id.uid),
    gids: subordinateRange(readOr('/etc/subgid'), id.name, id.uid),
  };
  const ranges: { uids?: IdRange; gids?: IdRange } = found.uids && found.gids ? found : {};
  const single = ranges.uids
    ? undefined
    : `user ${id.name} has no subordinate ${found.uids ? 'gid' : 'uid'} range in /etc/sub${found.uids ? 'gid' : 'uid'}`;
  if (!single && !existsSync('/usr/bin/newuidmap') && !(await which('newuidmap', env))) {
    throw rootlessError('rootless mode: newuidmap and newgidmap are missing', 'as root: apt-get install uidmap');
  }
  const max = readOr('/proc/sys/user/max_user_namespaces').trim();
  if (max === '0')
    throw rootlessError(
      'rootless mode: user namespaces are disabled (user.max_user_namespaces = 0)',
      'as root: sysctl -w user.max_user_namespaces=15000',
    );
  if (readOr('/proc/sys/kernel/unprivileged_userns_clone').trim() === '0') {
    throw rootlessError(
      'rootless mode: unprivileged user namespaces are disabled',
      'as root: sysctl -w kernel.unprivileged_userns_clone=1',
    );
  }
  const unshare = await which('unshare', env);
  const nsenter = await which('nsenter', env);
  if (!unshare || !nsenter)
    throw rootlessError('rootless mode: unshare or nsenter is missing', 'as root: apt-get install util-linux');
  return { ...ranges, single, unshare, nsenter };
}

/** The user's running pause process, if there is one. */
export function runningPause(uid: number, env: NodeJS.ProcessEnv): number | undefined {
  const pid = Number(readOr(path.join(userRunBase(uid, env), 'pause.pid')).trim());
  return pid > 0 && isPause(pid, uid) ? pid : undefined;
}

/**
 * The user's runtime directory must be the user's own, closed to others: /tmp/tsrun-UID is a
 * name anyone can take first (podman refuses the same trap), and whoever owns it could watch
 * or replace the pause pid, sockets and runc state. A directory of ours with a looser mode is
 * closed; anything else is refused.
 */
async function checkRunBase(base: string, uid: number): Promise<void> {
  const st = await fs.lstat(base);
  if (st.isDirectory() && st.uid === uid) {
    if ((st.mode & 0o077) !== 0) await fs.chmod(base, 0o700);
    return;
  }
  const what = st.isSymbolicLink()
    ? 'is a symbolic link'
    : !st.isDirectory()
      ? 'is not a directory'
      : `belongs to uid ${st.uid} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  throw rootlessError(
    `rootless mode: ${base} ${what}, not to you (uid ${uid}) with mode 0700: someone else may have made it to watch or change your containers`,
    base.startsWith('/tmp/')
      ? `as root: rm -rf ${base} (then tsrun makes its own); or set XDG_RUNTIME_DIR to a directory of yours with mode 0700 (systemd's /run/user/${uid}: as root, loginctl enable-linger USER)`
      : `remove ${base} (as its owner or root), or set XDG_RUNTIME_DIR to a directory of yours with mode 0700`,
  );
}

/** The pid of the user's pause process, started if needed. */
export async function ensureNamespace(id: Identity, env: NodeJS.ProcessEnv): Promise<number> {
  const base = userRunBase(id.uid, env);
  await fs.mkdir(base, { recursive: true, mode: 0o700 });
  await checkRunBase(base, id.uid);
  const pidFile = path.join(base, 'pause.pid');
  const recorded = runningPause(id.uid, env);
  if (recorded) return recorded;
  const req = await namespaceRequirements(id, env);
  return withFileLock(path.join(base, 'pause.lock'), 'ex', async () => {
    const again = runningPause(id.uid, env);
    if (again) return again;
    if (req.single) {
      // podman says the same (pkg/rootless) and goes on.
      process.stderr.write(
        `WARN: ${req.single}: using a single-id user namespace (your uid as root only); images with files of other owners will fail\n` +
          `hint: ${usermodFix(id.name)}, then end this namespace: kill $(cat ${pidFile})\n`,
      );
    }
    const maps =
      req.uids && req.gids
        ? [`--map-users=${req.uids.start},1,${req.uids.count}`, `--map-groups=${req.gids.start},1,${req.gids.count}`]
        : [];
    const child = childProcess().spawn(
      req.unshare,
      ['--map-root-user', ...maps, '--mount', '--propagation', 'private', '--', 'sleep', 'infinity'],
      { detached: true, stdio: ['ignore', 'ignore', 'pipe'], cwd: '/' },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let exited: number | null | undefined;
    child.on('exit', (code) => {
      exited = code;
    });
    const pid = child.pid as number;
    for (let i = 0; i < 200 && !isPause(pid, id.uid); i++) {
      if (exited !== undefined) {
        throw rootlessError(
          `rootless mode: creating the user namespace failed: ${stderr.trim() || `unshare exited with ${exited}`}`,
          'check /etc/subuid and /etc/subgid, and that newuidmap/newgidmap are setuid root (apt-get install --reinstall uidmap)',
        );
      }
      await sleep(10);
    }
    if (!isPause(pid, id.uid)) {
      child.kill('SIGKILL');
      throw rootlessError('rootless mode: the user namespace did not come up within 2 s', 'see `tsrun info`');
    }
    child.stderr?.destroy();
    child.unref();
    const probe = await probeStorage(req.nsenter, pid, base, env);
    await fs.writeFile(path.join(base, 'storage.json'), JSON.stringify(probe));
    if (!probe.ok) {
      process.kill(pid, 'SIGKILL');
      throw rootlessError(
        `rootless mode: the storage driver TSRUN_STORAGE_DRIVER asks for cannot be used (${probe.detail})`,
        'unset TSRUN_STORAGE_DRIVER to let tsrun choose (overlayfs, fuse-overlayfs, then copies)',
      );
    }
    await fs.writeFile(pidFile, `${pid}\n`);
    return pid;
  });
}

export type RootlessDriver = 'overlay-userxattr' | 'fuse-overlayfs' | 'copy';

export interface StorageProbe {
  ok: boolean;
  /** What makes container roots: the kernel's overlayfs (with userxattr), fuse-overlayfs, or copies. */
  driver?: RootlessDriver;
  detail: string;
  /** Why this driver, for a learner (the `rootfs-mount` event): what was tried and what failed. */
  reason?: string;
  at: string;
}

/**
 * Which overlay works in the namespace, tried on scratch lower/upper/work directories: the
 * kernel's overlayfs with `userxattr` (Linux ≥ 5.11), else fuse-overlayfs (needs the program
 * and a usable /dev/fuse), else copies (always possible, slow). TSRUN_STORAGE_DRIVER=overlay,
 * fuse-overlayfs or copy chooses (for tests and benchmarks). Tried once per namespace.
 */
async function probeStorage(nsenter: string, pid: number, base: string, env: NodeJS.ProcessEnv): Promise<StorageProbe> {
  const forced = env.TSRUN_STORAGE_DRIVER;
  const at = new Date().toISOString();
  const failures: string[] = [];
  const tries: [StorageProbe['driver'], string][] = [
    [
      'overlay-userxattr',
      'mount -t overlay overlay -o "lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work,userxattr" "$1/merged"',
    ],
    ['fuse-overlayfs', 'fuse-overlayfs -o "lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work" "$1/merged"'],
  ];
  for (const [driver, mount] of tries) {
    if (forced && !(driver ?? '').startsWith(forced)) continue;
    const dir = path.join(base, 'overlay-probe');
    await fs.rm(dir, { recursive: true, force: true });
    for (const d of ['lower', 'upper', 'work', 'merged']) await fs.mkdir(path.join(dir, d), { recursive: true });
    // Removed inside too: overlayfs leaves work/work with mode 0, which only a capable uid 0 may enter.
    const script = `${mount} && umount "$1/merged"; s=$?; rm -rf "$1"; exit $s`;
    const r = await runProgram(nsenter, nsenterArgv(nsenter, pid, ['sh', '-c', script, 'probe', dir]).slice(1), {
      env,
    });
    if (r.code === 0) {
      const why = forced
        ? `TSRUN_STORAGE_DRIVER=${forced} asks for it`
        : driver === 'fuse-overlayfs'
          ? `the kernel refuses overlayfs in the user namespace (${failures.join('; ')}), fuse-overlayfs found at ${(await which('fuse-overlayfs', env)) ?? 'fuse-overlayfs'}`
          : 'the kernel mounts overlayfs in a user namespace with userxattr (Linux ≥ 5.11), its whiteouts and opaque dirs in user.overlay.* xattrs';
      return {
        ok: true,
        driver,
        detail: driver === 'fuse-overlayfs' ? 'fuse-overlayfs' : 'overlayfs with userxattr',
        reason: `rootless: ${why}`,
        at,
      };
    }
    failures.push(`${driver}: ${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}`);
  }
  if (!forced || forced === 'copy') {
    const why = failures.length > 0 ? ` (${failures.join('; ')})` : '';
    return {
      ok: true,
      driver: 'copy',
      detail: `copying every image's layers: slow, and a full copy per container${why}`,
      reason: forced
        ? `rootless: TSRUN_STORAGE_DRIVER=copy asks for it`
        : `rootless: neither the kernel's overlayfs nor fuse-overlayfs mounts in the user namespace${why}: the layers are copied`,
      at,
    };
  }
  return { ok: false, detail: failures.join('; ') || `no storage driver named "${forced}"`, at };
}

/** What the namespace's storage probe found (undefined before the first command). */
export function storageProbe(uid: number, env: NodeJS.ProcessEnv): StorageProbe | undefined {
  try {
    return JSON.parse(readFileSync(path.join(userRunBase(uid, env), 'storage.json'), 'utf8')) as StorageProbe;
  } catch {
    return undefined;
  }
}

/** Why rootless roots are made with what they are (the probe's reason; before a probe, its default). */
export function rootlessDriverReason(uid: number, env: NodeJS.ProcessEnv): string {
  const p = storageProbe(uid, env);
  return p?.reason ?? `rootless: ${p?.detail ?? 'overlayfs with userxattr'} (the namespace's storage probe)`;
}

/** What rootless roots are made with (the kernel's overlay, unless the probe chose otherwise). */
export function rootlessDriver(uid: number, env: NodeJS.ProcessEnv): RootlessDriver {
  return storageProbe(uid, env)?.driver ?? 'overlay-userxattr';
}

/** Inside the namespace: does it map one id only (no subordinate ids, podman's single mapping)? */
export function singleIdNamespace(): boolean {
  const lines = readOr('/proc/self/uid_map').trim().split('\n');
  return lines.length === 1 && /\s1$/.test(lines[0] ?? '');
}

/** argv that runs `argv` inside the pause process's namespaces, as uid 0 there. */
export function nsenterArgv(nsenter: string, pid: number, argv: readonly string[]): string[] {
  // A single-id namespace denies setgroups(2), which nsenter calls unless told to keep the
  // credentials; our own uid is root there either way.
  const keep = readOr(`/proc/${pid}/setgroups`).trim() === 'deny' ? ['--preserve-credentials'] : [];
  return [nsenter, '--user', '--mount', ...keep, '--target', String(pid), '--', ...argv];
}

/**
 * Inside the namespace: its uid and gid maps and the /etc/subuid, /etc/subgid entries of the
 * user `uid` that they were made from (the `userns` event).
 */
export function userNamespaceEvent(uid: number): Extract<TsrunEvent, { type: 'userns' }> {
  const map = (file: string) =>
    readOr(file)
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [inside = 0, outside = 0, count = 0] = l.trim().split(/\s+/).map(Number);
        return { inside, outside, count };
      });
  const user =
    readOr('/etc/passwd')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[2] === String(uid))?.[0] ?? String(uid);
  const entry = (file: string) =>
    readOr(file)
      .split('\n')
      .find((l) => l.startsWith(`${user}:`) || l.startsWith(`${uid}:`));
  const subuid = entry('/etc/subuid');
  const subgid = entry('/etc/subgid');
  return {
    type: 'userns',
    user,
    uid,
    uidMap: map('/proc/self/uid_map'),
    gidMap: map('/proc/self/gid_map'),
    ...(subuid ? { subuid } : {}),
    ...(subgid ? { subgid } : {}),
  };
}
