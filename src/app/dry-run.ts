/**
 * `tsrun run --dry-run [--out DIR] [run flags] IMAGE [CMD…]`: everything `run` would prepare,
 * written to DIR (default `./tsrun-dry-run-<id12>`) as a bundle and two POSIX shell scripts that
 * a person runs as root to do the rest by hand, without tsrun:
 *
 *   bundle/config.json   the real OCI spec `run` generates (root: bundle/rootfs)
 *   etc/                 the hosts, hostname and resolv.conf it bind-mounts
 *   replay.sh            mounts the root filesystem from the store's layer dirs, sets up the
 *                        network by hand (what the CNI bridge, host-local, portmap and firewall
 *                        plugins do for tsrun), runs the container with runc in the foreground
 *                        and exits with its status
 *   undo.sh              removes everything replay.sh made (idempotent)
 *
 * How: the bundle comes from `createContainer` itself (the one path from image + flags to a
 * spec; a second copy would drift), which makes the container for a moment — its record, the
 * root mount, the /etc files — and this module removes it again before returning. What remains
 * is DIR only: no container in `ps -a`, no mount, no namespace, no rule, no cgroup.
 *
 * What replay.sh makes is tagged so tsrun never mistakes it for its own: the netns is
 * `dryrun-<id12>` (tsrun's are `tsrun-…`), the host veth `dr<id10>`, every iptables rule carries
 * `-m comment --comment "tsrun-dry-run <id12>"` (tsrun's CNI rules are in CNI-* chains), the
 * cgroup is `/tsrun-dry-run-<id12>`, runc's state is under DIR/runc. The address is one of the
 * bridge's subnet that host-local has not leased, taken from the top of the range (host-local
 * leases from the bottom). Root only: rootless networking (slirp4netns) is not replayed.
 */
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { BRIDGE, bridgeConfList, chooseSubnet, NET_RUN_DIR, NETWORK_NAME } from '../network/bridge.js';
import type { ConfList } from '../network/cni.js';
import { hostsFile } from '../network/etc-files.js';
import { extraHostLines } from '../network/extra-hosts.js';
import { assignHostPorts } from '../network/ports.js';
import { unmountAll } from '../snapshot/overlay.js';
import type { Spec } from '../spec/types.js';
import type { AppContext } from './context.js';
import { rootfsMount, runtimeFor } from './containers.js';
import { createContainer, type RunOptions } from './run.js';
import { replayScript, undoScript, type ReplayPlan } from './dry-run-scripts.js';

export interface DryRunResult {
  id: string;
  dir: string;
}

export async function dryRun(ctx: AppContext, o: RunOptions & { out?: string }): Promise<DryRunResult> {
  if (ctx.uid !== 0 || ctx.rootless) {
    throw new TsrunError('ERR_USAGE', 'run --dry-run: the scripts it writes are for root', {
      hint: 'run it as root (sudo tsrun run --dry-run …)',
    });
  }
  const cwd = o.cwd ?? process.cwd();
  const { id, env } = await createContainer(ctx, { ...o, rm: false, restart: undefined, cidfile: undefined });
  const c = await env.containers.find(id);
  const r = c.record;
  let plan: ReplayPlan;
  const dir = path.resolve(cwd, o.out ?? `tsrun-dry-run-${id.slice(0, 12)}`);
  try {
    if ((await fs.readdir(dir).catch(() => [])).length > 0)
      throw new TsrunError('ERR_USAGE', `run --dry-run: ${dir} exists and is not empty`, {
        hint: 'give another --out, or remove it',
      });
    const spec = JSON.parse(await fs.readFile(c.paths.config, 'utf8')) as Spec;
    const mount = rootfsMount(env, c);
    const upperDirs = dirsIn(c.paths.upper);
    const runtime = await runtimeFor(env, r.host.runtime);
    const id12 = id.slice(0, 12);
    const ports = await assignHostPorts(r.host.ports ?? []);
    const net = r.host.network === 'bridge' ? await bridgePlan(id12) : undefined;
    plan = {
      id,
      dir,
      name: r.name,
      layersDir: mount.cwd ?? path.join(env.store.root, 'layers'),
      mountOptions: mount.options,
      upperDirs,
      runtime: runtime.info.path,
      netns: `dryrun-${id12}`,
      veth: `dr${id.slice(0, 10)}`,
      tag: `tsrun-dry-run ${id12}`,
      net,
      ports,
      bridge: BRIDGE,
    };
    // The spec as `run` made it, pointed at DIR: its root, /etc files, netns and cgroup.
    spec.root = { ...spec.root, path: 'rootfs' };
    const etc = path.join(dir, 'etc');
    spec.mounts = spec.mounts.map((m) =>
      m.source && m.source.startsWith(`${c.paths.etc}/`)
        ? { ...m, source: path.join(etc, path.basename(m.source)) }
        : m,
    );
    spec.linux.cgroupsPath = `/tsrun-dry-run-${id12}`;
    spec.linux.namespaces = spec.linux.namespaces.map((n) =>
      n.type === 'network' && n.path ? { ...n, path: `/run/netns/${plan.netns}` } : n,
    );
    await fs.mkdir(path.join(dir, 'bundle', 'rootfs'), { recursive: true });
    await fs.mkdir(etc, { recursive: true });
    for (const f of ['hosts', 'hostname', 'resolv.conf'])
      await fs.copyFile(path.join(c.paths.etc, f), path.join(etc, f)).catch(() => undefined);
    if (net) {
      const extra = extraHostLines(r.host.extraHosts ?? [], net.gateway);
      await fs.writeFile(path.join(etc, 'hosts'), hostsFile(r.config.hostname, net.ip, extra));
    }
    await fs.writeFile(path.join(dir, 'bundle', 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
    await fs.writeFile(path.join(dir, 'replay.sh'), replayScript(plan), { mode: 0o755 });
    await fs.writeFile(path.join(dir, 'undo.sh'), undoScript(plan), { mode: 0o755 });
  } finally {
    // The container `run` made for the spec goes again: nothing but DIR is left.
    await unmountAll([rootfsMount(env, c)]).catch(() => {});
    await env.containers.remove(r);
  }
  return { id, dir };
}

/** Every directory of the upper dir (the WORKDIR and VOLUME dirs run made), parents first. */
function dirsIn(upper: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(upper, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      out.push(child);
      walk(child);
    }
  };
  walk('');
  return out;
}

export interface BridgePlan {
  subnet: string;
  prefixLen: number;
  gateway: string;
  ip: string;
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => (a * 256 + Number(o)) >>> 0, 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** The bridge's subnet (tsrun's conflist, or the one it would choose) and a free address in it. */
async function bridgePlan(id12: string): Promise<BridgePlan> {
  let list: ConfList;
  try {
    list = JSON.parse(readFileSync(path.join(NET_RUN_DIR, `${NETWORK_NAME}.conflist`), 'utf8')) as ConfList;
  } catch {
    list = bridgeConfList(chooseSubnet(readFileSync('/proc/net/route', 'utf8')));
  }
  const ipam = (list.plugins[0]?.ipam ?? {}) as { ranges?: { subnet: string; gateway?: string }[][] };
  const range = ipam.ranges?.[0]?.[0];
  if (!range) throw new TsrunError('ERR_CNI', `run --dry-run: the ${BRIDGE} network has no address range`);
  const [base, bits] = range.subnet.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const first = ipToInt(base) - (ipToInt(base) % size);
  const gateway = range.gateway ?? intToIp(first + 1);
  const leased = new Set<string>();
  try {
    for (const n of readdirSync(path.join(NET_RUN_DIR, 'ipam', NETWORK_NAME))) leased.add(n);
  } catch {
    /* nothing leased yet */
  }
  const span = Math.max(1, Math.min(200, Math.floor(size / 4)));
  const start = parseInt(id12.slice(0, 6), 16) % span;
  for (let k = 0; k < span; k++) {
    const ip = intToIp(first + size - 2 - ((start + k) % span));
    if (!leased.has(ip) && ip !== gateway) return { subnet: range.subnet, prefixLen: Number(bits), gateway, ip };
  }
  throw new TsrunError('ERR_CNI', `run --dry-run: no free address at the top of ${range.subnet}`);
}
