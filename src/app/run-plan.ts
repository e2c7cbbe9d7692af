/**
 * The first half of `run`/`create`, shared with `run --dry-run`: flags checked and parsed, the
 * image found or pulled, the id, hostname, argv and workdir chosen (`planRun`, which makes
 * nothing: no record, no name, no mount), and the spec built from the plan once the user and the
 * /etc files are known (`buildRunSpec`), with where each part of it came from
 * (spec/provenance.ts). `createContainer` (run.ts) then makes the container around them;
 * `dryRun` (dry-run.ts) writes them to its directory instead.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import type { ContainerConfig } from '../oci/schemas.js';
import type { ImageRecord } from '../store/images.js';
import { defaultSpec } from '../spec/defaults.js';
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
  resolveProcessArgs,
} from '../spec/options.js';
import { imageVolumes, parseVolumeFlag } from '../spec/volumes.js';
import { planVolumes, volumeBinds } from './volumes.js';
import { parseEnvFile, parseLabels, withEnv } from '../spec/env.js';
import type { ResolvedUser } from '../spec/user.js';
import type { Spec } from '../spec/types.js';
import { specProvenance } from '../spec/provenance.js';
import type { SpecProvenance } from '../events.js';
import type { AppContext } from './context.js';
import { openEnv, runtimeFor, type Env } from './containers.js';
import { findOrPull } from './image-source.js';
import { writeEtcFiles, type NetworkMode } from '../network/attach.js';
import { assignHostPorts, parsePublish, publishAll, type PortMapping } from '../network/ports.js';
import { userResolvConf } from '../network/dns.js';
import { runNetworks } from './networks.js';
import { callerEnvironment } from '../util/caller-env.js';
import { extraHostLines, hostAddress, parseAddHost, withDnsOptions } from '../network/extra-hosts.js';
import { withHostNetwork, withNetworkNamespace } from '../spec/network.js';
import { singleIdNamespace } from '../rootless/namespace.js';
import {
  checkCidfile,
  hostFlags,
  hostSpecOpts,
  readLabelFiles,
  resolveJoins,
  type HostFlagOptions,
} from './run-host.js';
import { parseRestartPolicy } from './restart.js';
import { healthFromFlags, type HealthFlags } from '../runtime/health.js';
import { randomHex } from '../util/random.js';
import { quickFs } from '../util/fs-quick.js';

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
async function imageFor(
  env: Env,
  ctx: AppContext,
  o: RunOptions,
): Promise<{ image: ImageRecord; config: ContainerConfig }> {
  const { image, configBytes } = await findOrPull(ctx, env.store, o.image, { pull: o.pull, platform: o.platform });
  const cfg = JSON.parse(configBytes.toString('utf8')) as { config?: ContainerConfig | null };
  return { image, config: cfg.config ?? {} };
}

export type RunPlan = Awaited<ReturnType<typeof planRun>>;

/** Everything `run` decides before it makes anything; throws for a bad flag or a missing image. */
export async function planRun(ctx: AppContext, o: RunOptions) {
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
  const envFileNames: string[] = [];
  for (const f of o.envFiles ?? []) {
    const text = await fs.readFile(f, 'utf8').catch((e: Error) => {
      throw new TsrunError('ERR_USAGE', `reading env file ${f}: ${e.message}`);
    });
    const entries = parseEnvFile(text, f);
    envFileNames.push(...entries.map(envName));
    userEnv.push(...entries);
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
  const id = randomHex(32);
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
  return {
    env,
    network,
    userNets,
    hf,
    vflags,
    binds,
    userVolumes,
    extraHosts,
    restartPolicy,
    stopTimeout,
    healthFlags,
    userEnv,
    envFileNames,
    resources,
    labels,
    ports,
    image,
    config,
    vol,
    mountsOpt,
    id,
    hostname,
    argsOpt,
    argv,
    joins,
    cwd,
    hostnameOpt,
  };
}

const envName = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

/** The /etc files (hosts, hostname, resolv.conf) into `dir`, as the container will bind them. */
export async function writeRunEtc(ctx: AppContext, p: RunPlan, o: RunOptions, dir: string) {
  const { network, extraHosts, userNets, hostname } = p;
  // On the bridge, start writes hosts again with the addresses it gets (network/attach.ts).
  const etcFiles = await writeEtcFiles(dir, {
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
    await quickFs.writeFile(etcFiles.resolvConf, withDnsOptions(userResolvConf(hostResolv, userNets.gateways), dns));
  }
  return etcFiles;
}

/**
 * The spec from the plan, the container's user (resolved against its /etc/passwd) and its /etc
 * files; `netnsPath` is the bridge's or user networks' namespace (made at each start), and where
 * each part came from.
 */
export function buildRunSpec(
  ctx: AppContext,
  p: RunPlan,
  o: RunOptions,
  x: {
    user: ResolvedUser;
    gids: number[];
    etcFiles: Awaited<ReturnType<typeof writeEtcFiles>>;
    shmPath: string;
    netnsPath: string;
  },
): { spec: Spec; provenance: SpecProvenance } {
  const { config, userEnv, hostname, resources, network, userNets, id, hf, argv, argsOpt, hostnameOpt, mountsOpt } = p;
  const { user, gids, etcFiles } = x;
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
    ...(network === 'bridge' || userNets.refs.length > 0 ? [withNetworkNamespace(x.netnsPath)] : []),
    ...hostSpecOpts(hf, {
      rootless: ctx.rootless,
      gids,
      argv,
      shmPath: x.shmPath,
      report: (message) => ctx.reporter.emit({ type: 'debug', scope: 'run', message }),
    }),
  );
  const provenance = specProvenance(
    config,
    {
      args: o.args,
      entrypoint: o.entrypoint,
      envFlagNames: (o.env ?? []).map(envName),
      envFileNames: p.envFileNames,
      user: o.user,
      workdir: o.workdir,
      hostname: o.hostname,
      network,
      pid: o.pid,
      ipc: o.ipc,
      uts: o.uts,
      userns: o.userns,
      privileged: o.privileged,
      capAdd: o.capAdd,
      capDrop: o.capDrop,
      securityOpt: o.securityOpt,
      ulimit: o.ulimit,
      init: o.init,
      rootless: ctx.rootless,
      mounts: [
        { flag: '-v', destinations: p.vflags.map((f) => (f.bind ?? f.volume)?.destination ?? '') },
        { flag: '--mount', destinations: [...hf.binds, ...hf.volumes].map((m) => m.destination) },
        { flag: '--tmpfs', destinations: hf.tmpfs.map((m) => m.destination) },
      ],
      imageVolumes: p.vol.refs
        .filter((r) => r.anonymous && !p.userVolumes.some((u) => u.destination === r.destination))
        .map((r) => r.destination),
      etcFiles: ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'],
    },
    spec,
  );
  return { spec, provenance };
}
