/**
 * A damaged network attachment record (/run/tsrun/net/containers/<id>.json that is not JSON or
 * not an attachment): it is set aside (util/corrupt.ts) and what it described is torn down from
 * what is still known — the id (its file name), the network's configuration list, and the
 * address host-local leased to that id (its lease files hold the container id) — so the
 * namespace, veth, lease and port rules do not outlive it. Port rules are tsrun's chain
 * TSRUN-DN-<id12> (network/published.ts), or, for a container an older tsrun attached, portmap's
 * (read back from its chains, and its DEL run with them).
 *
 * Contract: only a namespace no process is in is torn down (the record's store is unknown, so
 * "its container has stopped" is judged by the namespace itself); one still in use is only set
 * aside, and the warning says so. CNI DEL is idempotent, so tearing down twice is harmless.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runProgram, which } from '../util/exec.js';
import { deleteNetns } from './netns.js';
import { setAside } from '../util/corrupt.js';
import { cniPath, CNI_VERSION, delList, type CniResult, type ConfList } from './cni.js';
import { unpublishPorts } from './published.js';

/** Why `v` is not an attachment record for `id`, or undefined. */
export function checkAttachment(v: unknown, id: string): string | undefined {
  const a = v as { id?: unknown; netns?: unknown; conflist?: { plugins?: unknown }; ports?: unknown } | null;
  if (!a || typeof a !== 'object') return 'not an object';
  if (a.id !== id) return `its id is not ${id}`;
  if (typeof a.netns !== 'string' || !Array.isArray(a.conflist?.plugins) || !Array.isArray(a.ports))
    return 'not a network attachment';
  return undefined;
}

async function ipCommand(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
  const bin = await which('ip', env);
  if (!bin) return { code: 127, stdout: '' };
  return runProgram(bin, args);
}

/** Does a process still live in network namespace `name`? */
export async function netnsInUse(name: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await ipCommand(['netns', 'pids', name], env);
  return r.code === 0 && r.stdout.trim() !== '';
}

/** The address host-local leased to `id` under `dataDir/<network>/`, with the range's prefix. */
async function leasedAddress(list: ConfList, id: string): Promise<string | undefined> {
  const ipam = list.plugins.find((p) => p.type === 'bridge')?.ipam as
    { dataDir?: string; ranges?: { subnet: string }[][] } | undefined;
  const subnet = ipam?.ranges?.[0]?.[0]?.subnet;
  if (!ipam?.dataDir || !subnet) return undefined;
  const dir = path.join(ipam.dataDir, list.name);
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(name)) continue;
    const owner = (await fs.readFile(path.join(dir, name), 'utf8').catch(() => '')).split(/\s/)[0];
    if (owner === id) return `${name}/${subnet.split('/')[1]}`;
  }
  return undefined;
}

/**
 * What an ADD returned, as far as a DEL needs it (the address), rebuilt from the lease: for a
 * record written before its ADD finished (a `run` killed mid-connect), whose firewall rules the
 * firewall plugin's DEL can only find through the address.
 */
export async function resultFromLease(list: ConfList, id: string): Promise<CniResult | undefined> {
  const address = await leasedAddress(list, id);
  return address ? { cniVersion: CNI_VERSION, ips: [{ address }] } : undefined;
}

/**
 * The port mappings an older tsrun's portmap made for `id`, read back from its NAT rules
 * (CNI-HOSTPORT-DNAT jumps to a per-container chain, commented with the id): portmap's DEL needs
 * them to find its rules.
 */
async function portsFromRules(id: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>[]> {
  const bin = await which('iptables-save', env);
  if (!bin) return [];
  const lines = (await runProgram(bin, ['-t', 'nat'])).stdout.split('\n');
  const chains = new Set(
    lines
      .filter((l) => l.startsWith('-A CNI-HOSTPORT-DNAT ') && l.includes(`id: \\"${id}\\"`))
      .map((l) => / -j (CNI-DN-\S+)/.exec(l)?.[1])
      .filter((c): c is string => c !== undefined),
  );
  const out = new Map<string, Record<string, unknown>>();
  for (const l of lines) {
    const chain = /^-A (\S+) /.exec(l)?.[1];
    if (!chain || !chains.has(chain)) continue;
    const m = / -p (tcp|udp|sctp) .*--dport (\d+) -j DNAT --to-destination \[?[^\]\s]*?\]?:(\d+)/.exec(l);
    if (!m) continue;
    const hostIP = / -d (\S+?)(\/32)? /.exec(l)?.[1];
    const p = { hostPort: Number(m[2]), containerPort: Number(m[3]), protocol: m[1], ...(hostIP ? { hostIP } : {}) };
    out.set(`${p.protocol}/${p.hostIP ?? ''}/${p.hostPort}`, p);
  }
  return [...out.values()];
}

/**
 * Set aside the damaged record `file` of attachment `id` and, unless its namespace is in use,
 * tear the attachment down with `list` (the network it was made on). Returns whether it was.
 */
export async function handleDamaged(o: {
  file: string;
  id: string;
  problem: string;
  list: ConfList;
  netnsName: string;
  env: NodeJS.ProcessEnv;
}): Promise<boolean> {
  const inUse = await netnsInUse(o.netnsName, o.env);
  const moved = await setAside(
    o.file,
    o.problem,
    inUse
      ? `the network of container ${o.id.slice(0, 12)} (still running: stop it, then remove namespace ${o.netnsName} with \`ip netns delete\`)`
      : `the network record of container ${o.id.slice(0, 12)} (its namespace, address and rules are removed)`,
  );
  if (moved === undefined || inUse) return false;
  const result = await resultFromLease(o.list, o.id);
  const legacyPorts = await portsFromRules(o.id, o.env);
  await unpublishPorts(o.id, undefined, { env: o.env }).catch(() => {});
  await delList(
    legacyPorts.length > 0 && !o.list.plugins.some((p) => p.type === 'portmap')
      ? {
          ...o.list,
          plugins: [...o.list.plugins, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
        }
      : o.list,
    {
      containerId: o.id,
      netns: `/run/netns/${o.netnsName}`,
      ifName: 'eth0',
      paths: cniPath(o.env),
      pathEnv: o.env.PATH,
    },
    result,
    { portMappings: legacyPorts },
  ).catch(() => {});
  await deleteNetns(o.netnsName, o.env).catch(() => {});
  return true;
}
