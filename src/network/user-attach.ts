/**
 * A container's endpoints on user networks (root): the container's network namespace
 * (`tsrun-<id12>`, made here as network/bridge.ts makes it for the default network), then one
 * interface per network (eth0, eth1, …) made by the CNI plugins with that network's
 * configuration list (network/user-networks.ts), the container's names in the network's DNS
 * server (network/dns.ts), and on its first network its published ports (network/published.ts;
 * none on an internal network).
 *
 * A container on the default bridge can be on user networks too (Docker's `network connect` of a
 * bridge container, which testcontainers' `withNetworkAliases` does): its endpoints are added to
 * the namespace network/bridge.ts made (`join`, or `addEndpoint` with `shared`), without a
 * default route, and the record says the namespace is not this module's to delete.
 *
 * State: /run/tsrun/net/endpoints/<container id>.json — the store, the namespace, and per network
 * the configuration list, interface, names and CNI result (the DEL needs them). The callers hold
 * the container's lock, so one container's record has one writer at a time.
 *
 * Contract: `attach` records before it makes anything and undoes all it made when a step fails;
 * `addEndpoint` likewise for one network of a running container; `detach` and `removeEndpoint`
 * are idempotent and keep the record when a plugin fails, so `sweepEndpoints` (system prune) can
 * finish the job.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { addNetns, deleteNetns } from './netns.js';
import { infoFromResult, NET_RUN_DIR, netnsFirst, netnsName, netnsPath, portmapList, vethGone } from './bridge.js';
import { publishPorts, unpublishPorts } from './published.js';
import { addList, cniPath, delList, type CniResult, type ConfList, type Invocation } from './cni.js';
import { dropEntry, setEntry } from './dns.js';
import { ensureRules, parseCidr, repairRules, userConfList, type UserNetwork } from './user-networks.js';
import type { NetworkInfo } from '../oci/network.js';
import type { PortMapping } from './ports.js';
import type { Reporter } from '../events.js';
import { reportRules, vethPair } from './net-events.js';

const DIR = path.join(NET_RUN_DIR, 'endpoints');

export interface Endpoint {
  networkId: string;
  networkName: string;
  gateway: string;
  ifName: string;
  conflist: ConfList;
  names: string[];
  ports: PortMapping[];
  result?: CniResult;
}

export interface EndpointRecord {
  id: string;
  store: string;
  netns: string;
  /** The namespace is the default bridge's (eth0 is there): `detach` leaves it to bridge.ts. */
  sharedNetns?: boolean;
  endpoints: Endpoint[];
}

export interface EndpointRequest {
  net: UserNetwork;
  /** The container's name, short id and aliases: what the network's DNS answers for it. */
  names: string[];
  ip?: string;
}

function file(id: string): string {
  return path.join(DIR, `${id}.json`);
}

export async function readEndpoints(id: string): Promise<EndpointRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(file(id), 'utf8')) as EndpointRecord;
  } catch {
    return undefined;
  }
}

async function save(r: EndpointRecord): Promise<void> {
  await fs.mkdir(DIR, { recursive: true, mode: 0o700 });
  await writeFileAtomic(file(r.id), JSON.stringify(r));
}

/** Every container with endpoints on this host (all stores). */
export async function allEndpoints(): Promise<EndpointRecord[]> {
  const out: EndpointRecord[] = [];
  for (const n of await fs.readdir(DIR).catch(() => [] as string[])) {
    if (!n.endsWith('.json')) continue;
    const r = await readEndpoints(n.slice(0, -5));
    if (r) out.push(r);
  }
  return out;
}

function invocation(r: EndpointRecord, env: NodeJS.ProcessEnv, ifName: string, reporter?: Reporter): Invocation {
  return { containerId: r.id, netns: r.netns, ifName, paths: cniPath(env), pathEnv: env.PATH, reporter };
}

export function endpointInfo(e: Endpoint): NetworkInfo {
  return infoFromResult(e.result, e.conflist.plugins[0]?.bridge as string, e.ports);
}

async function addOne(
  r: EndpointRecord,
  req: EndpointRequest,
  o: { first: boolean; ports: PortMapping[]; mac?: string; env: NodeJS.ProcessEnv; reporter?: Reporter },
): Promise<Endpoint> {
  // In the bridge's namespace eth0 is the bridge's (not recorded here).
  const used = new Set([...r.endpoints.map((e) => e.ifName), ...(r.sharedNetns ? ['eth0'] : [])]);
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  const e: Endpoint = {
    networkId: req.net.Id,
    networkName: req.net.Name,
    gateway: req.net.Gateway,
    ifName: `eth${n}`,
    conflist: userConfList(req.net, { defaultRoute: o.first, mac: Boolean(o.mac) }),
    names: req.names,
    ports: o.ports,
  };
  r.endpoints.push(e);
  await save(r);
  const bits = parseCidr(req.net.Subnet).bits;
  e.result = await addList(e.conflist, invocation(r, o.env, e.ifName, o.reporter), {
    ...(o.mac ? { mac: o.mac } : {}),
    ...(req.ip ? { ips: [`${req.ip}/${bits}`] } : {}),
  });
  await save(r);
  const info = endpointInfo(e);
  const addr = info.ip;
  await publishPorts(
    // An internal network publishes nothing (it has no way in or out).
    { id: r.id, ip: addr, prefixLen: info.prefixLen, ports: req.net.Internal ? [] : e.ports, bridge: info.bridge },
    { env: o.env, ...(o.reporter ? { reporter: o.reporter } : {}), repair: () => repairRules(o.env) },
  );
  await setEntry(req.net.Id, req.net.Gateway, { id: r.id, ip: addr, names: req.names }, o.env);
  reportEndpoint(r, e, o.reporter);
  await reportRules(o.reporter, { id: r.id, ip: addr, network: e.networkName, when: 'attach', env: o.env });
  return e;
}

/** The endpoint as the default bridge reports its attachment, with its DNS names. */
function reportEndpoint(r: EndpointRecord, e: Endpoint, reporter?: Reporter): void {
  if (!reporter) return;
  const info = endpointInfo(e);
  reporter.emit({
    type: 'dns',
    action: 'add',
    id: r.id,
    network: e.networkName,
    server: e.gateway,
    names: e.names,
    ip: info.ip,
  });
  const veth = vethPair(e.result, e.ifName);
  reporter.emit({
    type: 'network-attach',
    id: r.id,
    driver: 'bridge',
    netns: r.netns,
    ip: info.ip,
    prefixLen: info.prefixLen,
    gateway: info.gateway,
    mac: info.mac,
    network: e.networkName,
    bridge: info.bridge,
    ifName: e.ifName,
    ...(veth ? { veth } : {}),
    aliases: e.names,
    ports: e.ports.map((p) => ({
      protocol: p.protocol,
      hostIP: p.hostIP ?? '',
      hostPort: p.hostPort,
      containerPort: p.containerPort,
    })),
  });
}

function cniPorts(ports: PortMapping[]): Record<string, unknown>[] {
  return ports.map((p) => ({
    hostPort: p.hostPort,
    containerPort: p.containerPort,
    protocol: p.protocol,
    ...(p.hostIP ? { hostIP: p.hostIP } : {}),
  }));
}

/** Make the namespace and put container `id` on every network of `reqs` (the first gets ports and the default route). */
export async function attach(o: {
  id: string;
  store: string;
  reqs: EndpointRequest[];
  ports: PortMapping[];
  mac?: string;
  env: NodeJS.ProcessEnv;
  /** Told of the namespace, each CNI plugin call, each endpoint, its DNS names and iptables rules. */
  reporter?: Reporter;
  /** Called once the namespace exists (a runtime may join it while the plugins still run). */
  onNetns?: () => void;
}): Promise<NetworkInfo[]> {
  await detach(o.id, o.env); // a leftover from a crash, if any
  await ensureRules(o.env);
  const r: EndpointRecord = { id: o.id, store: o.store, netns: netnsPath(o.id), endpoints: [] };
  await save(r);
  try {
    await addNetns(netnsName(o.id), o.env);
    o.reporter?.emit({ type: 'netns', action: 'add', name: netnsName(o.id), path: r.netns });
    o.onNetns?.();
    // (lo is up already: addNetns sets it.)
    const infos: NetworkInfo[] = [];
    for (const [i, req] of o.reqs.entries()) {
      const e = await addOne(r, req, {
        first: i === 0,
        ports: i === 0 ? o.ports : [],
        mac: i === 0 ? o.mac : undefined,
        env: o.env,
        reporter: o.reporter,
      });
      infos.push(endpointInfo(e));
    }
    return infos;
  } catch (err) {
    await detach(o.id, o.env, o.reporter).catch(() => {});
    throw err;
  }
}

/**
 * Put a container that is on the default bridge (its namespace made by network/bridge.ts) on user
 * networks too: eth1, eth2 … without the default route, which stays the bridge's.
 */
export async function join(o: {
  id: string;
  store: string;
  reqs: EndpointRequest[];
  env: NodeJS.ProcessEnv;
}): Promise<NetworkInfo[]> {
  await detach(o.id, o.env); // a leftover from a crash, if any
  const r: EndpointRecord = { id: o.id, store: o.store, netns: netnsPath(o.id), sharedNetns: true, endpoints: [] };
  await save(r);
  try {
    const infos: NetworkInfo[] = [];
    for (const req of o.reqs) infos.push(endpointInfo(await addOne(r, req, { first: false, ports: [], env: o.env })));
    return infos;
  } catch (err) {
    await detach(o.id, o.env).catch(() => {});
    throw err;
  }
}

/**
 * Put a running container on one more network. `shared`: the container is on the default bridge
 * and has no endpoint record yet (its first user network): one is made for the bridge's namespace.
 */
export async function addEndpoint(
  id: string,
  req: EndpointRequest,
  env: NodeJS.ProcessEnv,
  shared?: { store: string },
): Promise<NetworkInfo> {
  let r = await readEndpoints(id);
  if (!r && shared) r = { id, store: shared.store, netns: netnsPath(id), sharedNetns: true, endpoints: [] };
  if (!r) throw new TsrunError('ERR_CONTAINER_STATE', `container ${id.slice(0, 12)} has no network namespace`);
  const first = !r.sharedNetns && r.endpoints.length === 0;
  try {
    return endpointInfo(await addOne(r, req, { first, ports: [], env }));
  } catch (err) {
    await removeEndpoint(id, req.net.Id, env).catch(() => {});
    throw err;
  }
}

async function delOne(r: EndpointRecord, e: Endpoint, env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  const info = endpointInfo(e);
  // Ports: an older tsrun's portmap DEL (its list) removes its rules; else tsrun's own chain.
  const ours = e.ports.length > 0 && !portmapList(e.conflist);
  // The name, the plugins' DEL and the ports do not depend on each other: side by side.
  await Promise.all([
    dropEntry(e.networkId, r.id, env).then(() =>
      reporter?.emit({ type: 'dns', action: 'remove', id: r.id, network: e.networkName, server: e.gateway }),
    ),
    delList(e.conflist, invocation(r, env, e.ifName, reporter), e.result, { portMappings: cniPorts(e.ports) }),
    ours ? unpublishPorts(r.id, info.ip ? { id: r.id, ...info } : undefined, { env, reporter }) : undefined,
  ]);
  reporter?.emit({ type: 'network-detach', id: r.id, driver: 'bridge', network: e.networkName });
  const ip = info.ip;
  if (ip) await reportRules(reporter, { id: r.id, ip, network: e.networkName, when: 'detach', env });
}

/** Take a container off one network (its interface, lease, rules and names); idempotent. */
export async function removeEndpoint(id: string, networkId: string, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await readEndpoints(id);
  const e = r?.endpoints.find((x) => x.networkId === networkId);
  if (!r || !e) return;
  await delOne(r, e, env);
  r.endpoints = r.endpoints.filter((x) => x !== e);
  await save(r);
}

/** Undo `attach`: every endpoint, the namespace, the record. Idempotent. */
export async function detach(id: string, env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  const r = await readEndpoints(id);
  if (!r) return;
  // The namespace first (the kernel removes the interfaces with it; the bridge plugin's DEL then
  // only releases the address), unless a plugin's DEL needs the interface (bridge.ts netnsFirst).
  // (Endpoints in the default bridge's namespace leave it to the bridge's detach.)
  const early = !r.sharedNetns && r.endpoints.every((e) => netnsFirst(e.conflist));
  if (early) await removeNetns(r, env, reporter);
  // What the kernel still removes with the namespace, waited for beside the DELs (bridge.ts vethGone).
  const veths = early ? r.endpoints.map((e) => vethPair(e.result, e.ifName)?.host) : [];
  const gone = Promise.all(veths.map((h) => (h ? vethGone(h, env) : Promise.resolve())));
  let first: unknown;
  for (const e of [...r.endpoints].reverse()) {
    try {
      await delOne(r, e, env, reporter);
      r.endpoints = r.endpoints.filter((x) => x !== e);
    } catch (err) {
      first ??= err;
    }
  }
  await gone;
  if (first) {
    await save(r);
    throw first;
  }
  if (r.sharedNetns) return void (await fs.rm(file(id), { force: true }));
  if (!early) await removeNetns(r, env, reporter);
  await fs.rm(file(id), { force: true });
}

async function removeNetns(r: EndpointRecord, env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  await deleteNetns(netnsName(r.id), env);
  reporter?.emit({ type: 'netns', action: 'delete', name: netnsName(r.id), path: r.netns });
}

/** Whether any container of the host has an endpoint on network `id`. */
export async function networkInUse(id: string): Promise<boolean> {
  return (await allEndpoints()).some((r) => r.endpoints.some((e) => e.networkId === id));
}
