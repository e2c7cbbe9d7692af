/**
 * `tsrun run` (and `create`): image → record → root filesystem → /etc files → config.json, then
 * `startContainer` (containers.ts) hands the bundle to a monitor and the runtime.
 *
 * The order is chosen so a failure at any step leaves nothing: the name is reserved first (a
 * duplicate fails before any work), the record is written before the mount (so GC and `rm` know
 * the container), and every later failure unmounts and, for `--rm`, removes it all.
 * The config follows Docker (see spec/options.ts for each rule); what tsrun decided is reported
 * as debug events (`--debug` shows the mounts and the generated config).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { TsrunError, isTsrunError, wrapError } from '../errors.js';
import type { ContainerConfig } from '../oci/schemas.js';
import type { ImageRecord } from '../store/images.js';
import { defaultSpec, serializeSpec } from '../spec/defaults.js';
import {
  applyOpts,
  parseMemory,
  resolveCwd,
  withBindMounts,
  withCwd,
  withEtcFiles,
  withHostname,
  withProcessArgs,
  withReadonlyRootfs,
  withResources,
  withRootless,
  withTty,
  withUser,
} from '../spec/options.js';
import { imageVolumes, parseVolumeFlag } from '../spec/volumes.js';
import { ensureVolumes, planVolumes, populateVolumes, removeAnonymousVolumes, volumeBinds } from './volumes.js';
import { parseEnvFile, parseLabels, withEnv } from '../spec/env.js';
import { resolveUser } from '../spec/user.js';
import type { ContainerRecord } from '../runtime/records.js';
import { readFileInRoot, resolveInRoot } from '../snapshot/rootfs-copy.js';
import { unmountAll } from '../snapshot/overlay.js';
import type { AppContext } from './context.js';
import {
  ensureMounted,
  openEnv,
  overlayDriver,
  rootfsMount,
  runtimeFor,
  startContainer,
  type Attachment,
  type Env,
} from './containers.js';
import { randomName } from './names.js';
import { findOrPull } from './image-source.js';
import { createdEvent } from './container-events.js';
import { namespacePath, writeEtcFiles, type NetworkMode } from '../network/attach.js';
import { assignHostPorts, parsePublish, publishAll, type PortMapping } from '../network/ports.js';
import { userResolvConf } from '../network/dns.js';
import { runNetworks } from './networks.js';
import { callerEnvironment } from '../util/caller-env.js';
import { extraHostLines, hostAddress, parseAddHost, withDnsOptions } from '../network/extra-hosts.js';
import { withHostNetwork, withNetworkNamespace } from '../spec/network.js';
import { singleIdNamespace } from '../rootless/namespace.js';
import {
  checkCidfile,
  groupIds,
  shmHostPath,
  hostFlags,
  hostSpecOpts,
  readLabelFiles,
  resolveJoins,
  type HostFlagOptions,
} from './run-host.js';
import { parseRestartPolicy } from './restart.js';
import { resolveProcessArgs } from '../spec/options.js';
import { healthFromFlags, healthRecord, imageHealth, mergeHealth, type HealthFlags } from '../runtime/health.js';
import { writeFileAtomic } from '../util/fs.js';

export interface RunOptions extends HostFlagOptions {
  image: string;
  /** Arguments after the image: the command. */
  args: string[];
  name?: string;
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  env?: string[];
  envFiles?: string[];
  volumes?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  readOnly?: boolean;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  runtime?: string;
  network?: string;
  /** `--network-alias`, `--ip`: on a user network (app/networks.ts). */
  networkAliases?: string[];
  ip?: string;
  /** `-p` specs. */
  publish?: string[];
  /** `-P`: every EXPOSEd port on a free host port. */
  publishAll?: boolean;
  /** `--add-host NAME:IP` (IP may be host-gateway), `--dns`, `--dns-search`, `--dns-option`. */
  addHost?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  labels?: string[];
  /** missing (default), always, never — Docker's --pull. */
  pull?: string;
  platform?: string;
  /** --label-file files. */
  labelFiles?: string[];
  /** --restart policy (app/restart.ts). */
  restart?: string;
  stopSignal?: string;
  stopTimeout?: string;
  /** --cidfile: the id is written there once the container exists. */
  cidfile?: string;
  macAddress?: string;
  /** The caller's working directory, for relative -v/--mount sources (default: process.cwd()). */
  cwd?: string;
  /** --health-* and --no-healthcheck. */
  health?: HealthFlags;
}

export interface Created {
  id: string;
  env: Env;
}

async function imageFor(
  env: Env,
  ctx: AppContext,
  o: RunOptions,
): Promise<{ image: ImageRecord; config: ContainerConfig }> {
  const { image, configBytes } = await findOrPull(ctx, env.store, o.image, { pull: o.pull, platform: o.platform });
  const cfg = JSON.parse(configBytes.toString('utf8')) as { config?: ContainerConfig | null };
  return { image, config: cfg.config ?? {} };
}

/**
 * Make the container (record, root, bundle) but do not start it: `tsrun create`, and the first
 * half of `tsrun run`.
 */
export async function createContainer(ctx: AppContext, o: RunOptions): Promise<Created> {
  const env = await openEnv(ctx);
  // What a killed pull or build left under tmp/ (only entries whose process is gone).
  await env.store.cleanTemp();
  const network = o.network ?? 'bridge';
  const userNets = await runNetworks(ctx, { network, aliases: o.networkAliases, ip: o.ip });
  const cwdHere = o.cwd ?? process.cwd();
  const hf = await hostFlags(o, { rootless: ctx.rootless, network, cwd: cwdHere });
  const vflags = (o.volumes ?? []).map((v) => parseVolumeFlag(v, cwdHere, ctx.home));
  const binds = [...vflags.flatMap((f) => (f.bind ? [f.bind] : [])), ...hf.binds];
  const userVolumes = [...vflags.flatMap((f) => (f.volume ? [f.volume] : [])), ...hf.volumes];
  const extraHosts = (o.addHost ?? []).map(parseAddHost);
  const restartPolicy = parseRestartPolicy(o.restart);
  if (restartPolicy.Name !== 'no' && o.rm)
    throw new TsrunError('ERR_USAGE', 'Conflicting options: --restart and --rm', {
      hint: 'a container removed when it exits cannot be restarted',
    });
  if (o.uts === 'host' && o.hostname !== undefined)
    throw new TsrunError('ERR_USAGE', 'Conflicting options: hostname and the UTS mode', {
      hint: 'drop --hostname, or --uts host',
    });
  let stopTimeout: number | undefined;
  if (o.stopTimeout !== undefined) {
    stopTimeout = Number(o.stopTimeout);
    if (!/^-?\d+$/.test(o.stopTimeout))
      throw new TsrunError('ERR_USAGE', `invalid argument "${o.stopTimeout}" for "--stop-timeout" flag`);
  }
  if (o.stopSignal !== undefined) {
    const { signalNumber } = await import('./containers.js');
    signalNumber(o.stopSignal);
  }
  if (o.macAddress !== undefined && !/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(o.macAddress)) {
    throw new TsrunError('ERR_USAGE', `${o.macAddress} is not a valid mac address`);
  }
  if (o.macAddress !== undefined && ctx.rootless) {
    throw new TsrunError('ERR_ROOTLESS', 'rootless mode: --mac-address is not supported on the slirp4netns network', {
      hint: 'drop --mac-address, or run tsrun as root',
    });
  }
  if (o.macAddress !== undefined && (network === 'none' || network === 'host')) {
    throw new TsrunError('ERR_USAGE', 'conflicting options: mac-address and the network mode', {
      hint: '--mac-address needs the bridge network',
    });
  }
  await checkCidfile(o.cidfile);
  const healthFlags = healthFromFlags(o.health ?? {});
  const fileLabels = await readLabelFiles(o.labelFiles ?? []);
  const userEnv: string[] = [];
  for (const f of o.envFiles ?? []) {
    const text = await fs.readFile(f, 'utf8').catch((e: Error) => {
      throw new TsrunError('ERR_USAGE', `reading env file ${f}: ${e.message}`);
    });
    userEnv.push(...parseEnvFile(text, f));
  }
  userEnv.push(...(o.env ?? []));
  const resources = {
    memory: o.memory !== undefined ? parseMemory(o.memory) : undefined,
    cpus: o.cpus !== undefined ? Number(o.cpus) : undefined,
    pidsLimit: o.pidsLimit !== undefined ? Number(o.pidsLimit) : undefined,
  };
  if (resources.cpus !== undefined && Number.isNaN(resources.cpus))
    throw new TsrunError('ERR_USAGE', `invalid --cpus "${o.cpus}"`);
  if (resources.pidsLimit !== undefined && !Number.isInteger(resources.pidsLimit))
    throw new TsrunError('ERR_USAGE', `invalid --pids-limit "${o.pidsLimit}"`);
  const labels = { ...fileLabels, ...parseLabels(o.labels ?? []) };

  let ports: PortMapping[] = (o.publish ?? []).flatMap(parsePublish);
  if (network === 'bridge' && ctx.uid !== 0 && !ctx.rootless) {
    throw new TsrunError(
      'ERR_ROOTLESS',
      'an unprivileged user gets the default network inside the rootless namespace only',
      {
        hint: 'run tsrun through its CLI (which enters the namespace), or use --network none or --network host',
      },
    );
  }

  // The runtime is looked for (and its version checked) before anything is made.
  await runtimeFor(env, o.runtime ?? 'runc');
  const { image, config } = await imageFor(env, ctx, o);
  if (o.publishAll) ports.push(...publishAll(Object.keys(config.ExposedPorts ?? {})));
  // The image's VOLUME entries are anonymous volumes where the user mounts nothing else.
  const taken = [...binds, ...userVolumes, ...hf.tmpfs].map((m) => m.destination);
  const vol = planVolumes([...userVolumes, ...imageVolumes(config.Volumes, taken)]);
  const mountsOpt = withBindMounts([...binds, ...volumeBinds(env, vol.refs)], hf.tmpfs);
  if (ports.length > 0 && network === 'none') {
    throw new TsrunError('ERR_USAGE', 'conflicting options: port publishing and --network none', {
      hint: 'drop -p/-P, or use the bridge network',
    });
  }
  if (ports.length > 0 && network === 'host') {
    ctx.reporter.emit({
      type: 'container-warning',
      message: 'Published ports are discarded when using host network mode',
    });
    ports = [];
  }
  // A taken host port fails here, before anything is made (the monitor holds them at start).
  await assignHostPorts(ports);
  const id = randomBytes(32).toString('hex');
  const hostname =
    o.hostname ??
    (network === 'host' || hf.uts === 'host'
      ? readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()
      : id.slice(0, 12));
  // Checked now, before anything is made: argv, workdir, hostname.
  const argsOverrides = {
    entrypoint: o.entrypoint === undefined ? undefined : o.entrypoint === '' ? ('' as const) : [o.entrypoint],
    cmd: o.args,
  };
  const argsOpt = withProcessArgs(config, argsOverrides);
  const argv = resolveProcessArgs(config, argsOverrides);
  const joins = await resolveJoins(env, hf);
  const cwd = resolveCwd(config.WorkingDir, o.workdir);
  const hostnameOpt = withHostname(hostname);

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
      for (const d of [p.work, p.rootfs, p.etc]) await fs.mkdir(d, { recursive: true, mode: 0o700 });
      // The overlay's root takes the upper dir's owner and mode: it is the container's "/".
      await fs.mkdir(p.upper, { mode: 0o755 });
      await ensureMounted(env, c);
    });

    // Docker creates a missing WORKDIR (owned by the container's user? no: by root, 0755).
    const cwdHost = await resolveInRoot(p.rootfs, cwd);
    await fs.mkdir(cwdHost, { recursive: true, mode: 0o755 });
    const user = resolveUser(
      record.config.user || '0',
      await readFileInRoot(p.rootfs, '/etc/passwd'),
      await readFileInRoot(p.rootfs, '/etc/group'),
    );
    // Docker makes a missing source a directory; an existing one (a file too: -v ~/app.conf:/app.conf) is bound as it is.
    for (const b of binds)
      if (!(await fs.lstat(b.source).catch(() => undefined))) await fs.mkdir(b.source, { recursive: true });
    // An empty volume gets the image's content at its destination (unless nocopy).
    await populateVolumes(env, p.rootfs, vol.refs);
    const gids = groupIds(hf.groupAdd, await readFileInRoot(p.rootfs, '/etc/group'));

    // On the bridge, start writes hosts again with the addresses it gets (network/attach.ts).
    const etcFiles = await writeEtcFiles(p.etc, {
      hostname,
      network: network as NetworkMode,
      rootless: ctx.rootless,
      extraHosts: extraHostLines(extraHosts, network === 'none' ? undefined : hostAddress()),
      dns: { dns: o.dns, dnsSearch: o.dnsSearch, dnsOption: o.dnsOption },
      reporter: ctx.reporter,
    });
    if (userNets.refs.length > 0) {
      // On a user network the network's DNS server (its gateway) answers; the host's search and options stay.
      let hostResolv = '';
      try {
        hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
      } catch {
        /* none */
      }
      const dns = { dns: o.dns, dnsSearch: o.dnsSearch, dnsOption: o.dnsOption };
      await fs.writeFile(etcFiles.resolvConf, withDnsOptions(userResolvConf(hostResolv, userNets.gateways), dns));
    }

    const spec = applyOpts(
      defaultSpec(),
      argsOpt,
      withEnv(config.Env, userEnv, {
        callerEnv: callerEnvironment(ctx.env),
        hostname,
        tty: Boolean(o.tty),
        home: user.home,
      }),
      withCwd(config.WorkingDir, o.workdir),
      withUser(user),
      withTty(Boolean(o.tty)),
      withReadonlyRootfs(Boolean(o.readOnly)),
      hostnameOpt,
      mountsOpt,
      withEtcFiles(etcFiles),
      withResources(resources),
      (s) => {
        s.linux.cgroupsPath = `/tsrun/${id}`;
        if (ctx.rootless) withRootless({ hostNetwork: network === 'host', singleId: singleIdNamespace() })(s);
      },
      // The bridge's namespace is made (by network/attach.ts) at each start, at a fixed path.
      ...(network === 'host' ? [withHostNetwork()] : []),
      ...(network === 'bridge' || userNets.refs.length > 0
        ? [withNetworkNamespace(namespacePath({ id, rootless: ctx.rootless, runDir: env.containers.sp.run }))]
        : []),
      ...hostSpecOpts(hf, {
        rootless: ctx.rootless,
        gids,
        argv,
        shmPath: shmHostPath(p),
        report: (message) => ctx.reporter.emit({ type: 'debug', scope: 'run', message }),
      }),
    );
    // With --init Docker shows the command, not the init, as Path and Args.
    record.path = argv[0] ?? '';
    record.args = argv.slice(1);
    record.config.env = spec.process.env;
    await writeFileAtomic(p.config, serializeSpec(spec));
    await env.containers.write(record);
    ctx.reporter.emit(
      createdEvent({ id, name: record.name, image: o.image, bundle: p.bundle, config: p.config, network }, spec),
    );
    if (o.cidfile) await fs.writeFile(o.cidfile, id, { flag: 'wx' });
    return { id, env };
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
  const { id, env } = await createContainer(ctx, o);
  const c = await env.containers.find(id);
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
