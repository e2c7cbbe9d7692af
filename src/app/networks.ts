/**
 * User networks as Docker's `network` verbs and `run --network NAME`: create, ls, inspect, rm,
 * prune, connect, disconnect, and what start and cleanup do for a container on user networks.
 * The host side (bridges, rules, leases, DNS) is network/user-networks.ts, user-attach.ts and
 * dns.ts; this module keeps the container records in step with it.
 *
 * Contracts:
 * - Every failure is checked before anything changes (exit 1 here; 125 for run/create, whose
 *   checks are `runNetworks`).
 * - A network with an endpoint (a running container on it, in any store of the host) is not
 *   removed; stopped containers keep their reference, and fail to start once it is gone (Docker).
 * - connect/disconnect change a container under its lock: the record and, while it runs, its
 *   interfaces and DNS names. As in Docker, a container that is not running is connected and
 *   disconnected freely (only its record changes; start attaches), and a container on the default
 *   bridge can be on user networks too: eth0 stays the bridge's (and the default route), each
 *   user network adds an interface, and its DNS server goes first in the container's resolv.conf
 *   (Docker's embedded server answers such a container the same way). testcontainers'
 *   `withNetworkAliases` makes exactly that: a bridge container, connected before its start.
 * - Rootless: refused with what is missing (rootless user networks need a bridge inside the
 *   user's shared network namespace, which tsrun's per-container slirp4netns does not have).
 */
import { sha256Hex } from '../util/sha256.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { NetworkInfo } from '../oci/network.js';
import type { PortMapping } from '../network/ports.js';
import { BRIDGE } from '../network/bridge.js';
import { isActive, type ContainerRecord, type UserNetworkRef } from '../runtime/records.js';
import {
  addEndpoint,
  allEndpoints,
  attach,
  detach,
  join,
  networkInUse,
  removeEndpoint,
  type EndpointRequest,
} from '../network/user-attach.js';
import { withNameservers } from '../network/dns.js';
import {
  createNetwork,
  defaultSubnet,
  findNetwork,
  intToIp,
  ipToInt,
  isIPv4,
  listNetworks,
  notFound,
  parseCidr,
  removeNetwork,
  type CreateOptions,
  type UserNetwork,
} from '../network/user-networks.js';
import type { AppContext } from './context.js';
import type { Env } from './containers.js';

const BUILTIN = ['bridge', 'none', 'host'];

/** Whether a container's network mode is a user network (its record lists them). */
export function onUserNetworks(r: ContainerRecord): boolean {
  return !BUILTIN.includes(r.host.network);
}

/** The networks a container is on, by name: a default-bridge container connected to user networks is on both. */
export function networkNames(r: ContainerRecord): string[] {
  const user = (r.host.networks ?? []).map((n) => n.name);
  if (onUserNetworks(r)) return r.host.networks ? user : [r.host.network];
  return [...new Set([r.host.network, ...user])];
}

function refuseRootless(ctx: AppContext, exitCode: number): void {
  if (ctx.rootless || ctx.uid !== 0)
    throw new TsrunError('ERR_ROOTLESS', 'rootless mode: user-defined networks are not supported yet', {
      hint:
        'rootless containers each get their own slirp4netns; user networks need a bridge and a DNS server inside one ' +
        'shared network namespace (as rootless podman has). Use the default network, or run tsrun as root',
      detail: { exitCode },
    });
}

function usage(message: string, exitCode: number, hint?: string): TsrunError {
  return new TsrunError('ERR_USAGE', message, { hint, detail: { exitCode } });
}

function checkIp(net: UserNetwork, ip: string, exitCode: number): void {
  if (!isIPv4(ip)) throw usage(`invalid IPv4 address: ${ip}`, exitCode);
  if (!net.UserSubnet)
    throw usage(
      'user specified IP address is supported only when connecting to networks with user configured subnets',
      exitCode,
    );
  const s = parseCidr(net.Subnet);
  const n = ipToInt(ip);
  if (n <= s.first || n >= s.last || ip === net.Gateway)
    throw usage(`no available IPv4 address ${ip} in network ${net.Name}`, exitCode, `use an address of ${net.Subnet}`);
}

/** `run/create --network NAME [--network-alias A] [--ip IP]`: the record's networks, checked (exit 125). */
export async function runNetworks(
  ctx: AppContext,
  o: { network: string; aliases?: string[]; ip?: string },
): Promise<{ refs: UserNetworkRef[]; gateways: string[] }> {
  const aliases = o.aliases ?? [];
  if (BUILTIN.includes(o.network)) {
    if (aliases.length > 0)
      throw usage('network-scoped alias is supported only for containers in user defined networks', 125);
    if (o.ip !== undefined) throw usage('user specified IP address is supported on user defined networks only', 125);
    return { refs: [], gateways: [] };
  }
  refuseRootless(ctx, 125);
  const net = await findNetwork(o.network);
  if (!net) throw notFound(o.network, 125);
  if (o.ip !== undefined) checkIp(net, o.ip, 125);
  return {
    refs: [{ id: net.Id, name: net.Name, aliases, ...(o.ip ? { ip: o.ip } : {}) }],
    gateways: [net.Gateway],
  };
}

/** What the network's DNS answers for the container, in Docker's order (DNSNames): name, aliases, short id. */
export function dnsNames(r: ContainerRecord, ref: UserNetworkRef): string[] {
  return [...new Set([r.name, ...ref.aliases, r.id.slice(0, 12)])];
}

/** The id of a container's endpoint on a network (Docker's EndpointID: stable per container and network). */
export function endpointId(containerId: string, networkId: string): string {
  return sha256Hex(Buffer.from(`${containerId}/${networkId}`));
}

/** The id tsrun gives Docker's predefined networks (bridge, host, none). */
export function builtinNetworkId(name: string): string {
  return sha256Hex(Buffer.from(`tsrun-builtin-${name}`));
}

async function endpointRequests(r: ContainerRecord): Promise<EndpointRequest[]> {
  const reqs = [];
  const nets = await listNetworks();
  for (const ref of r.host.networks ?? []) {
    const net = nets.find((n) => n.Id === ref.id);
    if (!net) throw notFound(ref.name, 125);
    reqs.push({ net, names: dnsNames(r, ref), ...(ref.ip ? { ip: ref.ip } : {}) });
  }
  return reqs;
}

/** Put user networks' DNS servers first in a container's resolv.conf (in place: it is bind-mounted), or take them out. */
async function editResolv(file: string, add: string[], drop: string[] = []): Promise<void> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined) await fs.writeFile(file, withNameservers(text, add, drop));
}

function resolvFile(env: Env, r: ContainerRecord): string {
  return path.join(env.containers.observe(r).paths.etc, 'resolv.conf');
}

/** Start: the namespace and one interface per network; the first network's view and all of them. */
export async function attachUserNetworks(
  env: Env,
  r: ContainerRecord,
  ports: PortMapping[],
  onNetns?: () => void,
): Promise<{ first?: NetworkInfo; all: Record<string, NetworkInfo> }> {
  const reqs = await endpointRequests(r);
  const infos = await attach({
    id: r.id,
    store: env.store.root,
    reqs,
    ports,
    mac: r.host.macAddress,
    env: env.ctx.env,
    reporter: env.ctx.reporter,
    ...(onNetns ? { onNetns } : {}),
  });
  const all: Record<string, NetworkInfo> = {};
  reqs.forEach((q, i) => {
    const info = infos[i];
    if (info) all[q.net.Name] = info;
  });
  return { first: infos[0], all };
}

/**
 * Start of a default-bridge container that was connected to user networks: their interfaces in
 * the namespace the bridge made, their DNS servers in its resolv.conf; each network's view.
 */
export async function joinUserNetworks(env: Env, r: ContainerRecord): Promise<Record<string, NetworkInfo>> {
  const reqs = await endpointRequests(r);
  if (reqs.length === 0) return {};
  const infos = await join({ id: r.id, store: env.store.root, reqs, env: env.ctx.env });
  await editResolv(
    resolvFile(env, r),
    reqs.map((q) => q.net.Gateway),
  );
  return Object.fromEntries(reqs.flatMap((q, i) => (infos[i] ? [[q.net.Name, infos[i]]] : [])));
}

/** Cleanup: every endpoint and the namespace (idempotent). */
export function detachUserNetworks(env: Env, id: string): Promise<void> {
  return detach(id, env.ctx.env, env.ctx.reporter);
}

async function networkOf(ref: string): Promise<UserNetwork> {
  const net = await findNetwork(ref);
  if (!net) throw notFound(ref);
  return net;
}

export async function networkCreate(ctx: AppContext, o: CreateOptions): Promise<UserNetwork> {
  refuseRootless(ctx, 1);
  return createNetwork(o, ctx.env);
}

/** Docker's network inspect JSON (and the fields ls's template can use). */
export async function networkView(net: UserNetwork): Promise<Record<string, unknown>> {
  const containers: Record<string, unknown> = {};
  for (const r of await allEndpoints()) {
    const e = r.endpoints.find((x) => x.networkId === net.Id);
    const ip = e?.result?.ips?.[0]?.address;
    if (!e || !ip) continue;
    const iface = e.result?.interfaces?.find((i) => i.sandbox);
    containers[r.id] = {
      Name: e.names[0] ?? r.id.slice(0, 12),
      EndpointID: endpointId(r.id, net.Id),
      MacAddress: iface?.mac ?? '',
      IPv4Address: ip,
      IPv6Address: '',
    };
  }
  return {
    Name: net.Name,
    Id: net.Id,
    Created: net.Created,
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: net.Subnet, Gateway: net.Gateway }] },
    Internal: net.Internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    // Docker lists only the options given at create: docker-compose compares them with its file's
    // and would ask to recreate a network whose Options it did not set (the bridge's name).
    Options: { ...net.Options },
    Labels: net.Labels,
  };
}

/** Docker's view of a predefined network (tsrun's default bridge is tsrun0). */
function builtinView(b: { name: string; id: string; driver: string }): Record<string, unknown> {
  const subnet = b.name === 'bridge' ? defaultSubnet() : undefined;
  const gateway = subnet ? intToIp(parseCidr(subnet).first + 1) : '';
  return {
    Name: b.name,
    Id: b.id,
    Created: '',
    Scope: 'local',
    Driver: b.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: subnet ? [{ Subnet: subnet, Gateway: gateway }] : [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: b.name === 'bridge' ? { 'com.docker.network.bridge.name': BRIDGE } : {},
    Labels: {},
  };
}

/** The networks `ls` lists: Docker's three predefined ones first, then the user's. */
export async function networkList(): Promise<{ net?: UserNetwork; name: string; id: string; driver: string }[]> {
  const builtin = BUILTIN.map((name) => ({
    name,
    id: builtinNetworkId(name),
    driver: name === 'none' ? 'null' : name,
  }));
  return [...builtin, ...(await listNetworks()).map((net) => ({ net, name: net.Name, id: net.Id, driver: 'bridge' }))];
}

export async function networkInspect(refs: string[]): Promise<{ found: Record<string, unknown>[]; missing: string[] }> {
  const found = [];
  const missing = [];
  const builtin = await networkList();
  for (const ref of refs) {
    const b = builtin.find((n) => !n.net && (n.name === ref || n.id === ref));
    const net = b ? undefined : await findNetwork(ref);
    if (b) found.push(builtinView(b));
    else if (net) found.push(await networkView(net));
    else missing.push(ref);
  }
  return { found, missing };
}

function inUseError(net: UserNetwork): TsrunError {
  return new TsrunError(
    'ERR_NETWORK_IN_USE',
    `error while removing network: network ${net.Name} id ${net.Id} has active endpoints`,
    { hint: 'stop or disconnect its containers first', detail: { exitCode: 1 } },
  );
}

/** `network rm`: one network; a network with a running container stays (Docker's error). */
export async function networkRemove(ctx: AppContext, ref: string): Promise<void> {
  if (BUILTIN.includes(ref)) throw usage(`${ref} is a pre-defined network and cannot be removed`, 1);
  const net = await networkOf(ref);
  const removed = await removeNetwork(net, ctx.env, async () => !(await networkInUse(net.Id)));
  if (!removed) throw inUseError(net);
}

/**
 * Docker's prune filters for networks: `label=KEY[=VALUE]` (must carry it) and `label!=KEY[=VALUE]`
 * (must not). Anything else is refused by name rather than ignored: an ignored filter would prune
 * networks the user meant to keep.
 */
export function pruneFilter(filters: readonly string[]): (labels: Record<string, string>) => boolean {
  const tests = filters.map((f) => {
    const m = /^(label!?)=(.+)$/.exec(f);
    if (!m)
      throw usage(`invalid filter '${f}'`, 1, 'network prune takes --filter label=KEY[=VALUE] or label!=KEY[=VALUE]');
    const [key, value] = (m[2] as string).split(/=(.*)/s) as [string, string | undefined];
    const has = (l: Record<string, string>) => key in l && (value === undefined || l[key] === value);
    return m[1] === 'label' ? has : (l: Record<string, string>) => !has(l);
  });
  return (labels) => tests.every((t) => t(labels));
}

/** `network prune`: every user network without a running container (and matching the filters); their names. */
export async function networkPrune(ctx: AppContext, filters: readonly string[] = []): Promise<string[]> {
  const keep = pruneFilter(filters);
  const out = [];
  for (const net of await listNetworks()) {
    if (!keep(net.Labels)) continue;
    if (await removeNetwork(net, ctx.env, async () => !(await networkInUse(net.Id)))) out.push(net.Name);
  }
  return out;
}

/** `network connect [--alias A] [--ip IP] NET CONTAINER`. */
export async function networkConnect(
  env: Env,
  netRef: string,
  containerRef: string,
  o: { aliases?: string[]; ip?: string } = {},
): Promise<void> {
  refuseRootless(env.ctx, 1);
  const net = await networkOf(netRef);
  if (o.ip !== undefined) checkIp(net, o.ip, 1);
  const c = await env.containers.find(containerRef);
  await env.containers.lock(c.record.id, async () => {
    const r = (await env.containers.read(c.record.id)) ?? c.record;
    // Docker's errors (runconfig.ErrConflictSharedNetwork, ErrConflictNoNetwork).
    if (r.host.network === 'host')
      throw usage(
        'container sharing network namespace with another container or host cannot be connected to any other network',
        1,
      );
    if (r.host.network === 'none')
      throw usage(
        'container cannot be connected to multiple networks with one of the networks in private (none) mode',
        1,
      );
    const refs = r.host.networks ?? [];
    const running = isActive(env.containers.observe(r).observed);
    if (refs.some((x) => x.id === net.Id)) {
      // Docker keeps a stopped container's endpoint settings as they are ("avoid duplicate config").
      if (!running) return;
      throw usage(`endpoint with name ${r.name} already exists in network ${net.Name}`, 1);
    }
    const ref: UserNetworkRef = { id: net.Id, name: net.Name, aliases: o.aliases ?? [], ...(o.ip ? { ip: o.ip } : {}) };
    if (running) {
      const bridge = r.host.network === 'bridge';
      const info = await addEndpoint(
        r.id,
        { net, names: dnsNames(r, ref), ...(ref.ip ? { ip: ref.ip } : {}) },
        env.ctx.env,
        bridge ? { store: env.store.root } : undefined,
      );
      if (bridge) await editResolv(resolvFile(env, r), [net.Gateway]);
      r.state = { ...r.state, networks: { ...r.state.networks, [net.Name]: info } };
    }
    r.host.networks = [...refs, ref];
    await env.containers.write(r);
  });
}

/** `network disconnect [-f] NET CONTAINER`. */
export async function networkDisconnect(env: Env, netRef: string, containerRef: string, force = false): Promise<void> {
  const net = await findNetwork(netRef);
  if (!net) {
    if (force) return;
    throw notFound(netRef);
  }
  const c = await env.containers.find(containerRef);
  await env.containers.lock(c.record.id, async () => {
    const r = (await env.containers.read(c.record.id)) ?? c.record;
    const refs = r.host.networks ?? [];
    if (!refs.some((x) => x.id === net.Id)) throw usage(`container ${r.id} is not connected to network ${net.Name}`, 1);
    await removeEndpoint(r.id, net.Id, env.ctx.env);
    if (r.host.network === 'bridge') await editResolv(resolvFile(env, r), [], [net.Gateway]);
    r.host.networks = refs.filter((x) => x.id !== net.Id);
    if (r.state.networks) {
      const rest = { ...r.state.networks };
      delete rest[net.Name];
      r.state = { ...r.state, networks: rest };
    }
    await env.containers.write(r);
  });
}
