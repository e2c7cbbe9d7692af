/**
 * `tsrun run` (and `create`): image → record → root filesystem → /etc files → config.json, then
 * `startContainer` (start.ts) hands the bundle to a monitor and the runtime.
 *
 * The order is chosen so a failure at any step leaves nothing: the name is reserved first (a
 * duplicate fails before any work), the record is written before the mount (so GC and `rm` know
 * the container), and every later failure unmounts and, for `--rm`, removes it all.
 * The config follows Docker (see spec/options.ts for each rule); what tsrun decided is reported
 * as debug events (`--debug` shows the mounts and the generated config).
 */
import { TsrunError, isTsrunError, wrapError } from '../errors.js';
import { serializeSpec } from '../spec/defaults.js';
import { ensureVolumes, populateVolumes, removeAnonymousVolumes } from './volumes.js';
import { resolveUser } from '../spec/user.js';
import type { ContainerRecord } from '../runtime/records.js';
import { readFileInRoot, resolveInRoot } from '../snapshot/rootfs-copy.js';
import { unmountAll } from '../snapshot/overlay.js';
import type { AppContext } from './context.js';
import { ensureMounted, overlayDriver, rootfsMount, startContainer, type Attachment, type Env } from './containers.js';
import { randomName } from './names.js';
import { createdEvent } from './container-events.js';
import { namespacePath } from '../network/attach.js';
import { groupIds, shmHostPath, type hostFlags } from './run-host.js';
import { healthRecord, imageHealth, mergeHealth } from '../runtime/health.js';
import { writeFileAtomic } from '../util/fs.js';
import { quickFs } from '../util/fs-quick.js';
import { userNamespaceEvent } from '../rootless/namespace.js';
import { buildRunSpec, planRun, writeRunEtc, type RunOptions } from './run-plan.js';

export type { RunOptions } from './run-plan.js';

export interface Created {
  id: string;
  env: Env;
  /** The record as written (`run` starts from it rather than reading it back). */
  record: ContainerRecord;
}
/**
 * Make the container (record, root, bundle) but do not start it: `tsrun create`, and the first
 * half of `tsrun run`.
 */
export async function createContainer(ctx: AppContext, o: RunOptions): Promise<Created> {
  const plan = await planRun(ctx, o);
  const {
    env,
    network,
    userNets,
    hf,
    binds,
    extraHosts,
    restartPolicy,
    stopTimeout,
    healthFlags,
    labels,
    ports,
    image,
    config,
    vol,
    id,
    hostname,
    argv,
    joins,
    cwd,
    resources,
  } = plan;
  // Until this process exits, `prune` leaves the container alone (it looks stopped until started;
  // before its record exists, its name would look orphaned).
  await env.containers.holdCreation(id);
  let name = o.name;
  if (name === undefined) {
    for (let i = 0; ; i++) {
      name = randomName(i > 3);
      try {
        await env.containers.reserveName(name, id);
        break;
      } catch (e) {
        if (!isTsrunError(e, 'ERR_NAME_IN_USE') || i > 10) throw e;
      }
    }
  } else {
    await env.containers.reserveName(name, id);
  }

  const record: ContainerRecord = {
    id,
    name,
    image: o.image,
    imageId: image.id,
    layers: image.layers.map((l) => l.chainId),
    created: new Date().toISOString(),
    path: '',
    args: [],
    config: {
      hostname,
      env: [],
      cwd,
      user: o.user ?? config.User ?? '',
      tty: Boolean(o.tty),
      openStdin: Boolean(o.interactive),
      entrypoint:
        o.entrypoint !== undefined ? (o.entrypoint === '' ? null : [o.entrypoint]) : (config.Entrypoint ?? null),
      cmd: o.args.length > 0 ? o.args : o.entrypoint !== undefined ? null : (config.Cmd ?? null),
      labels: { ...(config.Labels ?? {}), ...labels },
      exposedPorts: Object.keys(config.ExposedPorts ?? {}),
      stopSignal: o.stopSignal ?? config.StopSignal,
      ...(stopTimeout !== undefined ? { stopTimeout } : {}),
      ...healthRecord(mergeHealth(healthFlags, imageHealth(config.Healthcheck)), config.Shell),
    },
    host: {
      autoRemove: Boolean(o.rm),
      binds,
      ...(vol.refs.length > 0 ? { volumes: vol.refs } : {}),
      readonly: Boolean(o.readOnly),
      network,
      ...(userNets.refs.length > 0 ? { networks: userNets.refs } : {}),
      runtime: o.runtime ?? 'runc',
      storage: overlayDriver(ctx),
      memory: resources.memory,
      cpus: resources.cpus,
      pidsLimit: resources.pidsLimit,
      ...(ports.length > 0 ? { ports } : {}),
      ...(extraHosts.length > 0 ? { extraHosts } : {}),
      ...(restartPolicy.Name !== 'no' ? { restartPolicy } : {}),
      ...(joins ? { joins } : {}),
      ...(o.macAddress ? { macAddress: o.macAddress.toLowerCase().replace(/-/g, ':') } : {}),
      extra: hostExtra(o, hf),
    },
    state: {},
    restartCount: 0,
  };
  const c = { record, paths: env.containers.paths(id) };
  const p = c.paths;
  let madeVolumes: string[] = [];
  try {
    await env.store.withSharedLock(async () => {
      // The image was read before this lock: an `rmi` (and its garbage collection) may have
      // taken its layers meanwhile. Once the record is written, gc keeps them.
      for (const chainId of record.layers)
        if (!(await env.store.hasLayer(chainId)))
          throw new TsrunError(
            'ERR_IMAGE_NOT_FOUND',
            `creating a container from ${o.image}: the image was removed meanwhile`,
            {
              hint: 'run the command again: it pulls the image again',
            },
          );
      madeVolumes = await ensureVolumes(env, vol.refs, vol.labels, () => env.containers.write(record));
      for (const d of [p.work, p.rootfs, p.etc]) await quickFs.mkdir(d, { recursive: true, mode: 0o700 });
      // The overlay's root takes the upper dir's owner and mode: it is the container's "/".
      await quickFs.mkdir(p.upper, { mode: 0o755 });
      await ensureMounted(env, c);
    });

    // Docker creates a missing WORKDIR (owned by the container's user? no: by root, 0755).
    const cwdHost = await resolveInRoot(p.rootfs, cwd);
    await quickFs.mkdir(cwdHost, { recursive: true, mode: 0o755 });
    const user = resolveUser(
      record.config.user || '0',
      await readFileInRoot(p.rootfs, '/etc/passwd'),
      await readFileInRoot(p.rootfs, '/etc/group'),
    );
    // Docker makes a missing source a directory; an existing one (a file too: -v ~/app.conf:/app.conf) is bound as it is.
    for (const b of binds)
      if (!(await quickFs.lstat(b.source).catch(() => undefined))) await quickFs.mkdir(b.source, { recursive: true });
    // An empty volume gets the image's content at its destination (unless nocopy).
    await populateVolumes(env, p.rootfs, vol.refs);
    const gids = groupIds(hf.groupAdd, await readFileInRoot(p.rootfs, '/etc/group'));

    const etcFiles = await writeRunEtc(ctx, plan, o, p.etc);
    const { spec, provenance } = buildRunSpec(ctx, plan, o, {
      user,
      gids,
      etcFiles,
      shmPath: shmHostPath(p),
      netnsPath: namespacePath({ id, rootless: ctx.rootless, runDir: env.containers.sp.run }),
    });
    // With --init Docker shows the command, not the init, as Path and Args.
    record.path = argv[0] ?? '';
    record.args = argv.slice(1);
    record.config.env = spec.process.env;
    // (not synced for --rm: see ContainerStore.write)
    await writeFileAtomic(p.config, serializeSpec(spec), 0o644, { volatile: Boolean(o.rm) });
    await env.containers.write(record);
    // Before container-create, which ends the Spec stage that --explain tells the namespace with.
    if (ctx.rootless) ctx.reporter.emit(userNamespaceEvent(ctx.uid));
    ctx.reporter.emit(
      createdEvent(
        { id, name: record.name, image: o.image, bundle: p.bundle, config: p.config, network },
        spec,
        provenance,
      ),
    );
    if (o.cidfile) await quickFs.writeFile(o.cidfile, id, { flag: 'wx' });
    return { id, env, record };
  } catch (e) {
    await unmountAll([rootfsMount(env, c)]).catch(() => {});
    await env.containers.remove(record).catch(() => {});
    await removeAnonymousVolumes(env, record, madeVolumes).catch(() => {});
    throw isTsrunError(e) ? e : wrapError(`creating a container from ${o.image}`, e);
  }
}

/** `run`: create, then start; attached runs get their attachment before the start. */
export async function runContainer(
  ctx: AppContext,
  o: RunOptions,
  attachIo?: (a: Attachment) => void,
): Promise<{ id: string; env: Env; attachment?: Attachment }> {
  const { id, env, record } = await createContainer(ctx, o);
  const c = env.containers.observe(record);
  const attachment = await startContainer(env, c, { attachIo: o.detach ? undefined : attachIo });
  return { id, env, attachment };
}

/** The host flags as Docker's HostConfig names them (inspect shows them; nothing reads them back). */
function hostExtra(o: RunOptions, hf: Awaited<ReturnType<typeof hostFlags>>): Record<string, unknown> {
  return {
    Privileged: hf.privileged,
    CapAdd: o.capAdd ?? null,
    CapDrop: o.capDrop ?? null,
    SecurityOpt: o.securityOpt ?? null,
    Devices: hf.devices.map((d) => ({
      PathOnHost: d.hostPath,
      PathInContainer: d.device.path,
      CgroupPermissions: d.permissions,
    })),
    IpcMode: o.ipc || 'private',
    PidMode: o.pid ?? '',
    UTSMode: o.uts ?? '',
    UsernsMode: o.userns ?? '',
    Tmpfs: Object.fromEntries(hf.tmpfs.map((t) => [t.destination, t.options.join(',')])),
    Ulimits: hf.rlimits.map((l) => ({
      Name: l.type.slice('RLIMIT_'.length).toLowerCase(),
      Soft: limitNumber(l.soft),
      Hard: limitNumber(l.hard),
    })),
    Init: o.init ?? null,
    ShmSize: hf.shmSize ?? 64 * 1024 * 1024,
    Sysctls: hf.sysctl,
    OomScoreAdj: hf.oomScoreAdj ?? 0,
    GroupAdd: o.groupAdd ?? null,
    ...(o.macAddress ? { MacAddress: o.macAddress } : {}),
  };
}

/** Docker shows an unlimited ulimit as -1. */
function limitNumber(v: number | bigint): number {
  return typeof v === 'bigint' ? (v >= 18446744073709551615n ? -1 : Number(v)) : v;
}
