/**
 * The events a container's life reports (src/events.ts, ContainerEvent), made from the data the
 * use cases already hold: the spec as written (never the environment's values: `-e` may carry
 * secrets) and the root filesystem's mount.
 */
import path from 'node:path';
import type { TsrunEvent } from '../events.js';
import type { Mount } from '../snapshot/overlay.js';
import type { Spec } from '../spec/types.js';

type Ev<T extends TsrunEvent['type']> = Extract<TsrunEvent, { type: T }>;

/** `container-create`: what the bundle's config.json says, with the variables' names only. */
export function createdEvent(
  c: { id: string; name: string; image: string; bundle: string; config: string; network: string },
  spec: Spec,
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
  };
}

/** `rootfs-mount`: the driver and its directories (lowerdirs top first, made absolute). */
export function mountedEvent(id: string, driver: string, m: Mount): Ev<'rootfs-mount'> {
  const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const abs = (d: string) => (m.cwd ? path.resolve(m.cwd, d) : d);
  const upper = opt('upperdir');
  const work = opt('workdir');
  return {
    type: 'rootfs-mount',
    id,
    target: m.target,
    driver,
    lowerdirs: (opt('lowerdir') ?? '').split(':').filter(Boolean).map(abs),
    ...(upper ? { upperdir: abs(upper) } : {}),
    ...(work ? { workdir: abs(work) } : {}),
  };
}
