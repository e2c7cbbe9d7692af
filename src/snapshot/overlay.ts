/**
 * Container root filesystems as overlayfs snapshots (kernel: filesystems/overlayfs.rst).
 *
 * A snapshot is a per-container upper and work dir over the image's layers (read-only lowers),
 * described as data — `Mount[]`, as containerd's snapshotters return — and applied separately by
 * `mountAll`, so the plan can be shown (`--explain`, inspect) and tested without mounting.
 *
 * The kernel limits mount options to one page (4096 bytes). Absolute lowerdirs under a store
 * root cost ~90 bytes per layer, which breaks around 40 layers. Like Docker's overlay2 `l/`
 * links, we name the lowers relative to the store's `layers/` directory and mount with that as
 * the working directory: `<64 hex>/diff` is 69 bytes, so ~58 layers fit; beyond that the plan
 * is refused with a clear error rather than failing inside the kernel.
 *
 * Mounting is mount(2)/umount2(2) through the native helper, not mount(8): `run` is start-up
 * bound and each exec costs ~5 ms. Rootless mode on a kernel without unprivileged overlayfs
 * uses fuse-overlayfs instead (same layout, its own daemon; unmounted with umount2 as well).
 *
 * A root thrown away with its container (`run --rm`) is mounted `volatile` (kernel 5.10+, as
 * podman does for --rm): overlayfs then never syncs the upper filesystem, whose sync at unmount
 * otherwise waits for every dirty page of the host's filesystem (5-25 ms beside a busy disk).
 *
 * Contract: `planOverlay` is pure. `mountAll` mounts in order and, if one fails, unmounts what
 * it mounted before throwing: no half-made root is left behind. `unmountAll` is idempotent.
 */
import { childProcess } from '../util/lazy-builtins.js';
import { rmSync } from 'node:fs';
import { native } from '../native/index.js';
import { TsrunError } from '../errors.js';
import { digestHex } from '../oci/digest.js';

export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
  /** Directory the mount is performed from (relative lowerdir paths resolve against it). */
  cwd?: string;
}

export const PAGE_SIZE = 4096;
const FUSE_TYPE = 'fuse.fuse-overlayfs';
const VOLATILE = 'volatile';
const COPY_TYPE = 'copy';

/** Where a copy root records that it is complete (next to it, not inside it). */
const copyMarker = (target: string) => `${target}.populated`;

export interface OverlayPlan {
  /** The store's layers/ directory. */
  layersDir: string;
  /** Chain ids, bottom layer first (image order). */
  chainIds: readonly string[];
  upper: string;
  work: string;
  target: string;
  /**
   * overlay: the kernel's, as root; overlay-userxattr: the kernel's inside a rootless user
   * namespace (its xattrs in user.overlay.*); fuse-overlayfs: the FUSE implementation, for
   * kernels that cannot mount overlayfs in a user namespace; copy: no mount at all, the target
   * is a full copy of the layers (snapshot/copy.ts), the last resort.
   */
  driver?: OverlayDriver;
  /** The upper is thrown away with the container: mount it `volatile` (kernel overlayfs only). */
  volatile?: boolean;
}

export type OverlayDriver = 'overlay' | 'overlay-userxattr' | 'fuse-overlayfs' | 'copy';

export function planOverlay(plan: OverlayPlan): Mount {
  if (plan.chainIds.length === 0) {
    throw new TsrunError('ERR_STORE', 'preparing a root filesystem: the image has no layers');
  }
  // overlayfs lists lowerdirs top first.
  const lowers = [...plan.chainIds].reverse().map((c) => `${digestHex(c)}/diff`);
  if (plan.driver === 'copy') {
    // Bottom layer first, absolute: populate() applies them in order.
    return {
      type: COPY_TYPE,
      source: 'copy',
      target: plan.target,
      options: plan.chainIds.map((c) => `${plan.layersDir}/${digestHex(c)}/diff`),
    };
  }
  if (plan.driver === 'fuse-overlayfs') {
    // Options go on fuse-overlayfs's command line (no page limit); it is given absolute paths.
    const abs = lowers.map((l) => `${plan.layersDir}/${l}`);
    return {
      type: FUSE_TYPE,
      source: 'fuse-overlayfs',
      target: plan.target,
      options: [`lowerdir=${abs.join(':')}`, `upperdir=${plan.upper}`, `workdir=${plan.work}`],
    };
  }
  const options = [`lowerdir=${lowers.join(':')}`, `upperdir=${plan.upper}`, `workdir=${plan.work}`, 'index=off'];
  if (plan.driver === 'overlay-userxattr') options.push('userxattr');
  if (plan.volatile) options.push(VOLATILE);
  const length = options.join(',').length;
  if (length >= PAGE_SIZE) {
    throw new TsrunError(
      'ERR_STORE',
      `preparing a root filesystem: ${plan.chainIds.length} layers make ${length} bytes of overlay options, more than the kernel's ${PAGE_SIZE}`,
      {
        hint: 'flatten the image (fewer layers), e.g. with a multi-stage build',
      },
    );
  }
  return { type: 'overlay', source: 'overlay', target: plan.target, options, cwd: plan.layersDir };
}

/**
 * mount(2) from the main thread: relative lowerdirs need the cwd, and chdir is process-wide, so
 * the change is made and undone synchronously around the call (nothing else runs meanwhile; all
 * other paths tsrun uses are absolute).
 */
function mountOne(m: Mount): void {
  if (m.type === FUSE_TYPE) {
    // fuse-overlayfs mounts, then stays as the filesystem's daemon until the unmount.
    const r = childProcess().spawnSync('fuse-overlayfs', ['-o', m.options.join(','), m.target], {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (r.status !== 0)
      throw new TsrunError(
        'ERR_STORE',
        `mounting fuse-overlayfs at ${m.target}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`,
      );
    return;
  }
  const prev = process.cwd();
  try {
    if (m.cwd) process.chdir(m.cwd);
    mountKernel(m);
  } catch (err) {
    throw new TsrunError('ERR_STORE', `mounting ${m.type} at ${m.target}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (m.cwd) process.chdir(prev);
  }
}

/**
 * A volatile overlay mounted before (the same container started again after a reboot) left
 * work/work/incompat/volatile, which the kernel refuses until it is removed: the upper may have
 * lost writes, which for a root thrown away anyway does not matter. A kernel before 5.10 knows
 * no `volatile`: then the root is mounted without it.
 */
function mountKernel(m: Mount): void {
  try {
    native().mount(m.source, m.target, m.type, m.options.join(','));
    return;
  } catch (err) {
    const work = m.options.find((o) => o.startsWith('workdir='))?.slice('workdir='.length);
    if (!m.options.includes(VOLATILE) || (err as NodeJS.ErrnoException).code !== 'EINVAL' || !work) throw err;
    rmSync(`${work}/work/incompat`, { recursive: true, force: true });
  }
  try {
    native().mount(m.source, m.target, m.type, m.options.join(','));
  } catch {
    native().mount(m.source, m.target, m.type, m.options.filter((o) => o !== VOLATILE).join(','));
  }
}

export async function mountAll(mounts: readonly Mount[]): Promise<void> {
  const done: Mount[] = [];
  try {
    for (const m of mounts) {
      if (m.type === COPY_TYPE) await populateOnce(m);
      else mountOne(m);
      done.push(m);
    }
  } catch (err) {
    await unmountAll(done);
    throw err;
  }
}

/**
 * A copy root is made once and then is the container's filesystem (it persists across stop and
 * start, as an upper dir does): a half-made one (no marker) is emptied and made again.
 */
async function populateOnce(m: Mount): Promise<void> {
  const { existsSync, promises: fsp } = await import('node:fs');
  if (existsSync(copyMarker(m.target))) return;
  const { populate } = await import('./copy.js');
  for (const name of await fsp.readdir(m.target)) await fsp.rm(`${m.target}/${name}`, { recursive: true, force: true });
  try {
    await populate(m.options, m.target);
  } catch (err) {
    throw new TsrunError('ERR_STORE', `copying the image's layers into ${m.target}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  await fsp.writeFile(copyMarker(m.target), '');
}

/** Unmount in reverse order; a target that is not mounted is fine. A copy root stays as it is. */
export async function unmountAll(mounts: readonly Mount[]): Promise<void> {
  for (const m of [...mounts].reverse()) {
    if (m.type === COPY_TYPE) continue;
    try {
      native().umount(m.target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') continue; // not mounted, or gone
      throw new TsrunError('ERR_STORE', `unmounting ${m.target}: ${(err as Error).message}`, { cause: err });
    }
  }
}
