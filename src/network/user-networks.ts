/**
 * User-defined networks (`tsrun network create`), root only: each is a Linux bridge of its own
 * (`tsbr-<id10>`, as Docker's `br-<id12>`) with a subnet, made by the same CNI reference plugins
 * as the default network (network/bridge.ts), plus network-wide iptables rules (network/firewall.ts)
 * that NAT it and isolate it from every other tsrun bridge and, with `--internal`, from everything
 * outside it.
 *
 * State, shared by every store on the host (a network belongs to the host, like the bridge and
 * its leases; volatile, as namespaces and rules are):
 *   /run/tsrun/net/networks/<id>.json   one network record, written atomically
 *   /run/tsrun/net/networks.lock        flock held while a network is created or removed, so two
 *                                        `network create` never pick the same name or subnet, and
 *                                        while the rules of all networks are applied
 *   /run/tsrun/net/rules.v3             the rules last applied (`ensureRules` looks for it)
 *   /run/tsrun/net/ipam/tsrun-net-<id12>/ host-local's leases of the network
 *
 * Isolation (Docker's DOCKER-ISOLATION idea, in chain TSRUN-ISOLATION, which TSRUN-FORWARD runs
 * first, before the accepts): traffic from the bridge to another tsrun bridge, and into it from
 * another, is dropped; an internal network drops everything that is not bridge-local, and its
 * containers get no default route and no masquerading, so the host's outside addresses are
 * unreachable.
 *
 * Contract: `createNetwork` validates everything before it writes, and writes only the record
 * (the bridge comes with the first container; the rules are made now and undone if the record
 * cannot be written); `removeNetwork` is idempotent and leaves no bridge, rule, lease or record.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { randomHex } from '../util/random.js';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { withFileLock } from '../native/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { runProgram, which } from '../util/exec.js';
import { BRIDGE, defaultNetwork, hostRoutes, NET_RUN_DIR } from './bridge.js';
import { CNI_VERSION, type ConfList } from './cni.js';
import { applyRules, dropStamp, rulesApplied, type RuleNet } from './firewall.js';
import { dropNetwork } from './dns.js';

export const NETWORKS_DIR = path.join(NET_RUN_DIR, 'networks');
export const USER_BRIDGE_PREFIX = 'tsbr-';

export interface UserNetwork {
  Name: string;
  Id: string;
  Created: string;
  Subnet: string;
  Gateway: string;
  Internal: boolean;
  /** --subnet was given: --ip is allowed (Docker's rule). */
  UserSubnet: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function usage(message: string, hint?: string): TsrunError {
  return new TsrunError('ERR_USAGE', message, { hint, detail: { exitCode: 1 } });
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

export function isIPv4(s: string): boolean {
  const p = s.split('.');
  return p.length === 4 && p.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
}

/** "10.1.2.0/24" → its first and last address; throws Docker's message for anything else. */
export function parseCidr(cidr: string): { first: number; last: number; bits: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !isIPv4(m[1] ?? '') || Number(m[2]) > 32) throw usage(`invalid CIDR address: ${cidr}`);
  const bits = Number(m[2]);
  if (bits > 30) throw usage(`invalid subnet ${cidr}: too small for containers`, 'use a /30 or larger subnet');
  const size = 2 ** (32 - bits);
  const ip = ipToInt(m[1] ?? '');
  const first = ip - (ip % size);
  return { first, last: first + size - 1, bits };
}

export function bridgeName(n: Pick<UserNetwork, 'Id'>): string {
  return `${USER_BRIDGE_PREFIX}${n.Id.slice(0, 10)}`;
}

export function cniName(n: Pick<UserNetwork, 'Id'>): string {
  return `tsrun-net-${n.Id.slice(0, 12)}`;
}

export function networkFile(id: string): string {
  return path.join(NETWORKS_DIR, `${id}.json`);
}

/** Every user network on the host, oldest first. */
export async function listNetworks(): Promise<UserNetwork[]> {
  const names = await fs.readdir(NETWORKS_DIR).catch(() => [] as string[]);
  const out: UserNetwork[] = [];
  for (const n of names) {
    if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
    try {
      out.push(JSON.parse(await fs.readFile(path.join(NETWORKS_DIR, n), 'utf8')) as UserNetwork);
    } catch {
      /* removed meanwhile */
    }
  }
  return out.sort((a, b) => a.Created.localeCompare(b.Created));
}

/** A network by full name, full id or unique id prefix (Docker's lookup order); undefined if none. */
export async function findNetwork(ref: string): Promise<UserNetwork | undefined> {
  const all = await listNetworks();
  const exact = all.find((n) => n.Name === ref || n.Id === ref);
  if (exact) return exact;
  const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((n) => n.Id.startsWith(ref)) : [];
  return byPrefix.length === 1 ? byPrefix[0] : undefined;
}

export function notFound(ref: string, exitCode = 1): TsrunError {
  return new TsrunError('ERR_NETWORK_NOT_FOUND', `network ${ref} not found`, {
    hint: 'see `tsrun network ls`',
    detail: { exitCode },
  });
}

/** The default network's subnet, when it has been chosen (its conflist is written). */
export function defaultSubnet(): string | undefined {
  try {
    const list = JSON.parse(readFileSync(path.join(NET_RUN_DIR, 'tsrun.conflist'), 'utf8')) as ConfList;
    const ipam = list.plugins[0]?.ipam as { ranges?: { subnet: string }[][] } | undefined;
    return ipam?.ranges?.[0]?.[0]?.subnet;
  } catch {
    return undefined;
  }
}

/** Ranges a new subnet must not overlap: host routes (but the default), the default bridge's, every network's. */
function takenRanges(nets: UserNetwork[], routesText: string): { first: number; last: number }[] {
  const out: { first: number; last: number }[] = hostRoutes(routesText).filter(
    (r) => !r.iface.startsWith(USER_BRIDGE_PREFIX),
  );
  const def = defaultSubnet();
  if (def) out.push(parseCidr(def));
  for (const n of nets) out.push(parseCidr(n.Subnet));
  return out;
}

/** Docker's IPAM picks from its pools; tsrun from 10.90.0.0/16 in /24s (podman has 10.89). */
function pickSubnet(taken: { first: number; last: number }[]): string {
  for (let i = 0; i < 256; i++) {
    const first = ipToInt(`10.90.${i}.0`);
    const last = first + 255;
    if (!taken.some((t) => t.first <= last && first <= t.last)) return `10.90.${i}.0/24`;
  }
  throw usage(
    'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
  );
}

export interface CreateOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  driver?: string;
  options?: Record<string, string>;
}

function lockFile(): string {
  return path.join(NET_RUN_DIR, 'networks.lock');
}

export async function createNetwork(o: CreateOptions, env: NodeJS.ProcessEnv): Promise<UserNetwork> {
  if (o.driver !== undefined && o.driver !== 'bridge')
    throw usage(`plugin "${o.driver}" not found`, 'tsrun networks use the bridge driver only');
  if (!NAME_RE.test(o.name))
    throw usage(`invalid network name "${o.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  if (['bridge', 'host', 'none', 'default'].includes(o.name))
    throw usage(`${o.name} is a pre-defined network and cannot be created`);
  if (o.subnet !== undefined) parseCidr(o.subnet);
  if (o.gateway !== undefined && o.subnet === undefined)
    throw usage('invalid network config: gateway needs a subnet', 'give --subnet with --gateway');
  // The default bridge's subnet is chosen now if it was not yet, so no network can take it first.
  await defaultNetwork();
  await fs.mkdir(NETWORKS_DIR, { recursive: true, mode: 0o700 });
  return withFileLock(lockFile(), 'ex', async () => {
    const nets = await listNetworks();
    if (nets.some((n) => n.Name === o.name)) throw usage(`network with name ${o.name} already exists`);
    const taken = takenRanges(nets, readFileSync('/proc/net/route', 'utf8'));
    let subnet: string;
    if (o.subnet !== undefined) {
      const s = parseCidr(o.subnet);
      if (taken.some((t) => t.first <= s.last && s.first <= t.last))
        throw usage('Pool overlaps with other one on this address space', 'choose another --subnet');
      subnet = `${intToIp(s.first)}/${s.bits}`;
    } else {
      subnet = pickSubnet(taken);
    }
    const s = parseCidr(subnet);
    let gateway = intToIp(s.first + 1);
    if (o.gateway !== undefined) {
      if (!isIPv4(o.gateway)) throw usage(`invalid gateway address ${o.gateway}`);
      const g = ipToInt(o.gateway);
      if (g <= s.first || g >= s.last) throw usage(`no matching subnet for gateway ${o.gateway}`);
      gateway = o.gateway;
    }
    const net: UserNetwork = {
      Name: o.name,
      Id: randomHex(32),
      Created: new Date().toISOString(),
      Subnet: subnet,
      Gateway: gateway,
      Internal: Boolean(o.internal),
      UserSubnet: o.subnet !== undefined,
      Labels: o.labels ?? {},
      Options: o.options ?? {},
    };
    await applyAll([...nets, net], env);
    try {
      await writeFileAtomic(networkFile(net.Id), `${JSON.stringify(net, null, 2)}\n`);
    } catch (err) {
      await applyAll(nets, env).catch(() => {});
      throw err;
    }
    return net;
  });
}

/**
 * Tear a network down: rules, bridge, leases, record. The caller has checked it is unused;
 * `stillUnused` runs again under the lock, so a container attaching meanwhile keeps it.
 */
export async function removeNetwork(
  net: UserNetwork,
  env: NodeJS.ProcessEnv,
  stillUnused: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  return withFileLock(lockFile(), 'ex', async () => {
    if (!(await stillUnused())) return false;
    await dropNetwork(net.Id, env);
    await applyAll(
      (await listNetworks()).filter((n) => n.Id !== net.Id),
      env,
    );
    await removeLegacyRules(net, env);
    const ipBin = (await which('ip', env)) ?? (await which('ip', { ...env, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' }));
    if (!ipBin)
      throw new TsrunError('ERR_CNI', 'removing a network: the `ip` command is missing', {
        hint: 'apt-get install iproute2',
      });
    const del = await runProgram(ipBin, ['link', 'delete', bridgeName(net)]);
    if (del.code !== 0 && !/Cannot find device|does not exist/i.test(del.stderr))
      throw new TsrunError('ERR_CNI', `removing bridge ${bridgeName(net)}: ${del.stderr.trim()}`);
    await fs.rm(path.join(NET_RUN_DIR, 'ipam', cniName(net)), { recursive: true, force: true });
    await fs.rm(networkFile(net.Id), { force: true });
    return true;
  });
}

/**
 * The CNI configuration list of one attachment. Only the first network of a container gives it a
 * default route (two would clash); an internal network gives none.
 */
export function userConfList(net: UserNetwork, o: { defaultRoute: boolean; mac: boolean }): ConfList {
  const internal = net.Internal;
  const plugins: ConfList['plugins'] = [
    {
      type: 'bridge',
      bridge: bridgeName(net),
      isGateway: true,
      // Outbound NAT is the network's rule (network/firewall.ts), not one per container.
      ipMasq: false,
      hairpinMode: true,
      capabilities: { ips: true },
      ipam: {
        type: 'host-local',
        dataDir: path.join(NET_RUN_DIR, 'ipam'),
        routes: o.defaultRoute && !internal ? [{ dst: '0.0.0.0/0' }] : [],
        ranges: [[{ subnet: net.Subnet, gateway: net.Gateway }]],
      },
    },
  ];
  if (o.mac) plugins.push({ type: 'tuning', capabilities: { mac: true } });
  return { cniVersion: CNI_VERSION, name: cniName(net), plugins };
}

/** The rules of the default bridge and of `nets` (network/firewall.ts). */
function ruleNets(nets: UserNetwork[]): RuleNet[] {
  const def = defaultSubnet();
  return [
    ...(def ? [{ bridge: BRIDGE, subnet: def, internal: false, isolated: false }] : []),
    ...nets.map((n) => ({ bridge: bridgeName(n), subnet: n.Subnet, internal: n.Internal, isolated: true })),
  ];
}

/** v2: with the published ports' chains (an older tsrun's v1 stamp makes the next start apply them). */
// (v3: the DNAT accepts; a host whose stamp is older applies the rules again at the next start)
export const RULES_STAMP = path.join(NET_RUN_DIR, 'rules.v3');

/** Make tsrun's chains hold the rules of the default bridge and `nets` (hold the networks lock). */
async function applyAll(nets: UserNetwork[], env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  await applyRules(
    ruleNets(nets),
    { userPrefix: USER_BRIDGE_PREFIX, defaultBridge: BRIDGE, stamp: RULES_STAMP, ...(reporter ? { reporter } : {}) },
    env,
  );
}

/**
 * Before a container joins a bridge: the network rules, unless they were applied since boot (a
 * file check; `system prune` applies them again, see `repairRules`). The default network's
 * subnet is chosen first, so its rules are there.
 */
export async function ensureRules(env: NodeJS.ProcessEnv, reporter?: Reporter): Promise<void> {
  if (rulesApplied(RULES_STAMP)) return;
  await defaultNetwork();
  await fs.mkdir(NETWORKS_DIR, { recursive: true, mode: 0o700 });
  await withFileLock(lockFile(), 'ex', async () => {
    // Another start may have applied them while this one waited for the lock.
    if (!rulesApplied(RULES_STAMP)) await applyAll(await listNetworks(), env, reporter);
  });
}

/** Apply the rules again whatever the stamp says (system prune: someone may have flushed iptables). */
export async function repairRules(env: NodeJS.ProcessEnv): Promise<void> {
  await dropStamp(RULES_STAMP);
  await ensureRules(env);
}

/**
 * A network made by an older tsrun also has two chains of its own, jumped to from the firewall
 * plugin's CNI-ADMIN: removed too (one listing when there are none).
 */
async function removeLegacyRules(net: UserNetwork, env: NodeJS.ProcessEnv): Promise<void> {
  const bin =
    (await which('iptables', env)) ?? (await which('iptables', { ...env, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' }));
  if (!bin) return;
  const iptables = (args: string[]) => runProgram(bin, ['-w', ...args]);
  const chain = (dir: 'I' | 'O') => `TSRUN-NET-${net.Id.slice(0, 12)}-${dir}`;
  // Both were made together: one listing tells.
  if ((await iptables(['-S', chain('O')])).code !== 0) return;
  for (const dir of ['O', 'I'] as const) {
    const jump = ['CNI-ADMIN', dir === 'O' ? '-i' : '-o', bridgeName(net), '-j', chain(dir)];
    for (let i = 0; i < 10 && (await iptables(['-D', ...jump])).code === 0; i++);
    await iptables(['-F', chain(dir)]);
    await iptables(['-X', chain(dir)]);
  }
}
