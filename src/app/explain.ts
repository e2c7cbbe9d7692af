/**
 * `tsrun explain CONTAINER [--check]`: a running container as the host sees it, stage by stage —
 * the host pid of its pid 1 and every process in its pid namespace, its namespaces (inode of
 * each, and whether it is the host's), its cgroup with the current memory and pids use, its root
 * mount, its network namespace, address, veth pair and published ports with the DNAT rules that
 * carry them, and the monitor that owns it — each with a command a person can type to look at
 * the same thing themselves.
 *
 * With `check`, each fact is also compared with what the container's record (container.json)
 * and spec (bundle/config.json) say it should be; a fact that differs carries `ok: false` and
 * what was expected. What is read: /proc/<pid>/{ns,cgroup,mountinfo,status,cmdline}, the cgroup
 * files (v1 or v2, whichever the process's /proc/<pid>/cgroup names), `ip -json` inside the
 * container's named netns and on the host, and `iptables -t nat -S`. Nothing is changed.
 *
 * Contract: read-only; a container that is not running is an ERR_CONTAINER_STATE error. The
 * container may change its own state meanwhile (it is an adversary): every read is of the host's
 * view (/proc, the host's netns), never of paths inside its root.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { BRIDGE, netnsName, netnsPath } from '../network/bridge.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { Spec } from '../spec/types.js';
import { portChain } from '../network/published.js';
import { runProgram, which } from '../util/exec.js';
import type { AppContext } from './context.js';
import { openEnv, rootfsMount, storageDriver } from './containers.js';

export interface Fact {
  stage: 'container' | 'process' | 'namespaces' | 'cgroup' | 'root' | 'network' | 'ports' | 'monitor';
  text: string;
  /** With check: whether it matches the record and spec (undefined: nothing to compare). */
  ok?: boolean;
  /** With check, when not ok: what the record or spec says. */
  expected?: string;
  /** A command that shows the same thing. */
  look?: string;
}

export interface Explanation {
  id: string;
  name: string;
  facts: Fact[];
}

const read = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};
const link = (p: string): string | undefined => {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
};

/** `NSpid:` of /proc/<pid>/status: the pid in each nested pid namespace, outermost first. */
function nsPids(pid: number): number[] {
  const line = /^NSpid:\s*(.*)$/m.exec(read(`/proc/${pid}/status`) ?? '')?.[1] ?? '';
  return line.split(/\s+/).filter(Boolean).map(Number);
}

const cmdline = (pid: number) =>
  (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);

/** Every host process in the pid namespace whose inode is `ns`: [host pid, pid inside, argv]. */
function processesIn(ns: string): [number, number, string[]][] {
  const out: [number, number, string[]][] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const pid = Number(n);
    if (link(`/proc/${pid}/ns/pid`) !== ns) continue;
    out.push([pid, nsPids(pid).at(-1) ?? 0, cmdline(pid)]);
  }
  return out.sort((a, b) => a[1] - b[1]);
}

const NS_FILES: Record<string, string> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  cgroup: 'cgroup',
  user: 'user',
};

/** The mountinfo line whose mount point is `/` in `pid`'s mount namespace (the last one wins). */
function rootMount(pid: number): { fstype: string; source: string; options: string[] } | undefined {
  let found;
  for (const line of (read(`/proc/${pid}/mountinfo`) ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    if (left.split(' ')[4] !== '/') continue;
    const [fstype = '', source = '', opts = ''] = right.split(' ');
    found = { fstype, source, options: opts.split(',') };
  }
  return found;
}

/** The cgroup directory of `pid` for a v1 controller (or the v2 unified one). */
function cgroupDir(pid: number, controller: string): string | undefined {
  for (const line of (read(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
    const [, ctrls = '', p = ''] = line.split(':');
    if (ctrls.split(',').includes(controller)) return path.join('/sys/fs/cgroup', controller, p);
  }
  const unified = /^0::(.*)$/m.exec(read(`/proc/${pid}/cgroup`) ?? '')?.[1];
  return unified !== undefined && statOk(path.join('/sys/fs/cgroup', unified, 'cgroup.procs'))
    ? path.join('/sys/fs/cgroup', unified)
    : undefined;
}

const statOk = (p: string) => {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
};

function num(s: string | undefined): number | undefined {
  const t = s?.trim();
  if (!t) return undefined;
  if (t === 'max') return Infinity;
  return Number.isFinite(Number(t)) ? Number(t) : undefined;
}

async function tool(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const bin = await which(name, env);
  if (!bin) return undefined;
  const r = await runProgram(bin, args);
  return r.code === 0 ? r.stdout : undefined;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  link_index?: number;
  master?: string;
  address?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function explainContainer(
  ctx: AppContext,
  query: string,
  o: { check?: boolean } = {},
): Promise<Explanation> {
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  const r = c.record;
  if (c.observed.status !== 'running' || !c.observed.pid) {
    throw new TsrunError('ERR_CONTAINER_STATE', `container ${r.name} is not running`, {
      hint: `start it first: tsrun start ${r.name}`,
    });
  }
  const pid = c.observed.pid;
  const spec = JSON.parse(read(c.paths.config) ?? '{}') as Partial<Spec>;
  const facts: Fact[] = [];
  const add = (f: Fact) => facts.push(o.check ? f : { ...f, ok: undefined, expected: undefined });
  const ns = (type: string, p: number | 'self') => link(`/proc/${p}/ns/${NS_FILES[type] ?? type}`);

  add({
    stage: 'container',
    text: `${r.name} (${r.id.slice(0, 12)}), running, image ${r.image} (${r.imageId.slice(0, 19)})`,
    look: `tsrun inspect ${r.name}`,
  });

  // Process: runc started the container's process as pid 1 of a new pid namespace.
  const inside = nsPids(pid);
  add({
    stage: 'process',
    text: `pid 1 inside is host pid ${pid}: ${cmdline(pid).join(' ')}`,
    ok: inside.at(-1) === 1 || !spec.linux?.namespaces?.some((n) => n.type === 'pid'),
    expected: `host pid ${pid} to be pid 1 of its pid namespace (it is ${inside.at(-1) ?? 'gone'})`,
    look: `ps -o pid,ppid,user,args -p ${pid}`,
  });
  const pidNs = ns('pid', pid);
  if (pidNs && pidNs !== ns('pid', 'self')) {
    const procs = processesIn(pidNs);
    add({
      stage: 'process',
      text: `${procs.length} process${procs.length === 1 ? '' : 'es'}: ${procs.map(([h, i, argv]) => `${h} (pid ${i} inside) ${argv[0] ?? ''}`).join(', ')}`,
      look: `tsrun top ${r.name}`,
    });
  }

  // Namespaces: the spec lists the ones to make (or join, with a path); the rest are the host's.
  const wanted = new Map<string, string | undefined>((spec.linux?.namespaces ?? []).map((n) => [n.type, n.path]));
  for (const type of Object.keys(NS_FILES)) {
    const mine = ns(type, pid);
    const host = ns(type, 'self');
    if (!mine) continue;
    const own = mine !== host;
    const joinPath = wanted.get(type);
    const expectOwn = wanted.has(type);
    let expected = expectOwn ? `its own ${type} namespace` : `the host's ${type} namespace`;
    let ok = own === expectOwn;
    if (joinPath) {
      const want = statInode(joinPath);
      expected = `the namespace at ${joinPath}${want ? ` (${type === 'network' ? 'net' : type}:[${want}])` : ''}`;
      ok = want !== undefined && mine.endsWith(`[${want}]`);
    }
    add({
      stage: 'namespaces',
      text: `${type.padEnd(8)}${mine.padEnd(24)}${own ? `own (host: ${host})` : "the host's"}`,
      ok,
      expected,
      look: `ls -l /proc/${pid}/ns/${NS_FILES[type]} /proc/self/ns/${NS_FILES[type]}`,
    });
  }

  // Cgroup: runc puts the process in spec.linux.cgroupsPath; its limits are the spec's resources.
  const cgWant = spec.linux?.cgroupsPath;
  const memDir = cgroupDir(pid, 'memory');
  const pidsDir = cgroupDir(pid, 'pids');
  const v2 = memDir !== undefined && !memDir.startsWith('/sys/fs/cgroup/memory/');
  if (memDir) {
    const rel = v2 ? memDir.slice('/sys/fs/cgroup'.length) : memDir.slice('/sys/fs/cgroup/memory'.length);
    add({
      stage: 'cgroup',
      text: `${memDir}${v2 ? ' (cgroup v2)' : ' (cgroup v1 memory controller)'}`,
      ok: cgWant === undefined || rel.endsWith(cgWant),
      expected: `a cgroup ending in ${cgWant}`,
      look: `cat /proc/${pid}/cgroup`,
    });
    const usage = num(read(path.join(memDir, v2 ? 'memory.current' : 'memory.usage_in_bytes')));
    const limit = num(read(path.join(memDir, v2 ? 'memory.max' : 'memory.limit_in_bytes')));
    const wantLimit = spec.linux?.resources?.memory?.limit;
    add({
      stage: 'cgroup',
      text: `memory: ${usage ?? '?'} bytes used, limit ${limit === undefined || limit === Infinity || limit >= 2 ** 62 ? 'none' : limit}`,
      ok: wantLimit === undefined || wantLimit === limit,
      expected: `limit ${wantLimit}`,
      look: `cat ${path.join(memDir, v2 ? 'memory.current' : 'memory.usage_in_bytes')}`,
    });
  }
  if (pidsDir) {
    const current = num(read(path.join(pidsDir, 'pids.current')));
    const max = num(read(path.join(pidsDir, 'pids.max')));
    const wantMax = spec.linux?.resources?.pids?.limit;
    add({
      stage: 'cgroup',
      text: `pids: ${current ?? '?'} now, limit ${max === undefined || max === Infinity ? 'none' : max}`,
      ok: wantMax === undefined || wantMax <= 0 || wantMax === max,
      expected: `limit ${wantMax}`,
      look: `cat ${path.join(pidsDir, 'pids.current')}`,
    });
  }

  // Root: the overlay tsrun mounted at bundle/rootfs, which runc made the container's `/`.
  const root = rootMount(pid);
  const plan = rootfsMount(env, c);
  if (root) {
    const lower = root.options.find((x) => x.startsWith('lowerdir='))?.slice(9) ?? '';
    const upper = root.options.find((x) => x.startsWith('upperdir='))?.slice(9) ?? '';
    const planLower = plan.options.find((x) => x.startsWith('lowerdir='))?.slice(9) ?? '';
    const overlay = storageDriver(env, r) === 'overlay' || storageDriver(env, r) === 'overlay-userxattr';
    add({
      stage: 'root',
      text: `/ is ${root.fstype}: ${lower.split(':').length} lowerdir(s) (the image's layers, top first), upperdir ${upper}`,
      ok: !overlay || (root.fstype === 'overlay' && lower === planLower && upper === c.paths.upper),
      expected: `overlay with lowerdir=${planLower} upperdir=${c.paths.upper}`,
      look: `findmnt -T ${c.paths.rootfs}; grep ' / ' /proc/${pid}/mountinfo`,
    });
    if (plan.cwd) add({ stage: 'root', text: `lowerdirs are relative to ${plan.cwd}`, look: `ls ${plan.cwd}` });
  }

  // Network: the bridge's named netns, eth0 in it, its veth peer on tsrun0, the DNAT rules.
  const net = r.host.network;
  if (net === 'bridge' && !ctx.rootless) await bridgeFacts(ctx, c.record, pid, add);
  else
    add({
      stage: 'network',
      text: `--network ${net}${ctx.rootless && net === 'bridge' ? ' (rootless: slirp4netns)' : ''}`,
      look: `nsenter -t ${pid} -n ip addr`,
    });

  // Monitor: the small process that owns the container, records its exit and cleans up.
  const mon = c.observed.monitorPid;
  const monArgv = mon ? cmdline(mon) : [];
  const ppid = Number(/^PPid:\s*(\d+)/m.exec(read(`/proc/${pid}/status`) ?? '')?.[1] ?? 0);
  add({
    stage: 'monitor',
    text: `monitor pid ${mon || '?'}: ${path.basename(monArgv[0] ?? '?')}, the parent of pid 1 (${ppid === mon ? 'it is' : `pid 1's parent is ${ppid}`})`,
    ok: mon > 0 && monArgv.length > 0 && ppid === mon,
    expected: `a live monitor that is pid 1's parent`,
    look: `ps -o pid,args -p ${mon}; cat ${c.paths.monitorLog}`,
  });
  return { id: r.id, name: r.name, facts };
}

function statInode(p: string): number | undefined {
  try {
    return statSync(p).ino;
  } catch {
    return undefined;
  }
}

async function bridgeFacts(ctx: AppContext, r: ContainerRecord, pid: number, add: (f: Fact) => void): Promise<void> {
  const name = netnsName(r.id);
  const nsFile = netnsPath(r.id);
  const want = statInode(nsFile);
  const mine = link(`/proc/${pid}/ns/net`);
  add({
    stage: 'network',
    text: `netns ${name} (${nsFile}, net:[${want ?? '?'}])`,
    ok: want !== undefined && mine === `net:[${want}]`,
    expected: `the container's network namespace (${mine}) to be ${nsFile}`,
    look: `ip netns exec ${name} ip addr`,
  });
  const info = r.state.network;
  const inner = JSON.parse((await tool('ip', ['-n', name, '-j', 'addr', 'show', 'eth0'], ctx.env)) ?? '[]') as IpLink[];
  const eth0 = inner[0];
  const addr = eth0?.addr_info?.find((a) => a.family === 'inet');
  add({
    stage: 'network',
    text: `eth0 ${addr ? `${addr.local}/${addr.prefixlen}` : 'has no IPv4 address'}${eth0?.address ? `, mac ${eth0.address}` : ''}`,
    ok: addr !== undefined && addr.local === info?.ip,
    expected: `address ${info?.ip}/${info?.prefixLen} (the record)`,
    look: `ip -n ${name} addr show eth0`,
  });
  const host = JSON.parse((await tool('ip', ['-j', 'link', 'show'], ctx.env)) ?? '[]') as IpLink[];
  const peer = host.find((l) => l.ifindex === eth0?.link_index);
  add({
    stage: 'network',
    text: `veth pair: eth0 inside ↔ ${peer?.ifname ?? '?'} on the host, attached to ${peer?.master ?? 'nothing'}`,
    ok: peer !== undefined && peer.master === BRIDGE,
    expected: `a host veth attached to ${BRIDGE}`,
    look: `ip link show master ${BRIDGE}`,
  });
  const route = await tool('ip', ['-n', name, 'route', 'show', 'default'], ctx.env);
  add({
    stage: 'network',
    text: `route: ${route?.trim() || 'no default route'}`,
    ok: (route ?? '').includes(`via ${info?.gateway}`),
    expected: `default via ${info?.gateway}`,
    look: `ip -n ${name} route`,
  });
  const ports = info?.ports ?? [];
  if (ports.length === 0) return;
  const rules = ((await tool('iptables', ['-w', '-t', 'nat', '-S'], ctx.env)) ?? '').split('\n');
  for (const p of ports) {
    const to = `${info?.ip}:${p.containerPort}`;
    const rule = rules.find(
      (l) =>
        l.includes('-j DNAT') &&
        l.includes(`-p ${p.protocol}`) &&
        l.includes(`--dport ${p.hostPort} `) &&
        l.includes(`--to-destination ${to}`),
    );
    add({
      stage: 'ports',
      text: `${p.hostIP || '0.0.0.0'}:${p.hostPort} → ${to}/${p.protocol}: ${rule ? rule.trim() : 'no DNAT rule'}`,
      ok: rule !== undefined,
      expected: `a DNAT rule from host port ${p.hostPort} to ${to} (tsrun's chain ${portChain(r.id)})`,
      look: `iptables -t nat -S ${portChain(r.id)}; iptables -t nat -S | grep -- '--to-destination ${to}'`,
    });
  }
}
