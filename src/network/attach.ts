/**
 * One way for every container process to get its network, whether `run`/`start` or a build's
 * RUN step: the name files it sees (/etc/hostname, /etc/hosts, /etc/resolv.conf) and, on the
 * default network, its attachment — the bridge (root: network/bridge.ts, CNI) or slirp4netns
 * (rootless: network/slirp.ts). The spec joins the namespace at `namespacePath` (spec/network.ts).
 *
 * Contract: `attachNetwork` undoes what it made if it fails (as connect/connectSlirp do); `detachNetwork` is
 * idempotent. Only the default network ('bridge') is attached; 'host' and 'none' need nothing.
 */
import { readFileSync } from 'node:fs';
import { quickFs } from '../util/fs-quick.js';
import path from 'node:path';
import type { Reporter } from '../events.js';
import type { NetworkInfo } from '../oci/network.js';
import { connect, disconnect, netnsPath, NETWORK_NAME } from './bridge.js';
import { hostsFile, resolvConf } from './etc-files.js';
import { extraHostLines, hostAddress, withDnsOptions, type DnsOptions, type ExtraHost } from './extra-hosts.js';
import type { PortMapping } from './ports.js';
import {
  connectSlirp,
  disconnectSlirp,
  SLIRP_IP,
  slirpNetnsPath,
  slirpResolvConf,
  type SlirpHandoff,
} from './slirp.js';
import { ensureRules, repairRules } from './user-networks.js';

export type NetworkMode = 'bridge' | 'host' | 'none';

/** Who is attached, and how: the bridge for root, slirp4netns (kept under `runDir`) rootless. */
export interface AttachTarget {
  id: string;
  rootless: boolean;
  /** The store's volatile directory (rootless: slirp4netns keeps the namespace there). */
  runDir: string;
}

/** The network namespace the container joins on the default network. */
export function namespacePath(t: AttachTarget): string {
  return t.rootless ? slirpNetnsPath(t.runDir, t.id) : netnsPath(t.id);
}

export interface EtcFiles {
  hostname: string;
  hosts: string;
  resolvConf: string;
}

/**
 * Write the container's name files into `dir` (mode 0700, made if missing): its hostname; hosts
 * (the host's own with --network host, else Docker's loopback lines) with `extraHosts` lines;
 * resolv.conf from the host's (slirp4netns's forwarder rootless on the default network; loopback
 * servers kept only with the host's network), with --dns options. Returns their paths.
 */
export async function writeEtcFiles(
  dir: string,
  o: {
    hostname: string;
    network: NetworkMode;
    rootless: boolean;
    extraHosts: string;
    dns?: DnsOptions;
    reporter?: Reporter;
  },
): Promise<EtcFiles> {
  const files = {
    hostname: path.join(dir, 'hostname'),
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
  };
  await quickFs.mkdir(dir, { recursive: true, mode: 0o700 });
  await quickFs.writeFile(files.hostname, `${o.hostname}\n`);
  await quickFs.writeFile(
    files.hosts,
    o.network === 'host'
      ? readFileSync('/etc/hosts', 'utf8').replace(/\n*$/, '\n') + o.extraHosts
      : hostsFile(o.hostname, undefined, o.extraHosts),
  );
  let hostResolv = '';
  try {
    hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* none */
  }
  const slirp = o.rootless && o.network === 'bridge';
  const text = slirp ? slirpResolvConf(hostResolv) : resolvConf(hostResolv, o.network === 'host');
  await quickFs.writeFile(files.resolvConf, o.dns ? withDnsOptions(text, o.dns) : text);
  o.reporter?.emit({ type: 'etc-files', ...files, network: o.network });
  return files;
}

export interface AttachOptions extends AttachTarget {
  /** The store root (owner of a bridge attachment). */
  storeRoot: string;
  /** Published ports, host ports already assigned. */
  ports: PortMapping[];
  env: NodeJS.ProcessEnv;
  /** The process the attachment lives as long as (a build: itself), for sweeps after a crash. */
  owner?: number;
  mac?: string;
  /** Rewrite this hosts file with the address the container got (`start`; a RUN step keeps its own). */
  hosts?: { file: string; hostname: string; extraHosts: readonly ExtraHost[] };
  /** Told of the namespace, each CNI plugin call, and the address and ports the container got. */
  reporter?: Reporter;
  /**
   * Called once the namespace exists, before its network is up (root: before the bridge's
   * interface is made; rootless: as slirp4netns starts), so a runtime may create the container
   * (join the namespace) meanwhile; the container must not start before `attachNetwork` resolves.
   * Rootless, with slirp4netns's lifeline (network/slirp.ts): the callee owns it, gives it to the
   * process that keeps slirp4netns alive (the container's monitor), then closes its own copy.
   */
  onNetns?: (handoff?: SlirpHandoff) => void;
  /**
   * Rootless without ports: hand slirp4netns's ready fd to `onNetns` too, and resolve without
   * waiting for slirp4netns; the callee's container must wait for that fd (network/slirp.ts).
   */
  handReady?: boolean;
}

/** Put the container on the default network: the bridge as root, slirp4netns rootless. */
export async function attachNetwork(o: AttachOptions): Promise<NetworkInfo> {
  if (!o.rootless) await ensureRules(o.env, o.reporter);
  // Rootless, the address is known before slirp4netns runs, and the hosts file must be complete
  // before the container can start (with `handReady`, as soon as slirp4netns is ready).
  if (o.hosts && o.rootless) await writeHosts(o.hosts, SLIRP_IP, hostAddress());
  const network: NetworkInfo & { veth?: { host: string; container: string } } = o.rootless
    ? await connectSlirp({
        id: o.id,
        runDir: o.runDir,
        ports: o.ports,
        env: o.env,
        ...(o.owner !== undefined ? { owner: o.owner } : {}),
        ...(o.reporter ? { reporter: o.reporter } : {}),
        ...(o.onNetns ? { onNetns: o.onNetns } : {}),
        ...(o.handReady ? { handReady: true } : {}),
      })
    : await connect({
        id: o.id,
        store: o.storeRoot,
        ports: o.ports,
        env: o.env,
        ...(o.owner !== undefined ? { pid: o.owner } : {}),
        ...(o.mac !== undefined ? { mac: o.mac } : {}),
        ...(o.reporter ? { reporter: o.reporter } : {}),
        ...(o.onNetns ? { onNetns: o.onNetns } : {}),
        repairRules: () => repairRules(o.env),
      });
  o.reporter?.emit({
    type: 'network-attach',
    id: o.id,
    driver: o.rootless ? 'slirp4netns' : 'bridge',
    netns: namespacePath(o),
    ip: network.ip,
    prefixLen: network.prefixLen,
    gateway: network.gateway,
    mac: network.mac,
    network: o.rootless ? 'slirp4netns' : NETWORK_NAME,
    ...(o.rootless ? {} : { bridge: network.bridge, ifName: 'eth0' }),
    ...(network.veth ? { veth: network.veth } : {}),
    ports: network.ports.map((p) => ({
      protocol: p.protocol,
      hostIP: p.hostIP,
      hostPort: p.hostPort,
      containerPort: p.containerPort,
    })),
  });
  if (o.hosts && !o.rootless) await writeHosts(o.hosts, network.ip, network.gateway);
  return network;
}

function writeHosts(h: NonNullable<AttachOptions['hosts']>, ip: string, gateway: string | undefined): Promise<void> {
  return quickFs.writeFile(h.file, hostsFile(h.hostname, ip, extraHostLines(h.extraHosts, gateway)));
}

/** Undo `attachNetwork` (idempotent). */
export async function detachNetwork(t: AttachTarget, env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  if (t.rootless) await disconnectSlirp(t.id, t.runDir);
  else await disconnect(t.id, env, reporter);
  reporter?.emit({ type: 'network-detach', id: t.id, driver: t.rootless ? 'slirp4netns' : 'bridge' });
}
