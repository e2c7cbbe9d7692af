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
 * mount(8) and umount(8) are run with node:child_process rather than execa: `run` is start-up
 * bound, and importing execa costs ~90 ms.
 *
 * Contract: `planOverlay` is pure. `mountAll` mounts in order and, if one fails, unmounts what
 * it mounted before throwing: no half-made root is left behind. `unmountAll` is idempotent.
 */
import { execFile } from 'node:child_process';
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

export interface OverlayPlan {
  /** The store's layers/ directory. */
  layersDir: string;
  /** Chain ids, bottom layer first (image order). */
  chainIds: readonly string[];
  upper: string;
  work: string;
  target: string;
  /** Overlay xattrs in the user namespace (rootless): mount with `userxattr`. */
  userxattr?: boolean;
}

export function planOverlay(plan: OverlayPlan): Mount {
  if (plan.chainIds.length === 0) {
    throw new TsrunError('ERR_STORE', 'preparing a root filesystem: the image has no layers');
  }
  // overlayfs lists lowerdirs top first.
  const lowers = [...plan.chainIds].reverse().map((c) => `${digestHex(c)}/diff`);
  const options = [`lowerdir=${lowers.join(':')}`, `upperdir=${plan.upper}`, `workdir=${plan.work}`, 'index=off'];
  if (plan.userxattr) options.push('userxattr');
  const length = options.join(',').length;
  if (length >= PAGE_SIZE) {
    throw new TsrunError('ERR_STORE', `preparing a root filesystem: ${plan.chainIds.length} layers make ${length} bytes of overlay options, more than the kernel's ${PAGE_SIZE}`, {
      hint: 'flatten the image (fewer layers), e.g. with a multi-stage build',
    });
  }
  return { type: 'overlay', source: 'overlay', target: plan.target, options, cwd: plan.layersDir };
}

function run(file: string, args: string[], cwd?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stderr: String(stderr) });
    });
  });
}

async function mountOne(m: Mount): Promise<void> {
  const r = await run('mount', ['-t', m.type, '-o', m.options.join(','), m.source, m.target], m.cwd);
  if (r.code !== 0) {
    throw new TsrunError('ERR_STORE', `mounting ${m.type} at ${m.target}: ${r.stderr.trim() || `mount exited ${r.code}`}`);
  }
}

export async function mountAll(mounts: readonly Mount[]): Promise<void> {
  const done: Mount[] = [];
  try {
    for (const m of mounts) {
      await mountOne(m);
      done.push(m);
    }
  } catch (err) {
    await unmountAll(done);
    throw err;
  }
}

/** Unmount in reverse order; a target that is not mounted is fine. */
export async function unmountAll(mounts: readonly Mount[]): Promise<void> {
  for (const m of [...mounts].reverse()) {
    const r = await run('umount', [m.target]);
    if (r.code !== 0 && !/not mounted|no mount point|not found/i.test(r.stderr)) {
      throw new TsrunError('ERR_STORE', `unmounting ${m.target}: ${r.stderr.trim()}`);
    }
  }
}
