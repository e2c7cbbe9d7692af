/**
 * The network-wide iptables rules of every tsrun bridge (the default `tsrun0` and each user
 * network), in three chains of tsrun's own that are rebuilt as a whole, atomically, by one
 * `iptables-restore --noflush` (Docker's and netavark's model: rules per network, not per
 * container, so starting a container runs no iptables at all):
 *
 *   nat    TSRUN-POSTROUTING  (jumped to from POSTROUTING) outbound NAT of each non-internal
 *                             network: what the CNI bridge plugin's `ipMasq` did per container
 *                             (its chain accepts the subnet and multicast, masquerades the rest)
 *   filter TSRUN-FORWARD      (jumped to from FORWARD, first) runs TSRUN-ISOLATION, then accepts
 *                             what leaves a bridge and the answers coming back (what the CNI
 *                             firewall plugin's per-address accepts did), and, on a network that
 *                             is not internal, new connections into the bridge that were DNATed
 *                             (a published port reached from another machine: Docker's per-port
 *                             accepts in its DOCKER chain), so a host whose FORWARD policy is DROP
 *                             (Docker's) still forwards
 *   filter TSRUN-ISOLATION    user networks cut off from every other tsrun bridge and, when
 *                             internal, from everything but their own bridge (Docker's
 *                             DOCKER-ISOLATION idea)
 *   nat    TSRUN-HOSTPORT-MASQ (first in POSTROUTING) masquerades connections to a published
 *                             port that came from 127.0.0.1 or a container (marked by the port rules)
 *   nat    TSRUN-HOSTPORT-DNAT (from PREROUTING and OUTPUT, local destinations) holds each
 *                             container's jumps to its published ports (network/published.ts):
 *                             made here when missing, never flushed here
 *
 * The CNI plugins make the rest per container (namespace, veth, address, routes); the published
 * ports are one iptables-restore per container (network/published.ts). Measured in
 * docs/benchmarks.md: the per-container `ipMasq` and `firewall` plugin ran iptables ~17 times per
 * ADD and again per DEL, portmap ~19 per ADD and ~10 per DEL.
 *
 * Contract: `applyRules` makes the chains hold exactly the rules of `nets` (idempotent; callers
 * serialise it under the networks lock and pass every network) and the jumps into them exist,
 * in one iptables-save and one iptables-restore; `rulesStamp` is written after a successful
 * apply, so a container start only checks that file; `dropStamp` makes the next start apply
 * again (system prune, a suspected flush).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { runProgram, which } from '../util/exec.js';
import { HOSTPORT_DNAT, HOSTPORT_MASQ, MASQ_MARK } from './published.js';

/** One bridge as the rules see it. */
export interface RuleNet {
  bridge: string;
  subnet: string;
  /** No way out: no NAT, and only its own bridge is reachable. */
  internal: boolean;
  /** A user network: isolated from every other tsrun bridge (the default bridge is not, as Docker's). */
  isolated: boolean;
}

export const CHAINS = { nat: 'TSRUN-POSTROUTING', forward: 'TSRUN-FORWARD', isolation: 'TSRUN-ISOLATION' };

/** The jumps from the built-in chains into tsrun's (as iptables-save spells them), and where they go. */
export const HOOKS: { table: string; chain: string; spec: string; first: boolean }[] = [
  { table: 'nat', chain: 'POSTROUTING', spec: `-j ${HOSTPORT_MASQ}`, first: true },
  { table: 'nat', chain: 'POSTROUTING', spec: `-j ${CHAINS.nat}`, first: false },
  { table: 'nat', chain: 'PREROUTING', spec: `-m addrtype --dst-type LOCAL -j ${HOSTPORT_DNAT}`, first: false },
  { table: 'nat', chain: 'OUTPUT', spec: `-m addrtype --dst-type LOCAL -j ${HOSTPORT_DNAT}`, first: false },
  { table: 'filter', chain: 'FORWARD', spec: `-j ${CHAINS.forward}`, first: true },
];

/** The rule lines of each table in iptables-save text. */
function savedRules(save: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let table = '';
  for (const l of save.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1).trim();
    else if (l.startsWith('-A ') || l.startsWith(':')) {
      if (!out.has(table)) out.set(table, new Set());
      out.get(table)?.add(l.startsWith(':') ? (l.split(' ')[0] ?? l) : l);
    }
  }
  return out;
}

/**
 * The iptables-restore input for `nets` (tables nat and filter; only tsrun's chains are touched),
 * with the jumps into them and the published ports' chain that `present` (iptables-save's output,
 * undefined: nothing is there) lacks.
 */
export function rulesText(nets: RuleNet[], o: { userPrefix: string; defaultBridge: string }, present?: string): string {
  const have = savedRules(present ?? '');
  const nat = [
    `*nat`,
    `:${CHAINS.nat} - [0:0]`,
    `:${HOSTPORT_MASQ} - [0:0]`,
    ...(have.get('nat')?.has(`:${HOSTPORT_DNAT}`) ? [] : [`:${HOSTPORT_DNAT} - [0:0]`]),
    `-A ${HOSTPORT_MASQ} -m mark --mark ${MASQ_MARK} -j MASQUERADE`,
  ];
  const filter = [
    `*filter`,
    `:${CHAINS.forward} - [0:0]`,
    `:${CHAINS.isolation} - [0:0]`,
    `-A ${CHAINS.forward} -j ${CHAINS.isolation}`,
  ];
  for (const n of nets) {
    if (!n.internal) {
      nat.push(
        `-A ${CHAINS.nat} -s ${n.subnet} -d ${n.subnet} -j RETURN`,
        `-A ${CHAINS.nat} -s ${n.subnet} -d 224.0.0.0/4 -j RETURN`,
        `-A ${CHAINS.nat} -s ${n.subnet} ! -o ${n.bridge} -j MASQUERADE`,
      );
    }
    filter.push(
      `-A ${CHAINS.forward} -i ${n.bridge} -j ACCEPT`,
      `-A ${CHAINS.forward} -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    );
    if (!n.internal) filter.push(`-A ${CHAINS.forward} -o ${n.bridge} -m conntrack --ctstate DNAT -j ACCEPT`);
    if (n.isolated) {
      // Out of this bridge: to itself fine; to another tsrun bridge (or, internal, anywhere) dropped.
      filter.push(`-A ${CHAINS.isolation} -i ${n.bridge} -o ${n.bridge} -j RETURN`);
      if (n.internal) {
        filter.push(`-A ${CHAINS.isolation} -i ${n.bridge} -j DROP`, `-A ${CHAINS.isolation} -o ${n.bridge} -j DROP`);
      } else {
        for (const other of [`${o.userPrefix}+`, o.defaultBridge]) {
          filter.push(
            `-A ${CHAINS.isolation} -i ${n.bridge} -o ${other} -j DROP`,
            `-A ${CHAINS.isolation} -o ${n.bridge} -i ${other} -j DROP`,
          );
        }
      }
    }
  }
  for (const h of HOOKS) {
    if (have.get(h.table)?.has(`-A ${h.chain} ${h.spec}`)) continue;
    (h.table === 'nat' ? nat : filter).push(h.first ? `-I ${h.chain} 1 ${h.spec}` : `-A ${h.chain} ${h.spec}`);
  }
  return `${[...nat, 'COMMIT', ...filter, 'COMMIT'].join('\n')}\n`;
}

async function tool(name: string, env: NodeJS.ProcessEnv): Promise<string> {
  const bin = (await which(name, env)) ?? (await which(name, { ...env, PATH: '/usr/sbin:/sbin:/usr/bin:/bin' }));
  if (!bin)
    throw new TsrunError('ERR_CNI', `setting up the network rules: the \`${name}\` command is missing`, {
      hint: 'apt-get install iptables',
    });
  return bin;
}

/** Make tsrun's chains hold exactly the rules of `nets` (see the module comment). */
export async function applyRules(
  nets: RuleNet[],
  o: { userPrefix: string; defaultBridge: string; stamp: string; reporter?: Reporter },
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const started = performance.now();
  // What is there decides which jumps (and whether the ports' chain) the restore adds.
  const save = await runProgram(await tool('iptables-save', env), []);
  if (save.code !== 0)
    throw new TsrunError('ERR_CNI', `setting up the network rules: iptables-save: ${save.stderr.trim()}`);
  const text = rulesText(nets, o, save.stdout);
  const r = await runProgram(await tool('iptables-restore', env), ['-w', '--noflush'], { input: text });
  if (r.code !== 0)
    throw new TsrunError('ERR_CNI', `setting up the network rules: iptables-restore: ${r.stderr.trim()}`, {
      detail: { input: text },
    });
  await fs.mkdir(path.dirname(o.stamp), { recursive: true, mode: 0o700 });
  await fs.writeFile(o.stamp, text);
  o.reporter?.emit({ type: 'network-rules', input: text, ms: Math.round(performance.now() - started) });
}

/** Whether the rules were applied since boot (the stamp lives in /run, as the rules do). */
export function rulesApplied(stamp: string): boolean {
  return existsSync(stamp);
}

export async function dropStamp(stamp: string): Promise<void> {
  await fs.rm(stamp, { force: true });
}
