/**
 * What the network events (events.ts NetworkEvent) say beyond what tsrun itself made: the veth
 * pair from a CNI result, and the iptables rules that exist for a container, read back from the
 * kernel with iptables-save (tsrun's chain of its published ports, or what an older tsrun's CNI
 * plugins added in their own chains), so a learner sees the real rules, not tsrun's idea of them.
 *
 * Read-only, and only when someone listens (a silent reporter skips the iptables-save run: `run`
 * is start-up bound).
 */
import { type Reporter } from '../events.js';
import { runProgram, which } from '../util/exec.js';
import type { CniResult } from './cni.js';

/** The container's interface and the host's end of its veth pair (the bridge plugin's result). */
export function vethPair(
  result: CniResult | undefined,
  ifName: string,
): { host: string; container: string } | undefined {
  const ifaces = result?.interfaces ?? [];
  const inside = ifaces.find((i) => i.sandbox && i.name === ifName);
  if (!inside) return undefined;
  // The bridge plugin lists the bridge, the host veth (no sandbox, a mac), then the container's end.
  const hostEnds = ifaces.filter((i) => !i.sandbox && i.name !== undefined);
  const host = hostEnds[hostEnds.length - 1]?.name;
  return host && hostEnds.length > 1 ? { host, container: ifName } : undefined;
}

/**
 * A per-container chain, as opposed to the shared ones: tsrun's published ports (TSRUN-DN-<id12>)
 * or a CNI plugin's (CNI-<hash>, CNI-DN-<hash>: a container an older tsrun attached).
 */
const PRIVATE_CHAIN = /^(?:CNI-(?:DN-|SN-)?[0-9a-f]{16,}|TSRUN-DN-[0-9a-f]{12})$/;

type Rule = { table: string; chain: string; rule: string };

/** Rules of `iptables-save` text that belong to the container with this address or id. */
export function rulesFor(save: string, ip: string, id: string): Rule[] {
  const all: Rule[] = [];
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^-A (\S+) /.exec(line);
    if (m) all.push({ table, chain: m[1] as string, rule: line });
  }
  const ipRe = new RegExp(`(^|[\\s"])${ip.replace(/\./g, '\\.')}(?=[/:\\s"]|$)`);
  const seeds = all.filter((r) => (ip && ipRe.test(r.rule)) || r.rule.includes(id));
  const chains = new Set<string>();
  for (const r of seeds) {
    if (PRIVATE_CHAIN.test(r.chain)) chains.add(`${r.table} ${r.chain}`);
    const jump = /\s-j (\S+)/.exec(r.rule)?.[1];
    if (jump && PRIVATE_CHAIN.test(jump)) chains.add(`${r.table} ${jump}`);
  }
  return all.filter((r) => seeds.includes(r) || chains.has(`${r.table} ${r.chain}`));
}

/** Emit `iptables-rules` for the container (nothing unless a listener is `detailed`, or when iptables-save is missing). */
export async function reportRules(
  reporter: Reporter | undefined,
  o: { id: string; ip: string; network: string; when: 'attach' | 'detach'; env: NodeJS.ProcessEnv },
): Promise<void> {
  if (!reporter?.detailed) return;
  const bin = await which('iptables-save', o.env);
  if (!bin) return;
  const r = await runProgram(bin, [], { env: o.env }).catch(() => undefined);
  const text = r?.code === 0 ? r.stdout : '';
  reporter.emit({
    type: 'iptables-rules',
    id: o.id,
    ip: o.ip,
    network: o.network,
    when: o.when,
    rules: rulesFor(text, o.ip, o.id),
  });
}
