/**
 * The two scripts `run --dry-run` writes (dry-run.ts): replay.sh does by hand what tsrun does
 * for `run` — overlay mount, network namespace, veth, address, route, NAT and port rules, then
 * runc in the foreground — and undo.sh removes all of it. POSIX sh, commented line by line for
 * a reader who knows a shell but not containers. Pure: text from a plan.
 *
 * Replay's own messages go to stderr, so stdout carries the container's output only (and its
 * exit status is the container's), as with `tsrun run --rm`.
 */
import type { PortMapping } from '../oci/network.js';
import type { BridgePlan } from './dry-run.js';

export interface ReplayPlan {
  id: string;
  dir: string;
  name: string;
  layersDir: string;
  /** The overlay options `run` used (lowerdirs relative to layersDir). */
  mountOptions: string[];
  /** Directories `run` made in the container's upper dir (WORKDIR, VOLUMEs). */
  upperDirs: string[];
  runtime: string;
  netns: string;
  veth: string;
  /** The comment on every iptables rule replay adds. */
  tag: string;
  net?: BridgePlan;
  ports: PortMapping[];
  bridge: string;
}

/** Single-quote for sh. */
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const HEADER = (what: string, p: ReplayPlan) => `#!/bin/sh
# ${what}
# Written by \`tsrun run --dry-run\` for container ${p.name} (${p.id.slice(0, 12)}). Run it as root.
# Everything it makes is tagged "${p.tag}" (iptables comments), or named dryrun-/dr…, so tsrun
# never takes it for its own.
`;

/** The iptables rules replay adds (table, chain, rule args without -A/-D), with what each does. */
export function rules(p: ReplayPlan): { table: string; chain: string; args: string[]; why: string }[] {
  const net = p.net;
  if (!net) return [];
  const tag = ['-m', 'comment', '--comment', p.tag];
  const out = [
    {
      table: 'nat',
      chain: 'POSTROUTING',
      args: ['-s', net.ip, '!', '-d', net.subnet, ...tag, '-j', 'MASQUERADE'],
      why: "tsrun's network rule (chain TSRUN-POSTROUTING): traffic from the container to the outside leaves with the host's address",
    },
    {
      table: 'filter',
      chain: 'FORWARD',
      args: ['-d', net.ip, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...tag, '-j', 'ACCEPT'],
      why: "tsrun's network rule (chain TSRUN-FORWARD): answers to connections the container opened may come back in",
    },
    {
      table: 'filter',
      chain: 'FORWARD',
      args: ['-s', net.ip, ...tag, '-j', 'ACCEPT'],
      why: "tsrun's network rule (chain TSRUN-FORWARD): the container may send anything out",
    },
  ];
  for (const port of p.ports) {
    const to = `${net.ip}:${port.containerPort}`;
    const match = port.hostIP ? ['-d', port.hostIP] : ['-m', 'addrtype', '--dst-type', 'LOCAL'];
    const dport = ['-p', port.protocol, '--dport', String(port.hostPort)];
    for (const chain of ['PREROUTING', 'OUTPUT']) {
      out.push({
        table: 'nat',
        chain,
        args: [...match, ...dport, ...tag, '-j', 'DNAT', '--to-destination', to],
        why:
          chain === 'PREROUTING'
            ? `the published port (tsrun's chain TSRUN-DN-…): packets from other machines to port ${port.hostPort} go to ${to}`
            : `the published port: the same for connections made on this host (curl localhost:${port.hostPort})`,
      });
    }
    out.push({
      table: 'nat',
      chain: 'POSTROUTING',
      args: [
        '-s',
        '127.0.0.0/8',
        '-d',
        net.ip,
        '-p',
        port.protocol,
        '--dport',
        String(port.containerPort),
        ...tag,
        '-j',
        'MASQUERADE',
      ],
      why: 'the published port: a connection from 127.0.0.1 must not reach the container with a loopback source (it could not answer; tsrun marks it and TSRUN-HOSTPORT-MASQ masquerades it)',
    });
  }
  return out;
}

const ipt = (action: '-A' | '-D', r: ReturnType<typeof rules>[number]) =>
  `iptables -w -t ${r.table} ${action} ${r.chain} ${r.args.map((a) => (/^[\w./:,-]+$/.test(a) ? a : q(a))).join(' ')}`;

export function replayScript(p: ReplayPlan): string {
  const d = q(p.dir);
  const opts = p.mountOptions
    .map((o) =>
      o.startsWith('upperdir=') ? `upperdir=${p.dir}/upper` : o.startsWith('workdir=') ? `workdir=${p.dir}/work` : o,
    )
    .join(',');
  const lines: string[] = [HEADER('Replay: make the container by hand and run it in the foreground.', p)];
  lines.push(`set -e                          # stop at the first step that fails (then run undo.sh)
DIR=${d}
say() { echo "replay: $*" >&2; }  # narration on stderr; stdout is the container's

say "1. the root filesystem: an overlay of the image's layers and a new writable layer"
mkdir -p "$DIR/upper" "$DIR/work"  # upper: the container's own changes; work: overlayfs's scratch space
chmod 0755 "$DIR/upper"          # the upper dir's mode becomes the container's / mode`);
  for (const u of p.upperDirs)
    lines.push(`mkdir -p "$DIR/upper/"${q(u)}      # a directory run made (WORKDIR or VOLUME)`);
  lines.push(`# lowerdirs are the store's unpacked layers, top first; relative to the layers dir (as tsrun
# mounts them) so a long list fits in the kernel's one page of mount options.
(cd ${q(p.layersDir)} && mount -t overlay overlay -o ${q(opts)} "$DIR/bundle/rootfs")
# see it: findmnt "$DIR/bundle/rootfs"; ls "$DIR/bundle/rootfs"`);
  const net = p.net;
  if (net) {
    lines.push(`
say "2. the network: a namespace, a veth pair to the ${p.bridge} bridge, an address, a route"
if ! ip link show ${p.bridge} >/dev/null 2>&1; then  # the bridge plugin makes the bridge on first use
  ip link add ${p.bridge} type bridge
  ip addr add ${net.gateway}/${net.prefixLen} dev ${p.bridge}   # isGateway: the bridge is the containers' gateway
  ip link set ${p.bridge} up
  touch "$DIR/.made-bridge"      # so undo.sh removes it again
fi
ip netns add ${p.netns}          # a named network namespace (/run/netns/${p.netns}); config.json joins it
ip -n ${p.netns} link set lo up  # lo up inside (tsrun sets it as it makes the namespace)
ip link add ${p.veth} type veth peer name eth0 netns ${p.netns}  # the bridge plugin: a veth pair, one end inside as eth0
ip link set ${p.veth} master ${p.bridge} up  # the host end joins the bridge
ip -n ${p.netns} addr add ${net.ip}/${net.prefixLen} dev eth0  # host-local IPAM's job: an address of ${net.subnet} (tsrun's would be leased)
ip -n ${p.netns} link set eth0 up  # interfaces start down: bring eth0 up
ip -n ${p.netns} route add default via ${net.gateway}  # ipam's route: everything else through the bridge
sysctl -qw net.ipv4.ip_forward=1 # the bridge plugin turns on forwarding (undo leaves it on, as tsrun does)
# see it: ip netns exec ${p.netns} ip addr; ip link show master ${p.bridge}`);
    if (p.ports.length > 0)
      lines.push(
        `sysctl -qw net.ipv4.conf.${p.bridge}.route_localnet=1  # as tsrun does for -p: allow 127.0.0.1 to be DNATed to the bridge`,
      );
    lines.push(`
say "3. iptables rules, each tagged with the comment \\"${p.tag}\\""`);
    for (const r of rules(p)) lines.push(`# ${r.why}\n${ipt('-A', r)}`);
    lines.push(`# see them: iptables-save | grep ${q(p.tag)}`);
  }
  lines.push(`
say "4. runc runs the container in the foreground (its own state under $DIR/runc)"
set +e                          # the container's exit status is replay's
${q(p.runtime)} --root "$DIR/runc" run --bundle "$DIR/bundle" ${q(`tsrun-dry-run-${p.id.slice(0, 12)}`)}
status=$?
say "the container exited with status $status; undo.sh removes what replay made"
exit $status
`);
  return lines.join('\n');
}

export function undoScript(p: ReplayPlan): string {
  const lines: string[] = [HEADER('Undo: remove everything replay.sh made. Safe to run more than once.', p)];
  lines.push(`DIR=${q(p.dir)}
# a container still running (replay interrupted): kill it and remove runc's record of it
${q(p.runtime)} --root "$DIR/runc" delete --force ${q(`tsrun-dry-run-${p.id.slice(0, 12)}`)} 2>/dev/null
rm -rf "$DIR/runc"
umount "$DIR/bundle/rootfs" 2>/dev/null   # the overlay mount
mountpoint -q "$DIR/bundle/rootfs" || rm -rf "$DIR/upper" "$DIR/work"  # the writable layer, once unmounted
rmdir /sys/fs/cgroup/*/tsrun-dry-run-${p.id.slice(0, 12)} /sys/fs/cgroup/tsrun-dry-run-${p.id.slice(0, 12)} 2>/dev/null  # runc removes its cgroup; in case it could not`);
  if (p.net) {
    lines.push('# the iptables rules, deleted by the very rule they were added with');
    for (const r of rules(p)) lines.push(`${ipt('-D', r)} 2>/dev/null`);
    lines.push(`ip netns delete ${p.netns} 2>/dev/null   # the namespace; eth0 inside goes with it, and so its veth peer
ip link delete ${p.veth} 2>/dev/null      # the host end, if the namespace was already gone
if [ -f "$DIR/.made-bridge" ] && [ -z "$(ip -o link show master ${p.bridge} 2>/dev/null)" ]; then
  ip link delete ${p.bridge}               # the bridge replay made, when nothing else uses it
  rm -f "$DIR/.made-bridge"
fi`);
  }
  lines.push('exit 0\n');
  return lines.join('\n');
}
