/**
 * The events a container's life reports (src/events.ts, ContainerEvent), made from the data the
 * use cases already hold: the spec as written (never the environment's values: `-e` may carry
 * secrets) and the root filesystem's mount.
 */
import path from 'node:path';
import type { SpecProvenance, TsrunEvent } from '../events.js';
import type { Mount } from '../snapshot/overlay.js';
import type { Spec } from '../spec/types.js';
import { rootlessDriver, rootlessDriverReason } from '../rootless/namespace.js';

type Ev<T extends TsrunEvent['type']> = Extract<TsrunEvent, { type: T }>;

/** `container-create`: what the bundle's config.json says, with the variables' names only. */
export function createdEvent(
  c: { id: string; name: string; image: string; bundle: string; config: string; network: string },
  spec: Spec,
  provenance?: SpecProvenance,
): Ev<'container-create'> {
  const p = spec.process;
  return {
    type: 'container-create',
    ...c,
    args: p.args,
    cwd: p.cwd,
    user: {
      uid: p.user.uid,
      gid: p.user.gid,
      ...(p.user.additionalGids ? { additionalGids: p.user.additionalGids } : {}),
    },
    ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
    envNames: p.env.map((e) => e.split('=')[0] ?? e),
    namespaces: spec.linux.namespaces.map((n) => ({ type: n.type, ...(n.path ? { path: n.path } : {}) })),
    capabilities: p.capabilities.bounding,
    mounts: spec.mounts.map((m) => ({
      destination: m.destination,
      ...(m.type ? { type: m.type } : {}),
      ...(m.source ? { source: m.source } : {}),
    })),
    maskedPaths: spec.linux.maskedPaths,
    readonlyPaths: spec.linux.readonlyPaths,
    rlimits: (p.rlimits ?? []).map((r) => ({ type: r.type, soft: String(r.soft), hard: String(r.hard) })),
    ...(spec.linux.cgroupsPath ? { cgroupsPath: spec.linux.cgroupsPath } : {}),
    ...(provenance ? { provenance } : {}),
  };
}

/** One `cleanup-step` per step that had something to undo, with its error if it failed. */
export function cleanupSteps(
  id: string,
  steps: [Ev<'cleanup-step'>['step'], string[], PromiseSettledResult<unknown>][],
): Ev<'cleanup-step'>[] {
  return steps
    .filter(([, targets]) => targets.length > 0)
    .map(([step, targets, r]) => ({
      type: 'cleanup-step',
      id,
      step,
      targets,
      ...(r.status === 'rejected' ? { error: (r.reason as Error)?.message ?? String(r.reason) } : {}),
    }));
}

/**
 * Why a root is made with `driver`: as root the kernel's overlayfs; rootless what the
 * namespace's storage probe found (rootless/namespace.ts); a container made earlier keeps the
 * driver its record names.
 */
export function driverReason(ctx: { uid: number; env: NodeJS.ProcessEnv }, driver: string): string {
  const now = ctx.uid === 0 ? 'overlay' : rootlessDriver(ctx.uid, ctx.env);
  if (driver !== now) return `the container's root was made with ${driver} (its record keeps the driver)`;
  if (ctx.uid === 0)
    return "running as root: the kernel's overlayfs, the image's layers as read-only lowerdirs and the container's changes in its upperdir";
  return rootlessDriverReason(ctx.uid, ctx.env);
}

/** `rootfs-mount`: the driver, why, and its directories (lowerdirs top first, made absolute). */
export function mountedEvent(id: string, driver: string, m: Mount, reason: string): Ev<'rootfs-mount'> {
  const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const abs = (d: string) => (m.cwd ? path.resolve(m.cwd, d) : d);
  const upper = opt('upperdir');
  const work = opt('workdir');
  return {
    type: 'rootfs-mount',
    id,
    target: m.target,
    driver,
    reason,
    // A copy root lists its layers bottom first (the order they are copied in).
    lowerdirs:
      m.type === 'copy' ? [...m.options].reverse() : (opt('lowerdir') ?? '').split(':').filter(Boolean).map(abs),
    ...(upper ? { upperdir: abs(upper) } : {}),
    ...(work ? { workdir: abs(work) } : {}),
  };
}
