/**
 * The default "bridge" network for containers run by root: each container gets a network
 * namespace (/run/netns/tsrun-<id12>, made as `ip netns add` makes it: network/netns.ts; so `ip
 * netns exec` shows a learner what the container sees), a veth on the host bridge `tsrun0` with an address from host-local IPAM, a default
 * route — all made by the CNI reference plugins (bridge, host-local; the namespace is made with
 * its loopback up, as the loopback plugin did: network/netns.ts). Outbound NAT and
 * the forwarding accepts are the network's rules, made once (network/firewall.ts, applied by the
 * caller: attach.ts); published ports are the container's own chain, written by tsrun in one
 * iptables-restore (network/published.ts) once its address is recorded.
 *
 * State (volatile, so a reboot, which destroys every namespace and rule, also forgets it):
 *   /run/tsrun/net/tsrun.conflist        the network: a CNI configuration list; the subnet is
 *                                         the first candidate no host route overlaps
 *   /run/tsrun/net/ipam/                 host-local's leases (its dataDir)
 *   /run/tsrun/net/containers/<id>.json  one attachment: store, netns, config list, ports, result
 *
 * The bridge, its subnet and the leases belong to the host, not to a store: containers of every
 * `--root` share them, so addresses never collide.
 *
 * Contract: `connect` records the attachment before making anything, and undoes all it made if a
 * step fails; `disconnect` is idempotent and keeps the record when a plugin fails, so `sweep`
 * (`tsrun system prune`) can finish the job. An attachment of an older tsrun (portmap in its
 * recorded list) is torn down by that list: portmap's DEL removes its rules.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { silentReporter, type Reporter } from '../events.js';
import { removeStaleDotTemps, writeFileAtomic } from '../util/fs.js';
import { quickFs } from '../util/fs-quick.js';
import { parseChecked, setAside } from '../util/corrupt.js';
import { checkAttachment, handleDamaged, resultFromLease } from './damaged.js';
import { addNetns, deleteNetns, ip } from './netns.js';
import { addList, cniPath, CNI_VERSION, delList, type CniResult, type ConfList, type Invocation } from './cni.js';
import type { NetworkInfo } from '../oci/network.js';
import type { PortMapping } from './ports.js';
import { reportRules, vethPair } from './net-events.js';
import { publishPorts, unpublishPorts } from './published.js';

export const NET_RUN_DIR = '/run/tsrun/net';
export const BRIDGE = 'tsrun0';
export const NETWORK_NAME = 'tsrun';

/** Subnets tried in order (podman's 10.88/16 and Docker's 172.17/16 are left to them). */
const CANDIDATES = ['10.66.0.0/16', '10.67.0.0/16', '10.68.0.0/16', '172.30.0.0/16', '192.168.166.0/24'];

export interface NetworkAttachment {
  id: string;
  /** The store that owns the container (`--root`), so `sweep` can ask whether it still runs. */
  store: string;
  /** Set for a build step's attachment (no container record): alive while this process is. */
  pid?: number;
  netns: string;
  conflist: ConfList;
  ports: PortMapping[];
  result?: CniResult;
}

export type { NetworkInfo };

export function netnsName(id: string): string {
  return `tsrun-${id.slice(0, 12)}`;
}

export function netnsPath(id: string): string {
  return `/run/netns/${netnsName(id)}`;
}

function attachmentFile(id: string): string {
  return path.join(NET_RUN_DIR, 'containers', `${id}.json`);
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
}

function cidrRange(cidr: string): [number, number] {
  const [ip, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const start = ipToInt(ip) - (ipToInt(ip) % size);
  return [start, start + size - 1];
}

/** Host IPv4 routes from /proc/net/route: [iface, first, last]. */
export function hostRoutes(text: string): { iface: string; first: number; last: number; cidr: string }[] {
  const out = [];
  for (const line of text.trim().split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Little-endian hex as the kernel prints it.
    const le = (h: string): number => Buffer.from(h, 'hex').readUInt32LE(0);
    const dest = le(f[1] ?? '0');
    const mask = le(f[7] ?? '0');
    const bits = mask.toString(2).replace(/0/g, '').length;
    if (bits === 0) continue; // the default route overlaps everything; it does not count
    const first = dest >>> 0;
    const size = 2 ** (32 - bits);
    const dotted = [24, 16, 8, 0].map((s) => (first >>> s) & 255).join('.');
    out.push({ iface: f[0] ?? '', first, last: first + size - 1, cidr: `${dotted}/${bits}` });
  }
  return out;
}

/** The bridge's subnet: the one its existing route says, else the first free candidate. */
export function chooseSubnet(routesText: string): string {
  const routes = hostRoutes(routesText);
  const own = routes.find((r) => r.iface === BRIDGE);
  if (own) return own.cidr;
  for (const c of CANDIDATES) {
    const [a, b] = cidrRange(c);
    if (!routes.some((r) => r.first <= b && a <= r.last)) return c;
  }
  throw new TsrunError(
    'ERR_CNI',
    `choosing a subnet for the ${BRIDGE} bridge: every candidate (${CANDIDATES.join(', ')}) overlaps a host route`,
    {
      hint: 'free one of those ranges, or write your own network to /run/tsrun/net/tsrun.conflist',
    },
  );
}

export function bridgeConfList(subnet: string): ConfList {
  const [first] = cidrRange(subnet);
  const gw = [24, 16, 8, 0].map((s) => ((first + 1) >>> s) & 255).join('.');
  return {
    cniVersion: CNI_VERSION,
    name: NETWORK_NAME,
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        // Outbound NAT is one rule for the network (network/firewall.ts), not one per container.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: path.join(NET_RUN_DIR, 'ipam'),
          routes: [{ dst: '0.0.0.0/0' }],
          ranges: [[{ subnet, gateway: gw }]],
        },
      },
      // Not run by this tsrun (it writes the ports' rules itself, network/published.ts, and
      // leaves portmap out of each attachment's list): kept in the shared file so an older tsrun
      // on the same host, which runs the list as it reads it, still publishes its ports.
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** Whether a list publishes ports with the portmap plugin (an older tsrun's): its DEL removes them. */
export function portmapList(list: ConfList): boolean {
  return list.plugins.some((p) => p.type === 'portmap');
}

/**
 * Whether a list makes rules per container (the bridge plugin's ipMasq, the firewall plugin): an
 * older tsrun's. Such an attachment's DEL must run while its namespace exists (the bridge plugin
 * finds the addresses whose NAT rules it removes on the interface).
 */
export function perContainerRules(list: ConfList): boolean {
  return list.plugins.some((p) => p.type === 'firewall' || (p.type === 'bridge' && p.ipMasq === true));
}

/**
 * Whether the namespace may go before the plugins' DEL: not when a plugin's DEL works inside it
 * (per-container rules above; `tuning`, which restores and drops its backup of the interface).
 */
export function netnsFirst(list: ConfList): boolean {
  return !perContainerRules(list) && !list.plugins.some((p) => p.type === 'tuning');
}

/** The network's configuration list, written on first use (atomically: racing writers agree). */
export async function defaultNetwork(): Promise<ConfList> {
  const file = path.join(NET_RUN_DIR, `${NETWORK_NAME}.conflist`);
  let text: string | undefined;
  try {
    text = await quickFs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TsrunError('ERR_CNI', `reading ${file}: ${(err as Error).message}`, {
        hint: `remove ${file}: tsrun writes it again`,
      });
    }
  }
  if (text !== undefined) {
    const r = parseChecked<ConfList>(text, (v) =>
      Array.isArray((v as ConfList | null)?.plugins) ? undefined : 'not a CNI configuration list',
    );
    // A list of an older tsrun (per-container ipMasq and firewall plugin): written again with its subnet.
    if (r.ok && !perContainerRules(r.value)) return r.value;
    if (!r.ok) await setAside(file, r.problem, 'nothing (tsrun writes the network again)');
    else {
      const ipam = r.value.plugins[0]?.ipam as { ranges?: { subnet: string }[][] } | undefined;
      const subnet = ipam?.ranges?.[0]?.[0]?.subnet;
      if (subnet) {
        const list = bridgeConfList(subnet);
        await writeFileAtomic(file, `${JSON.stringify(list, null, 2)}\n`);
        return list;
      }
    }
    // Written again below: the subnet comes back from the bridge's route, so leases stay valid.
  }
  const list = bridgeConfList(chooseSubnet(readFileSync('/proc/net/route', 'utf8')));
  await fs.mkdir(NET_RUN_DIR, { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(list, null, 2)}\n`);
  return list;
}

function cniPorts(ports: PortMapping[]): Record<string, unknown>[] {
  return ports.map((p) => ({
    hostPort: p.hostPort,
    containerPort: p.containerPort,
    protocol: p.protocol,
    ...(p.hostIP ? { hostIP: p.hostIP } : {}),
  }));
}

function invocation(
  a: NetworkAttachment,
  env: NodeJS.ProcessEnv,
  ifName = 'eth0',
  reporter: Reporter = silentReporter,
): Invocation {
  return { containerId: a.id, netns: a.netns, ifName, paths: cniPath(env), pathEnv: env.PATH, reporter };
}

/** Put container `id` on the bridge, publishing `ports` (already assigned host ports). */
export async function connect(o: {
  id: string;
  store: string;
  ports: PortMapping[];
  env: NodeJS.ProcessEnv;
  pid?: number;
  mac?: string;
  reporter?: Reporter;
  /** Called once the namespace exists (a runtime may join it while the plugins still run). */
  onNetns?: () => void;
  /** Apply the network-wide rules again (the ports' chain of tsrun0 found missing). */
  repairRules?: () => Promise<void>;
}): Promise<NetworkInfo & { veth?: { host: string; container: string } }> {
  const reporter = o.reporter ?? silentReporter;
  await disconnect(o.id, o.env, reporter); // a leftover from a crash, if any
  // portmap stays in the shared file for older tsruns (bridgeConfList): tsrun writes the ports itself.
  const network = await defaultNetwork();
  let conflist = { ...network, plugins: network.plugins.filter((p) => p.type !== 'portmap') };
  // --mac-address: the tuning plugin sets eth0's address right after the bridge made it.
  if (o.mac)
    conflist = {
      ...conflist,
      plugins: conflist.plugins.flatMap((p) =>
        p.type === 'bridge' ? [p, { type: 'tuning', capabilities: { mac: true } }] : [p],
      ),
    };
  const a: NetworkAttachment = {
    id: o.id,
    store: o.store,
    pid: o.pid,
    netns: netnsPath(o.id),
    conflist,
    ports: o.ports,
  };
  // The attachment is run state (/run, gone at boot; a damaged one is read as such): written
  // at once, without the thread pool or an fsync (util/fs.ts), as the container's own run state.
  await quickFs.mkdir(path.dirname(attachmentFile(o.id)), { recursive: true, mode: 0o700 });
  await writeFileAtomic(attachmentFile(o.id), JSON.stringify(a), 0o644, { volatile: true });
  try {
    await addNetns(netnsName(o.id), o.env);
    reporter.emit({ type: 'netns', action: 'add', name: netnsName(o.id), path: a.netns });
    o.onNetns?.();
    // (lo is up already: addNetns sets it, as the loopback plugin did.)
    a.result = await addList(a.conflist, invocation(a, o.env, 'eth0', reporter), o.mac ? { mac: o.mac } : {});
    await writeFileAtomic(attachmentFile(o.id), JSON.stringify(a), 0o644, { volatile: true });
    const info = infoOf(a);
    await publishPorts(
      { id: o.id, ip: info.ip, prefixLen: info.prefixLen, ports: a.ports, bridge: BRIDGE },
      { env: o.env, reporter, ...(o.repairRules ? { repair: o.repairRules } : {}) },
    );
    await reportRules(reporter, { id: o.id, ip: info.ip, network: NETWORK_NAME, when: 'attach', env: o.env });
    const veth = vethPair(a.result, 'eth0');
    return veth ? { ...info, veth } : info;
  } catch (err) {
    await disconnect(o.id, o.env, reporter).catch(() => {});
    throw err;
  }
}

/** Undo `connect`: plugins' DEL (rules, veth, lease), then the namespace, then the record. */
export async function disconnect(
  id: string,
  env: NodeJS.ProcessEnv,
  reporter: Reporter = silentReporter,
): Promise<void> {
  let text: string;
  try {
    text = await quickFs.readFile(attachmentFile(id), 'utf8');
  } catch {
    return;
  }
  const r = parseChecked<NetworkAttachment>(text, (v) => checkAttachment(v, id));
  if (!r.ok) {
    await handleDamaged({ ...damaged(id, r.problem), list: await defaultNetwork(), env });
    return;
  }
  const a = r.value;
  // No result: killed between the ADD and recording it; the lease still says the address.
  const result = a.result ?? (await resultFromLease(a.conflist, a.id));
  const removeNetns = async () => {
    await deleteNetns(netnsName(id), env);
    reporter.emit({ type: 'netns', action: 'delete', name: netnsName(id), path: a.netns });
  };
  // The namespace first: the kernel then removes the veth with it, off our path, and the bridge
  // plugin's DEL, finding no namespace, only releases the address (as for containerd's sandboxes).
  const early = netnsFirst(a.conflist);
  if (early) await removeNetns();
  const veth = early ? vethPair(result, 'eth0')?.host : undefined;
  const info = infoFromResult(result, BRIDGE, a.ports);
  // Ports: an older tsrun's portmap DEL (its list) removes its rules; else tsrun's own chain.
  const ours = a.ports.length > 0 && !portmapList(a.conflist);
  await Promise.all([
    delList(a.conflist, invocation(a, env, 'eth0', reporter), result, { portMappings: cniPorts(a.ports) }),
    veth ? vethGone(veth, env) : undefined,
    ours ? unpublishPorts(id, info.ip ? { id, ...info } : undefined, { env, reporter }) : undefined,
  ]);
  if (!early) await removeNetns();
  const ip4 = info.ip;
  if (ip4) await reportRules(reporter, { id, ip: ip4, network: NETWORK_NAME, when: 'detach', env });
  await quickFs.rm(attachmentFile(id), { force: true });
}

/**
 * Wait until the kernel has removed host veth `name` with its namespace (a few ms after the
 * namespace went: the kernel cleans namespaces up asynchronously), so a detach that returned left
 * no veth on the bridge; after 2 s, delete it by hand.
 */
export async function vethGone(name: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (!/^[A-Za-z0-9._-]{1,15}$/.test(name)) return;
  // /proc/self/net is this process's namespace (/sys/class/net is the one sysfs was mounted in).
  for (let i = 0; i < 1000; i++) {
    const dev = await fs.readFile('/proc/self/net/dev', 'utf8').catch(() => '');
    if (!dev.split('\n').some((l) => l.trimStart().startsWith(`${name}:`))) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await ip(['link', 'delete', name], env).catch(() => undefined);
}

export function infoOf(a: NetworkAttachment): NetworkInfo {
  return infoFromResult(a.result, BRIDGE, a.ports);
}

/** What a CNI ADD result says about the interface it made (address, prefix, gateway, MAC), for any bridge. */
export function infoFromResult(result: CniResult | undefined, bridge: string, ports: PortMapping[]): NetworkInfo {
  const first = result?.ips?.[0];
  const [addr = '', bits = '0'] = (first?.address ?? '').split('/');
  const iface = first?.interface !== undefined ? result?.interfaces?.[first.interface] : undefined;
  return {
    ip: addr,
    prefixLen: Number(bits),
    gateway: first?.gateway ?? '',
    mac: iface?.mac ?? '',
    bridge,
    ports,
  };
}

/** Every attachment on this host (all stores). */
export async function attachments(o: { damaged?: ReturnType<typeof damaged>[] } = {}): Promise<NetworkAttachment[]> {
  const dir = path.dirname(attachmentFile('x'));
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: NetworkAttachment[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const text = await fs.readFile(path.join(dir, n), 'utf8').catch(() => undefined);
    if (text === undefined) continue; // removed meanwhile (records are written atomically)
    const r = parseChecked<NetworkAttachment>(text, (v) => checkAttachment(v, n.slice(0, -'.json'.length)));
    if (r.ok) out.push(r.value);
    else o.damaged?.push(damaged(n.slice(0, -'.json'.length), r.problem));
  }
  return out;
}

function damaged(id: string, problem: string): { file: string; id: string; problem: string; netnsName: string } {
  return { file: attachmentFile(id), id, problem, netnsName: netnsName(id) };
}

/**
 * Tear down the attachments whose container is gone (`alive` says which are not): what a killed
 * monitor or a crash left, and the temp files of killed writers in the host's network state. `hold` runs each check-and-teardown under whatever keeps the owner
 * from changing meanwhile (the container's lock, so a container that is starting is seen
 * running, never half-made and torn down). Returns the ids it removed.
 */
export async function sweep(
  alive: (a: NetworkAttachment) => Promise<boolean>,
  env: NodeJS.ProcessEnv,
  hold: (a: NetworkAttachment, fn: () => Promise<void>) => Promise<void> = (_a, fn) => fn(),
): Promise<string[]> {
  const removed: string[] = [];
  // A writer killed between its temp file and the rename (records are written atomically) left
  // `.<record>.<pid>-<hex>.tmp`; whatever the record was to describe is found and torn down below.
  for (const sub of ['', 'containers', 'endpoints', 'networks'])
    await removeStaleDotTemps(path.join(NET_RUN_DIR, sub)).catch(() => 0);
  const bad: ReturnType<typeof damaged>[] = [];
  const all = await attachments({ damaged: bad });
  for (const d of bad) {
    if (await handleDamaged({ ...d, list: await defaultNetwork(), env })) removed.push(d.id);
  }
  for (const a of all) {
    await hold(a, async () => {
      if (await alive(a)) return;
      await disconnect(a.id, env);
      removed.push(a.id);
    });
  }
  return removed;
}
