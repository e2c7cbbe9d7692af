/**
 * Published ports (`-p`, `-P`) of a container on a tsrun bridge: the NAT rules that send a host
 * port to the container, written by tsrun as one `iptables-restore --noflush` per container on
 * attach and one on detach. They are the rules the CNI portmap plugin (containernetworking
 * plugins, plugins/meta/portmap, `snat: true`) makes, in chains of tsrun's own; portmap itself
 * ran `iptables` ~19 times per ADD and ~10 (with ip6tables) per DEL, measured in
 * docs/benchmarks.md.
 *
 *   nat TSRUN-HOSTPORT-DNAT  (network-wide, network/firewall.ts: jumped to from PREROUTING and
 *                            OUTPUT for local destinations) one jump per container and protocol:
 *                            `-p tcp -m comment --comment "tsrun ports id: <id>" -m multiport
 *                            --dports 8080,… -j TSRUN-DN-<id12>`
 *   nat TSRUN-DN-<id12>      per published port: mark a connection from the container's subnet
 *                            (hairpin) or from 127.0.0.1 for masquerading, then DNAT it to the
 *                            container's address and port (`-d HOSTIP` with an address)
 *   nat TSRUN-HOSTPORT-MASQ  (network-wide, first in POSTROUTING) masquerades what was marked, so
 *                            the container's answer comes back through the host
 *
 * and `route_localnet` on the bridge, so the kernel routes a 127.0.0.1-sourced packet out of it.
 * The container's networks are IPv4 only: a mapping with an IPv6 host address gets no rule (as
 * portmap skips a host address of another family); the monitor still holds the port.
 *
 * Contract: `publishPorts` writes the chain and its jumps atomically (all or nothing), after the
 * container's address is recorded, so a crash leaves rules only for a recorded attachment;
 * `unpublishPorts` is idempotent: it deletes the jumps it expects and the chain in one restore,
 * and when that fails (rules already gone, or a record that no longer says them) it reads the
 * nat table and removes whatever jumps to the container's chain. `sweepPortRules` (system prune)
 * removes the chains of containers no attachment record names, found by the chain name.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { runProgram, which } from '../util/exec.js';
import type { PortMapping } from './ports.js';

export const HOSTPORT_DNAT = 'TSRUN-HOSTPORT-DNAT';
export const HOSTPORT_MASQ = 'TSRUN-HOSTPORT-MASQ';
/** The mark bit portmap (and netavark) use for "masquerade this": bit 13. */
export const MASQ_MARK = '0x2000/0x2000';
const CHAIN_PREFIX = 'TSRUN-DN-';

/** The container's own chain (21 characters, under iptables' 28). */
export function portChain(id: string): string {
  return `${CHAIN_PREFIX}${id.slice(0, 12)}`;
}

export interface PortTarget {
  id: string;
  /** The container's IPv4 address and its network's prefix length. */
  ip: string;
  prefixLen: number;
  ports: PortMapping[];
}

function subnetOf(ip: string, bits: number): string {
  const n = ip.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const first = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (first >>> s) & 255).join('.')}/${bits}`;
}

/** The mappings that get rules: IPv4 or any host address. */
function v4(ports: PortMapping[]): PortMapping[] {
  return ports.filter((p) => !p.hostIP || net.isIPv4(p.hostIP));
}

/** The jumps from TSRUN-HOSTPORT-DNAT, one per protocol and 15 ports (multiport's limit). */
function jumps(t: PortTarget): string[] {
  const out: string[] = [];
  for (const proto of ['sctp', 'tcp', 'udp']) {
    const ports = [
      ...new Set(
        v4(t.ports)
          .filter((p) => p.protocol === proto)
          .map((p) => p.hostPort),
      ),
    ];
    for (let i = 0; i < ports.length; i += 15)
      out.push(
        `${HOSTPORT_DNAT} -p ${proto} -m comment --comment "tsrun ports id: ${t.id}" -m multiport --dports ${ports.slice(i, i + 15).join(',')} -j ${portChain(t.id)}`,
      );
  }
  return out;
}

/** The iptables-restore input that publishes `t.ports` (in iptables-save's own spelling). */
export function publishText(t: PortTarget): string {
  const chain = portChain(t.id);
  const lines = ['*nat', `:${chain} - [0:0]`];
  const subnet = subnetOf(t.ip, t.prefixLen);
  for (const p of v4(t.ports)) {
    const dst = p.hostIP && p.hostIP !== '0.0.0.0' ? `-d ${p.hostIP}/32 ` : '';
    const match = `-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort}`;
    const mark = `-j MARK --set-xmark ${MASQ_MARK}`;
    lines.push(
      `-A ${chain} -s ${subnet} ${dst}${match} ${mark}`,
      `-A ${chain} -s 127.0.0.1/32 ${dst}${match} ${mark}`,
      `-A ${chain} ${dst}${match} -j DNAT --to-destination ${t.ip}:${p.containerPort}`,
    );
  }
  for (const j of jumps(t)) lines.push(`-A ${j}`);
  return `${[...lines, 'COMMIT'].join('\n')}\n`;
}

/** The input that removes what `publishText(t)` added (fails if any of it is missing). */
export function unpublishText(t: PortTarget): string {
  const chain = portChain(t.id);
  return `${['*nat', ...jumps(t).map((j) => `-D ${j}`), `:${chain} - [0:0]`, `-X ${chain}`, 'COMMIT'].join('\n')}\n`;
}

/**
 * The input that removes container `id12`'s chain and every rule jumping to it, as `save` (the
 * nat table of iptables-save) shows them; undefined when there is none.
 */
export function removalFromSave(save: string, id12: string): string | undefined {
  const chain = `${CHAIN_PREFIX}${id12}`;
  const lines = save.split('\n');
  const exists = lines.some((l) => l.trim() === `:${chain} - [0:0]` || l.startsWith(`:${chain} `));
  const refs = lines.filter((l) => l.startsWith('-A ') && l.endsWith(` -j ${chain}`)).map((l) => `-D${l.slice(2)}`);
  if (!exists && refs.length === 0) return undefined;
  return `${['*nat', ...refs, ...(exists ? [`:${chain} - [0:0]`, `-X ${chain}`] : []), 'COMMIT'].join('\n')}\n`;
}

/** The short ids of the containers that have a chain in `save`. */
export function chainIds(save: string): string[] {
  const re = new RegExp(`^:${CHAIN_PREFIX}([0-9a-f]{12}) `);
  return save.split('\n').flatMap((l) => re.exec(l)?.[1] ?? []);
}

async function tool(name: string, env: NodeJS.ProcessEnv): Promise<string> {
  const bin = (await which(name, env)) ?? (await which(name, { ...env, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' }));
  if (!bin)
    throw new TsrunError('ERR_CNI', `publishing ports: the \`${name}\` command is missing`, {
      hint: 'apt-get install iptables',
    });
  return bin;
}

async function restore(text: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  return runProgram(await tool('iptables-restore', env), ['-w', '--noflush'], { input: text });
}

/**
 * Publish `t.ports` on `bridge`. `repair` applies the network-wide rules again (their chains may
 * have been flushed by someone): called once if the restore fails, then the restore is retried.
 */
export async function publishPorts(
  t: PortTarget & { bridge: string },
  o: { env: NodeJS.ProcessEnv; reporter?: Reporter; repair?: () => Promise<void> },
): Promise<void> {
  if (v4(t.ports).length === 0) return;
  const started = performance.now();
  // A 127.0.0.1-sourced connection DNATed to the bridge: without this the kernel drops it as martian.
  if (/^[A-Za-z0-9._-]{1,15}$/.test(t.bridge))
    await fs.writeFile(`/proc/sys/net/ipv4/conf/${t.bridge}/route_localnet`, '1').catch(() => {});
  const text = publishText(t);
  let r = await restore(text, o.env);
  if (r.code !== 0 && o.repair) {
    await o.repair();
    r = await restore(text, o.env);
  }
  if (r.code !== 0)
    throw new TsrunError(
      'ERR_CNI',
      `publishing the ports of container ${t.id.slice(0, 12)}: iptables-restore: ${r.stderr.trim()}`,
      { detail: { input: text } },
    );
  o.reporter?.emit({
    type: 'port-rules',
    id: t.id,
    action: 'add',
    input: text,
    ms: Math.round(performance.now() - started),
  });
}

/** Remove container `id`'s port rules (idempotent); `t` is what its record says was published. */
export async function unpublishPorts(
  id: string,
  t: PortTarget | undefined,
  o: { env: NodeJS.ProcessEnv; reporter?: Reporter },
): Promise<void> {
  const started = performance.now();
  let text = t && v4(t.ports).length > 0 ? unpublishText(t) : undefined;
  if (!text || (await restore(text, o.env)).code !== 0) {
    // Not as recorded (a crash before they were written, a flush, no record): as the kernel has them.
    const save = await runProgram(await tool('iptables-save', o.env), ['-t', 'nat']);
    text = save.code === 0 ? removalFromSave(save.stdout, id.slice(0, 12)) : undefined;
    if (!text) return;
    const r = await restore(text, o.env);
    if (r.code !== 0)
      throw new TsrunError(
        'ERR_CNI',
        `removing the port rules of container ${id.slice(0, 12)}: iptables-restore: ${r.stderr.trim()}`,
        { detail: { input: text } },
      );
  }
  o.reporter?.emit({
    type: 'port-rules',
    id,
    action: 'remove',
    input: text,
    ms: Math.round(performance.now() - started),
  });
}

/**
 * Remove the port chains (and their jumps) of containers `known` does not name (their full or
 * short ids): rules whose attachment record went without them. `known` is asked after the rules
 * are read, so a container attaching meanwhile (record first, then rules) is never taken for one.
 * Returns the short ids it removed.
 */
export async function sweepPortRules(known: () => Promise<string[]>, env: NodeJS.ProcessEnv): Promise<string[]> {
  const bin =
    (await which('iptables-save', env)) ?? (await which('iptables-save', { ...env, PATH: '/usr/sbin:/sbin' }));
  if (!bin) return [];
  const save = await runProgram(bin, ['-t', 'nat']);
  const ids = save.code === 0 ? chainIds(save.stdout) : [];
  if (ids.length === 0) return [];
  const keep = new Set((await known()).map((id) => id.slice(0, 12)));
  const removed: string[] = [];
  for (const id12 of ids) {
    if (keep.has(id12)) continue;
    const text = removalFromSave(save.stdout, id12);
    if (text && (await restore(text, env)).code === 0) removed.push(id12);
  }
  return removed;
}
