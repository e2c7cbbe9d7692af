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
 *                             what leaves a bridge and the answers coming back: what the CNI
 *                             firewall plugin's per-address accepts did, so a host whose FORWARD
 *                             policy is DROP still forwards
 *   filter TSRUN-ISOLATION    user networks cut off from every other tsrun bridge and, when
 *                             internal, from everything but their own bridge (Docker's
 *                             DOCKER-ISOLATION idea)
 *
 * The CNI plugins still make everything per container (namespace, veth, address, routes, and the
 * DNAT rules of `-p`, by portmap); measured in docs/benchmarks.md, the per-container `ipMasq` and
 * `firewall` plugin ran iptables ~17 times per ADD and again per DEL.
 *
 * Contract: `applyRules` makes the chains hold exactly the rules of `nets` (idempotent; callers
 * serialise it under the networks lock and pass every network); `rulesStamp` is written after a
 * successful apply, so a container start only checks that file; `dropStamp` makes the next start
 * apply again (system prune, a suspected flush).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import { runProgram, which } from '../util/exec.js';

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

/** The iptables-restore input for `nets` (tables nat and filter; only tsrun's chains are touched). */
export function rulesText(nets: RuleNet[], o: { userPrefix: string; defaultBridge: string }): string {
  const nat = [`*nat`, `:${CHAINS.nat} - [0:0]`];
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

/** The jumps from the built-in chains into tsrun's, made once (a check, then an insert). */
const HOOKS: { table: string; chain: string; insert: string[] }[] = [
  { table: 'nat', chain: 'POSTROUTING', insert: ['-A', 'POSTROUTING'] },
  { table: 'filter', chain: 'FORWARD', insert: ['-I', 'FORWARD', '1'] },
];

/** Make tsrun's chains hold exactly the rules of `nets` (see the module comment). */
export async function applyRules(
  nets: RuleNet[],
  o: { userPrefix: string; defaultBridge: string; stamp: string; reporter?: Reporter },
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const started = performance.now();
  const text = rulesText(nets, o);
  const r = await runProgram(await tool('iptables-restore', env), ['-w', '--noflush'], { input: text });
  if (r.code !== 0)
    throw new TsrunError('ERR_CNI', `setting up the network rules: iptables-restore: ${r.stderr.trim()}`, {
      detail: { input: text },
    });
  const iptables = await tool('iptables', env);
  for (const h of HOOKS) {
    const target = h.table === 'nat' ? CHAINS.nat : CHAINS.forward;
    const has = await runProgram(iptables, ['-w', '-t', h.table, '-C', h.chain, '-j', target]);
    if (has.code === 0) continue;
    const add = await runProgram(iptables, ['-w', '-t', h.table, ...h.insert, '-j', target]);
    if (add.code !== 0)
      throw new TsrunError('ERR_CNI', `setting up the network rules: iptables ${h.chain}: ${add.stderr.trim()}`);
  }
  await fs.mkdir(path.dirname(o.stamp), { recursive: true, mode: 0o700 });
  await fs.writeFile(o.stamp, text);
  o.reporter?.emit({ type: 'network-rules', input: text, ms: Math.round(performance.now() - started) });
}

/** Whether the rules were applied since boot (the stamp lives in /run, as the rules do). */
export async function rulesApplied(stamp: string): Promise<boolean> {
  try {
    await fs.access(stamp);
    return true;
  } catch {
    return false;
  }
}

export async function dropStamp(stamp: string): Promise<void> {
  await fs.rm(stamp, { force: true });
}
