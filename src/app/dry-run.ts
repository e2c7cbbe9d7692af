/**
 * `tsrun run --dry-run [--out DIR] [run flags] IMAGE [CMD…]`: everything `run` would prepare,
 * written to DIR (default `./tsrun-dry-run-<id12>`) as a bundle and two POSIX shell scripts that
 * a person runs as root to do the rest by hand, without tsrun:
 *
 *   bundle/config.json   the real OCI spec `run` generates (root: bundle/rootfs)
 *   etc/                 the hosts, hostname and resolv.conf it bind-mounts
 *   replay.sh            mounts the root filesystem from the store's layer dirs, sets up the
 *                        network by hand (what the CNI bridge and host-local plugins, the lo up
 *                        and tsrun's own iptables rules do), runs the container with runc in the foreground
 *                        and exits with its status
 *   undo.sh              removes everything replay.sh made (idempotent)
 *
 * How: the bundle comes from the same two steps `createContainer` takes (app/run-plan.ts: the
 * plan from image + flags, then the spec built from it; a second copy would drift), without the
 * container around them: no record or name (nothing in `ps -a` at any moment), no mount (the
 * user and groups are read from the layer dirs, snapshot/layer-read.ts), no namespace, no rule,
 * no cgroup, no volume (a volume that does not exist yet is an empty directory under DIR/volumes;
 * the image's content at its destination is not copied in, as `run` would). What is made is DIR
 * only.
 *
 * What replay.sh makes is tagged so tsrun never mistakes it for its own: the netns is
 * `dryrun-<id12>` (tsrun's are `tsrun-…`), the host veth `dr<id10>`, every iptables rule carries
 * `-m comment --comment "tsrun-dry-run <id12>"` (tsrun's rules are in TSRUN-* chains), the
 * cgroup is `/tsrun-dry-run-<id12>`, runc's state is under DIR/runc. The address is one of the
 * bridge's subnet that host-local has not leased, taken from the top of the range (host-local
 * leases from the bottom). Root only: rootless networking (slirp4netns) is not replayed.
 */
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { BRIDGE, bridgeConfList, chooseSubnet, NET_RUN_DIR, NETWORK_NAME } from '../network/bridge.js';
import type { ConfList } from '../network/cni.js';
import { hostsFile } from '../network/etc-files.js';
import { extraHostLines } from '../network/extra-hosts.js';
import { assignHostPorts } from '../network/ports.js';
import { planOverlay } from '../snapshot/overlay.js';
import { dirInLayers, readFromLayers } from '../snapshot/layer-read.js';
import { digestHex } from '../oci/digest.js';
import { resolveUser } from '../spec/user.js';
import type { AppContext } from './context.js';
import { runtimeFor } from './containers.js';
import { createdEvent } from './container-events.js';
import { groupIds } from './run-host.js';
import { volumeBinds } from './volumes.js';
import { buildRunSpec, planRun, writeRunEtc, type RunOptions } from './run-plan.js';
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
  const ro: RunOptions = { ...o, rm: false, restart: undefined, cidfile: undefined };
  const plan = await planRun(ctx, ro);
  const { env, id, image } = plan;
  const id12 = id.slice(0, 12);
  const dir = path.resolve(cwd, o.out ?? `tsrun-dry-run-${id12}`);
  if ((await fs.readdir(dir).catch(() => [])).length > 0)
    throw new TsrunError('ERR_USAGE', `run --dry-run: ${dir} exists and is not empty`, {
      hint: 'give another --out, or remove it',
    });
  const layersDir = path.join(env.store.root, 'layers');
  const chainIds = image.layers.map((l) => l.chainId);
  const mount = planOverlay({
    layersDir,
    chainIds,
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    target: path.join(dir, 'bundle', 'rootfs'),
    driver: 'overlay',
  });
  // The image's files as the overlay would show them, read from the layer dirs (no mount).
  const lowers = [...chainIds].reverse().map((c) => path.join(layersDir, digestHex(c), 'diff'));
  const passwd = readFromLayers(lowers, 'etc/passwd');
  const group = readFromLayers(lowers, 'etc/group');
  const user = resolveUser((ro.user ?? plan.config.User ?? '') || '0', passwd, group);
  const gids = groupIds(plan.hf.groupAdd, group);
  const etc = path.join(dir, 'etc');
  await fs.mkdir(path.join(dir, 'bundle', 'rootfs'), { recursive: true });
  await fs.mkdir(etc, { recursive: true });
  const etcFiles = await writeRunEtc(ctx, plan, ro, etc);
  const netns = `dryrun-${id12}`;
  const { spec, provenance } = buildRunSpec(ctx, plan, ro, {
    user,
    gids,
    etcFiles,
    shmPath: path.join(dir, 'shm'),
    netnsPath: `/run/netns/${netns}`,
  });
  // The spec as `run` makes it, pointed at DIR: its root, cgroup, and volumes that do not exist yet.
  spec.root = { ...spec.root, path: 'rootfs' };
  spec.linux.cgroupsPath = `/tsrun-dry-run-${id12}`;
  const volumesRoot = path.dirname(
    volumeBinds(env, [{ name: 'x', destination: '/', readonly: false, anonymous: true }])[0]?.source ?? '',
  );
  for (const m of spec.mounts) {
    if (m.source?.startsWith(`${volumesRoot}/`) && !existsSync(m.source)) {
      const own = path.join(dir, 'volumes', path.relative(volumesRoot, m.source));
      await fs.mkdir(own, { recursive: true });
      m.source = own;
    }
  }
  const runtime = await runtimeFor(env, ro.runtime ?? 'runc');
  const net = plan.network === 'bridge' ? await bridgePlan(id12) : undefined;
  if (net) {
    const extra = extraHostLines(plan.extraHosts, net.gateway);
    await fs.writeFile(path.join(etc, 'hosts'), hostsFile(plan.hostname, net.ip, extra));
  }
  const replay: ReplayPlan = {
    id,
    dir,
    name: o.name ?? `dry-run-${id12}`,
    layersDir: mount.cwd ?? layersDir,
    mountOptions: mount.options,
    upperDirs: madeDirs(
      lowers,
      spec.process.cwd,
      plan.vol.refs.map((r) => r.destination),
    ),
    runtime: runtime.info.path,
    netns,
    veth: `dr${id.slice(0, 10)}`,
    tag: `tsrun-dry-run ${id12}`,
    net,
    ports: await assignHostPorts(plan.ports),
    bridge: BRIDGE,
  };
  await fs.writeFile(path.join(dir, 'bundle', 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  await fs.writeFile(path.join(dir, 'replay.sh'), replayScript(replay), { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'undo.sh'), undoScript(replay), { mode: 0o755 });
  ctx.reporter.emit({
    ...createdEvent(
      {
        id,
        name: replay.name,
        image: o.image,
        bundle: path.join(dir, 'bundle'),
        config: path.join(dir, 'bundle', 'config.json'),
        network: plan.network,
      },
      spec,
      provenance,
    ),
    dryRun: true,
  });
  return { id, dir };
}

/**
 * The directories `run` would make in the upper dir: those of the WORKDIR (and of the VOLUME
 * destinations the runtime mounts over) that the image does not have, parents first.
 */
function madeDirs(lowers: readonly string[], cwd: string, volumes: readonly string[]): string[] {
  const out: string[] = [];
  for (const target of [cwd, ...volumes]) {
    const parts = target.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (!out.includes(rel) && !dirInLayers(lowers, rel)) out.push(rel);
    }
  }
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
