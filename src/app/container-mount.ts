/**
 * A container's root filesystem as a mount: the plan (snapshot/overlay.ts) for its record, with
 * the storage driver it was made with, and mounting it when it is not mounted yet. Used by
 * create, start, cleanup and the commands that open a stopped container's root (cp, diff).
 *
 * Contract: `rootfsMount` is pure; `ensureMounted` is idempotent (a mounted root is left as it is)
 * and reports the mount as an event; a root made with another driver than today's fails clearly.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { planOverlay, mountAll, type Mount, type OverlayDriver } from '../snapshot/overlay.js';
import { rootlessDriver } from '../rootless/namespace.js';
import type { Container, ContainerRecord } from '../runtime/records.js';
import type { AppContext } from './context.js';
import { driverReason, mountedEvent } from './container-events.js';
import type { Env } from './env.js';

/** The root filesystem of a container as a mount (data; see snapshot/overlay.ts). */
export function rootfsMount(env: Env, c: Pick<Container, 'record' | 'paths'>): Mount {
  return planOverlay({
    layersDir: path.join(env.store.root, 'layers'),
    chainIds: c.record.layers,
    upper: c.paths.upper,
    work: c.paths.work,
    target: c.paths.rootfs,
    driver: storageDriver(env, c.record),
    // A --rm container's root goes with it: nothing in it needs to reach the disk.
    volatile: Boolean(c.record.host.autoRemove),
  });
}

/** The driver a container's root was made with (records from before it was kept: today's). */
export function storageDriver(env: Env, record: ContainerRecord): OverlayDriver {
  return record.host.storage ?? overlayDriver(env.ctx);
}

/** Root: the kernel's overlayfs. Rootless: what the namespace's storage probe chose. */
export function overlayDriver(ctx: AppContext): OverlayDriver {
  return ctx.uid === 0 ? 'overlay' : rootlessDriver(ctx.uid, ctx.env);
}

export function isMounted(target: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  const escaped = target.replace(/[ \t\n\\]/g, (ch) => `\\${ch.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((line) => line.split(' ')[4] === escaped);
}

export async function ensureMounted(env: Env, c: Pick<Container, 'record' | 'paths'>): Promise<void> {
  if (isMounted(c.paths.rootfs)) return;
  try {
    const m = rootfsMount(env, c);
    await mountAll([m]);
    const driver = storageDriver(env, c.record);
    env.ctx.reporter.emit(mountedEvent(c.record.id, driver, m, driverReason(env.ctx, driver)));
  } catch (err) {
    const made = storageDriver(env, c.record);
    const now = overlayDriver(env.ctx);
    if (made === now) throw err;
    throw new TsrunError(
      'ERR_STORE',
      `container ${c.record.name}'s root was made with the ${made} storage driver, which cannot be mounted here (tsrun now uses ${now}): ${(err as Error).message}`,
      {
        cause: err,
        hint: `remove the container, or start tsrun's namespace again with TSRUN_STORAGE_DRIVER=${made}`,
      },
    );
  }
}
