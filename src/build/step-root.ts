/**
 * The root filesystem a build step works in: an overlayfs mount of the parent's layers with a
 * fresh upper directory, so that afterwards the upper directory holds exactly the step's changes
 * (layer.ts turns it into a layer). A stage with no layers yet (FROM scratch) has nothing to
 * mount: the upper directory itself is the root. With the copy driver (rootless last resort)
 * the root is a copy of the layers, and the changes are found by comparing it with a second
 * copy when the step finishes.
 *
 * Contract: `prepareStepRoot` leaves nothing behind if it fails; `releaseStepRoot` is
 * idempotent and removes the mount and every directory it made. Everything lives under the
 * store's tmp/, so a killed build leaves only what the next command's temp cleanup removes
 * (a mount left by a SIGKILLed build is swept by `tsrun system prune`... and by reboot).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mountAll, planOverlay, unmountAll, type Mount, type OverlayDriver } from '../snapshot/overlay.js';
import type { Store } from '../store/store.js';

export interface StepRoot {
  /** Private directory holding everything below. */
  dir: string;
  /** What the step sees as "/". */
  rootfs: string;
  /** The step's changes (overlayfs form): complete once `finishStepRoot` has run. */
  upper: string;
  mount?: Mount;
  /** Copy driver: a second copy of the parent, to find the step's changes by comparison. */
  lower?: string;
  finished?: boolean;
}

export async function prepareStepRoot(
  store: Store,
  chainIds: readonly string[],
  driver: OverlayDriver = 'overlay',
): Promise<StepRoot> {
  const dir = store.tempPath('step');
  await fs.mkdir(dir, { mode: 0o700 });
  const upper = path.join(dir, 'upper');
  try {
    // The overlay's root takes the upper dir's owner and mode: it is the image's "/".
    await fs.mkdir(upper, { mode: 0o755 });
    if (chainIds.length === 0) return { dir, rootfs: upper, upper };
    const work = path.join(dir, 'work');
    const rootfs = path.join(dir, 'rootfs');
    await fs.mkdir(work, { mode: 0o700 });
    await fs.mkdir(rootfs, { mode: 0o755 });
    const plan = { layersDir: path.join(store.root, 'layers'), chainIds, upper, work, driver };
    const mount = planOverlay({ ...plan, target: rootfs });
    await mountAll([mount]);
    if (driver !== 'copy') return { dir, rootfs, upper, mount };
    const lower = path.join(dir, 'lower');
    await fs.mkdir(lower, { mode: 0o755 });
    await mountAll([planOverlay({ ...plan, target: lower })]);
    return { dir, rootfs, upper, mount, lower };
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * End the step's writes and make `upper` hold its changes: unmount the overlay, or (copy
 * driver) compare the root with the parent's copy. Idempotent.
 */
export async function finishStepRoot(root: StepRoot): Promise<void> {
  if (root.finished) return;
  root.finished = true;
  if (root.mount) await unmountAll([root.mount]);
  if (root.lower) {
    const { diffTrees } = await import('../snapshot/copy.js');
    await diffTrees(root.lower, root.rootfs, root.upper);
  }
}

export async function releaseStepRoot(root: StepRoot): Promise<void> {
  if (root.mount) await unmountAll([root.mount]);
  await fs.rm(root.dir, { recursive: true, force: true });
}
