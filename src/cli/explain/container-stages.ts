/**
 * The container stages of `--explain`: the root filesystem, the spec, the network, the runtime's
 * create and start, the exit, the cleanup, stop, remove and exec — each from its events, with a
 * command to look at the result (findmnt, jq, ip netns, iptables, /proc) and the command that does
 * the step by hand (mount, runc, ip). Never a secret: the environment is told by names only, as
 * the events carry it.
 */
import type { Provenance, TsrunEvent } from '../../events.js';
import { detail, hand, look, raw, shJoin, short, why, type Line, type StageText } from './layout.js';
import { all, first } from './image-stages.js';
import type { TextCtx } from './render.js';
import { runtimeVerb } from './stages.js';

type Ev<T extends TsrunEvent['type']> = Extract<TsrunEvent, { type: T }>;

/** The runtime as a person calls it: `runc --root R` (from any runtime argv seen). */
function runtimeBase(seen: readonly TsrunEvent[]): string {
  for (const e of all(seen, 'runtime')) {
    const i = e.argv.indexOf('--root');
    const bin = (e.argv[0] ?? 'runc').split('/').pop() ?? 'runc';
    if (i > 0) return `${bin} --root ${e.argv[i + 1] ?? ''}`;
  }
  return 'runc';
}

/** Where a part of the spec came from: `(from image CMD)`, `(from -e)`, `(default)`. */
function from(p: Provenance): string {
  if (p.from === 'image') return `(from image${p.detail ? ` ${p.detail}` : ''})`;
  if (p.from === 'flag') return `(from ${p.flag ?? 'a flag'})`;
  if (p.from === 'command line') return '(from the command line)';
  return '(default)';
}

const containerId = (seen: readonly TsrunEvent[]): string => {
  for (const e of seen) if ('id' in e && typeof e.id === 'string' && /^[0-9a-f]{64}$/.test(e.id)) return e.id;
  return 'ID';
};

const fullArgv = (ctx: TextCtx, ev: readonly TsrunEvent[]): Line[] =>
  ctx.mode === 'full'
    ? all(ev, 'runtime').map((r) =>
        raw('argv', `${r.argv.join(' ')}${r.exitCode === undefined ? '' : `  (exit ${r.exitCode})`}`),
      )
    : [];

export function rootfsText(ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const m = first(ev, 'rootfs-mount');
  if (!m) {
    return {
      summary: ctx.failed ? 'not reached' : 'already mounted: nothing to do',
      lines: [why("the container's root stays mounted while it exists and is stopped")],
    };
  }
  const lines: Line[] = m.lowerdirs.map((d, i) => detail(`lower ${i + 1}`, d));
  if (m.upperdir) lines.push(detail('upper', m.upperdir));
  if (m.workdir) lines.push(detail('work', m.workdir));
  lines.push(detail('target', m.target));
  const drivers: Record<string, string> = {
    overlay: "the kernel's overlayfs",
    'overlay-userxattr': "the kernel's overlayfs in the user namespace (userxattr: its own xattrs in user.overlay.*)",
    'fuse-overlayfs': 'fuse-overlayfs (overlayfs in user space: the kernel has no overlayfs for this user namespace)',
    copy: 'a plain copy of the layers (no overlayfs available)',
  };
  lines.push(detail('driver', drivers[m.driver] ?? m.driver));
  if (m.reason) lines.push(detail('', `chosen because ${m.reason}`));
  lines.push(
    why(
      "overlayfs stacks the image's read-only layer directories (lowerdir, top first) under one " +
        "writable directory of the container's own (upperdir): the container sees one tree, and what " +
        'it writes never changes the image',
    ),
    look(`findmnt -T ${m.target}`),
  );
  const vars = m.lowerdirs.map((d, i) => `L${i + 1}=${d}`);
  const lower = m.lowerdirs.map((_, i) => `$L${i + 1}`).join(':');
  const opts = `lowerdir=${lower}${m.upperdir ? ',upperdir=$U,workdir=$W' : ''}${m.driver === 'overlay-userxattr' ? ',userxattr' : ''}`;
  const dirs = [...vars, ...(m.upperdir ? [`U=${m.upperdir}`, `W=${m.workdir ?? ''}`] : []), `T=${m.target}`];
  if (m.driver === 'fuse-overlayfs') lines.push(...hand([...dirs, `fuse-overlayfs -o "${opts}" "$T"`]));
  else if (m.driver !== 'copy') lines.push(...hand([...dirs, `mount -t overlay overlay -o "${opts}" "$T"`]));
  const n = m.lowerdirs.length;
  return { summary: `${m.driver}: ${n} ${n === 1 ? 'layer' : 'layers'} + a writable upper dir at ${m.target}`, lines };
}

export function specText(ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const c = first(ev, 'container-create');
  const etc = first(ev, 'etc-files');
  if (!c) return { summary: 'not reached', lines: [] };
  const u = c.user;
  const p = c.provenance;
  const f = (x: Provenance | undefined) => (x ? ` ${from(x)}` : '');
  const lines: Line[] = [
    detail('process', `${shJoin(c.args)}${f(p?.args)}`),
    detail('user', `uid ${u.uid} gid ${u.gid}${f(p?.user)}, in ${c.cwd}${f(p?.cwd)}`),
    detail('env', `${c.envNames.map((n) => `${n}${f(p?.env[n])}`).join(', ')}; names only, values are not shown`),
    detail('namespaces', c.namespaces.map((n) => (n.path ? `${n.type}=${n.path}` : n.type)).join(' ')),
    detail(
      'caps',
      `${c.capabilities.length}${f(p?.capabilities)}: ${c.capabilities.map((x) => x.replace(/^CAP_/, '')).join(' ')}`,
    ),
    detail(
      'mounts',
      c.mounts
        .map((m) => `${m.destination}${p?.mounts[m.destination]?.from === 'flag' ? f(p.mounts[m.destination]) : ''}`)
        .join(' '),
    ),
    ctx.mode === 'full'
      ? detail('masked', c.maskedPaths.join(' '))
      : detail(
          'masked',
          `${c.maskedPaths.length} paths hidden, ${c.readonlyPaths.length} read-only (/proc/kcore, /sys/firmware, …)`,
        ),
  ];
  if (ctx.mode === 'full') lines.push(detail('read-only', c.readonlyPaths.join(' ')));
  if (c.rlimits.length > 0)
    lines.push(detail('rlimits', c.rlimits.map((r) => `${r.type}=${r.soft}:${r.hard}`).join(' ')));
  if (c.cgroupsPath) lines.push(detail('cgroup', c.cgroupsPath));
  if (c.hostname) lines.push(detail('hostname', c.hostname));
  if (etc) lines.push(detail('/etc', `${etc.hosts}, ${etc.resolvConf} (bound over the image's)`));
  const ns = first(ev, 'userns');
  if (ns) {
    const map = (m: { inside: number; outside: number; count: number }[]) =>
      m.map((x) => `${x.inside}-${x.inside + x.count - 1} → ${x.outside}-${x.outside + x.count - 1}`).join(', ');
    lines.push(
      detail('userns', `rootless: uid ${map(ns.uidMap)}; gid ${map(ns.gidMap)}`),
      detail(
        '',
        ns.subuid
          ? `from /etc/subuid ${ns.subuid} and /etc/subgid ${ns.subgid ?? '?'}`
          : `a single id: your uid ${ns.uid} is root inside, nothing else maps`,
      ),
      look('cat /proc/self/uid_map   # inside `tsrun unshare`'),
    );
  }
  lines.push(
    why(
      "runc runs what a bundle's config.json says: the command, the user, the namespaces to make, " +
        'the capabilities to keep, what to mount where, the paths to hide; tsrun writes it from the ' +
        'image config, your flags and defaults',
    ),
    look(`jq '.process.args,.linux.namespaces' ${c.config}`),
    ...hand([`runc spec --bundle ${c.bundle}   # a default config.json to edit`]),
  );
  return { summary: `${c.config} (bundle of container ${c.name})`, lines };
}

/** The host side of the veth pair from the bridge plugin's result. */
function veth(cni: Ev<'cni'> | undefined): { host?: string; bridge?: string } {
  const res = cni?.result as { interfaces?: { name?: string; sandbox?: string }[] } | undefined;
  const bridge = (cni?.input as { bridge?: string } | undefined)?.bridge;
  const host = res?.interfaces?.find((i) => !i.sandbox && i.name !== bridge)?.name;
  return { host, bridge };
}

export function networkText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const a = first(ev, 'network-attach');
  const ns = first(ev, 'netns');
  const slirp = first(ev, 'slirp4netns');
  if (!a && !ns && !slirp) {
    const mode = first(seen, 'container-create')?.network;
    if (mode === 'none') return { summary: '--network none: only a loopback interface, nothing to wire', lines: [] };
    if (mode === 'host') return { summary: "--network host: the host's own network, no namespace", lines: [] };
    return { summary: ctx.failed ? 'not reached' : 'no network of its own to wire', lines: [] };
  }
  const lines: Line[] = [];
  const nsName = ns?.name ?? (a?.netns ?? '').split('/').pop() ?? 'NETNS';
  if (ns) lines.push(detail('netns', `${ns.path}: a new, empty network stack`));
  const cnis = all(ev, 'cni');
  for (const c of cnis) {
    lines.push(detail(`${c.plugin}`, `CNI plugin ${c.path} ${c.command} → exit ${c.exitCode}`));
    if (ctx.mode === 'full') {
      lines.push(raw('input', JSON.stringify(c.input)));
      if (c.result !== undefined) lines.push(raw('result', JSON.stringify(c.result)));
    }
  }
  const fromCni = veth(cnis.find((c) => c.plugin === 'bridge'));
  const v = { host: a?.veth?.host ?? fromCni.host, bridge: a?.bridge ?? fromCni.bridge };
  if (v.host) lines.push(detail('veth', `${v.host} on bridge ${v.bridge ?? '?'} ↔ eth0 in the namespace`));
  if (slirp) {
    lines.push(detail('slirp4netns', `pid ${slirp.pid}: a user-space network stack behind a tap device`));
    if (ctx.mode === 'full') lines.push(raw('argv', slirp.argv.join(' ')));
    for (const r of all(ev, 'slirp4netns-api'))
      lines.push(detail('api', `${JSON.stringify(r.request)}${r.error ? ` → ${r.error}` : ''}`));
  }
  if (a) {
    lines.push(detail('address', `${a.ip}/${a.prefixLen}, gateway ${a.gateway}${a.mac ? `, mac ${a.mac}` : ''}`));
    for (const p of a.ports)
      lines.push(
        detail(
          'port',
          slirp
            ? `${p.hostIP || '0.0.0.0'}:${p.hostPort} → ${p.containerPort}/${p.protocol} (slirp4netns add_hostfwd)`
            : `${p.hostIP || '0.0.0.0'}:${p.hostPort} → ${a.ip}:${p.containerPort}/${p.protocol}: -p ${p.protocol} --dport ${p.hostPort} -j DNAT --to-destination ${a.ip}:${p.containerPort}`,
        ),
      );
  }
  // The network-wide chains, (re)built once per boot or after a network changed: told when it happened.
  for (const nr of all(ev, 'network-rules')) {
    const chains = [...new Set(nr.input.split('\n').flatMap((l) => /^:(\S+)/.exec(l)?.[1] ?? []))];
    lines.push(detail('chains', `${chains.join(', ')}: every network's NAT and forwarding, one iptables-restore`));
    if (ctx.mode === 'full')
      for (const l of nr.input.split('\n').filter((x) => x.startsWith('-A'))) lines.push(raw('restore', l));
  }
  // The container's published ports: its own chain and the jumps to it, one iptables-restore.
  for (const pr of all(ev, 'port-rules').filter((x) => x.action === 'add')) {
    const chain = /^:(\S+)/m.exec(pr.input)?.[1] ?? '?';
    lines.push(detail('chains', `${chain}: the published ports (mark, DNAT), one iptables-restore`));
    if (ctx.mode === 'full')
      for (const l of pr.input.split('\n').filter((x) => x.startsWith('-A'))) lines.push(raw('restore', l));
  }
  const rules = all(ev, 'iptables-rules').flatMap((r) => r.rules);
  for (const r of rules) {
    if (ctx.mode === 'full' || /DNAT/.test(r.rule))
      lines.push({ kind: 'shell', label: r.table === 'filter' ? 'rule' : `rule ${r.table}`, text: r.rule });
  }
  if (ctx.mode === 'brief' && rules.some((r) => !/DNAT/.test(r.rule)))
    lines.push(
      detail(
        '',
        `and ${rules.filter((r) => !/DNAT/.test(r.rule)).length} more rules (masquerade, forward): --explain=full`,
      ),
    );
  for (const d of all(ev, 'dns'))
    lines.push(
      detail(
        'dns',
        `${(d.names ?? []).join(', ')} → ${d.ip ?? '?'} on ${d.network}'s DNS server ${d.server ?? ''}`.trim(),
      ),
    );
  if (slirp) {
    lines.push(
      why(
        'rootless: an unprivileged user cannot make veth pairs or iptables rules, so slirp4netns gives the ' +
          'namespace a tap device and answers for it in user space; published ports are its add_hostfwd calls',
      ),
      look(`nsenter --net=${slirp.netns} ip addr`),
      ...hand([
        `slirp4netns --configure --mtu=65520 --disable-host-loopback --netns-type=path ${slirp.netns} tap0`,
        ...(a?.ports ?? []).map(
          (p) =>
            `echo '{"execute":"add_hostfwd","arguments":{"proto":"${p.protocol}","host_port":${p.hostPort},"guest_port":${p.containerPort}}}' | socat - UNIX:${slirp.apiSocket}`,
        ),
      ]),
    );
  } else if (a) {
    lines.push(
      why(
        'the container gets its own network namespace; CNI plugins put one end of a veth pair in it ' +
          '(eth0) and the other on the host bridge and give it an address; tsrun then writes the NAT ' +
          'rules that send published host ports to it (its own chain, one iptables-restore)',
      ),
      look(`ip netns exec ${nsName} ip addr`),
    );
    if (a.ports.length > 0) lines.push(look('iptables -t nat -S TSRUN-HOSTPORT-DNAT'));
    const dn = rules.find((r) => /DNAT/.test(r.rule) && !/-HOSTPORT-DNAT$/.test(r.chain));
    if (dn) lines.push(look(`iptables -t ${dn.table} -S ${dn.chain}`));
    lines.push(
      ...hand([
        `ip netns add ${nsName}`,
        `ip link add ${v.host ?? 'veth0'} type veth peer name eth0 netns ${nsName}`,
        `ip link set ${v.host ?? 'veth0'} master ${v.bridge ?? 'tsrun0'} up`,
        `ip -n ${nsName} addr add ${a.ip}/${a.prefixLen} dev eth0`,
        `ip -n ${nsName} link set eth0 up`,
        `ip -n ${nsName} route add default via ${a.gateway}`,
        ...a.ports.map(
          (p) =>
            `iptables -t nat -A PREROUTING -p ${p.protocol} --dport ${p.hostPort} -j DNAT --to-destination ${a.ip}:${p.containerPort}`,
        ),
      ]),
    );
  }
  const ports = a?.ports.map((p) => `${p.hostPort}→${p.containerPort}/${p.protocol}`).join(' ') ?? '';
  const where = slirp ? 'slirp4netns' : `bridge ${v.bridge ?? ''}`.trim();
  return {
    summary: `${where}: ${a ? `${a.ip}/${a.prefixLen}` : 'no address'} in ${nsName}${ports ? `, ports ${ports}` : ''}`,
    lines,
  };
}

export function createText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const mon = first(ev, 'monitor');
  const rt = all(ev, 'runtime').find((r) => runtimeVerb(r.argv) === 'create');
  if (!mon && !rt) return { summary: 'not reached', lines: [] };
  const base = runtimeBase(seen);
  const id = containerId(seen);
  const bundleAt = rt?.argv.indexOf('--bundle') ?? -1;
  const bundle = rt && bundleAt > 0 ? rt.argv[bundleAt + 1] : 'BUNDLE';
  const lines: Line[] = [];
  if (mon)
    lines.push(
      detail(
        'monitor',
        `pid ${mon.monitorPid}: the container's parent; holds the ports, writes the log, records the exit`,
      ),
    );
  lines.push(...fullArgv(ctx, ev));
  if (mon && ctx.mode === 'full') lines.push(raw('monitor', mon.argv.join(' ')));
  lines.push(
    why(
      'runc reads config.json, makes the namespaces, the cgroup and the mounts, pivots into the root ' +
        'and waits there (runc init) before running the command, so that the caller can finish setting up',
    ),
    look(`${base} state ${id}`),
    ...hand([`${base} create --bundle ${bundle} ${id}`]),
  );
  return {
    summary: `${base.split(' ')[0]} created ${short(id)}: pid ${mon?.pid ?? '?'} waits to run the command`,
    lines,
  };
}

export function startText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const s = first(ev, 'container-start');
  if (!s) return { summary: ctx.failed ? 'not reached' : 'not started', lines: [] };
  const base = runtimeBase(seen);
  const created = first(seen, 'container-create');
  const lines: Line[] = [
    detail('pid', `${s.pid} on the host (pid 1 inside); monitor ${s.monitorPid}`),
    detail('log', s.log),
  ];
  if (s.ports.length > 0) lines.push(detail('ports', `${s.ports.join(' ')} (sockets held by the monitor)`));
  lines.push(...fullArgv(ctx, ev));
  lines.push(
    why("runc start lets the waiting process exec the command; from now on it is the container's pid 1"),
    look(`ls -l /proc/${s.pid}/ns`),
    look(`cat /proc/${s.pid}/cgroup`),
    ...hand([`${base} start ${s.id}`]),
  );
  return { summary: `running${created ? ` ${shJoin(created.args)}` : ''} as host pid ${s.pid}`, lines };
}

export function exitText(ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const x = first(ev, 'container-exit');
  if (!x) {
    if (ctx.failed) return { summary: 'not reached', lines: [] };
    if (ctx.verb === 'stop' || ctx.verb === 'rm')
      return { summary: 'no exit to record: it was not running', lines: [] };
    return {
      summary: 'not seen by this command: the container runs on (its monitor records the exit)',
      lines: [look('tsrun ps -a'), look('tsrun stop --explain CONTAINER')],
    };
  }
  const sig = x.exitCode > 128 ? ` (128 + ${x.exitCode - 128}: killed by signal ${x.exitCode - 128})` : '';
  return {
    summary: `the command exited with status ${x.exitCode}${sig}`,
    lines: [
      why("the monitor, the container's parent, collected the status and wrote it beside the bundle"),
      look(`tsrun inspect -f '{{.State.ExitCode}}' ${short(x.id)}`),
    ],
  };
}

export function cleanupText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const done = first(ev, 'container-cleanup');
  if (!done && ev.length === 0) {
    if (ctx.failed) return { summary: 'not reached', lines: [] };
    if (ctx.verb === 'stop' || ctx.verb === 'rm') return { summary: 'nothing left to undo', lines: [] };
    return { summary: 'not yet: the container is still running (its monitor cleans up after it)', lines: [] };
  }
  const lines: Line[] = [];
  const base = runtimeBase(seen);
  const id = containerId(seen);
  const rt = all(ev, 'runtime').filter((r) => runtimeVerb(r.argv) === 'delete');
  if (rt.length > 0 && !ev.some((e) => e.type === 'cleanup-step'))
    lines.push(detail('runtime', `${base.split(' ')[0]} deleted its container`));
  // CNI DEL runs plugins in reverse; told in a fixed order (events of parallel steps interleave).
  const dels = all(ev, 'cni').map((c) => c.plugin);
  if (dels.length > 0) lines.push(detail('network', `CNI DEL: ${dels.join(', ')} (rules, address, veth removed)`));
  const ns = all(ev, 'netns').find((n) => n.action === 'delete');
  if (ns) lines.push(detail('netns', `${ns.path} deleted`));
  if (first(ev, 'network-detach')?.driver === 'slirp4netns') lines.push(detail('network', 'slirp4netns stopped'));
  const mount = first(seen, 'rootfs-mount');
  const steps = all(ev, 'cleanup-step');
  const stepNames: Record<string, string> = {
    'runtime-delete': 'runtime',
    network: 'network',
    unmount: 'unmount',
    'state-dir': 'state',
    volume: 'volume',
  };
  // The steps run side by side: told in their fixed order, not as they finished.
  for (const k of Object.keys(stepNames)) {
    for (const s of steps.filter((x) => x.step === k))
      lines.push(detail(stepNames[k] ?? k, `${s.targets.join(' ') || 'done'}${s.error ? `: FAILED: ${s.error}` : ''}`));
  }
  const left = all(ev, 'iptables-rules').flatMap((r) => r.rules);
  if (all(ev, 'iptables-rules').length > 0)
    lines.push(
      detail(
        'rules',
        left.length === 0 ? 'none left for its address' : `${left.length} left: ${left.map((r) => r.rule).join('; ')}`,
      ),
    );
  if (done)
    lines.push(
      ...(steps.length === 0 ? [detail('root', 'unmounted')] : []),
      ...(done.removed ? [detail('record', ctx.verb === 'rm' ? 'removed' : 'removed (--rm)')] : []),
    );
  lines.push(...fullArgv(ctx, ev));
  lines.push(why('what start made is undone: nothing of the container stays running, mounted or wired'));
  if (mount) lines.push(look(`findmnt -T ${mount.target}`));
  if (ns) lines.push(look('ip netns list'));
  lines.push(
    ...hand([
      `${base} delete ${id}`,
      ...(ns ? [`ip netns delete ${ns.name}`] : []),
      ...(mount ? [`umount ${mount.target}`] : []),
    ]),
  );
  const parts = [
    rt.length > 0 ? 'runtime deleted' : '',
    dels.length > 0 || ns ? 'network removed' : '',
    done ? 'root unmounted' : '',
    done?.removed ? 'container removed' : '',
  ]
    .filter(Boolean)
    .join(', ');
  return { summary: parts || 'in progress', lines };
}

export function stopText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const s = first(ev, 'container-stop');
  const base = runtimeBase(seen);
  if (!s) {
    const kills = all(ev, 'runtime').filter((r) => runtimeVerb(r.argv) === 'kill');
    if (kills.length === 0) return { summary: ctx.failed ? 'not reached' : 'not running: nothing to stop', lines: [] };
    const sigs = kills.map((k) => k.argv.at(-1) ?? '?').join(', then ');
    const id = containerId(seen);
    return {
      summary: `sent ${sigs} (-f: no stop signal, no wait)`,
      lines: [
        ...fullArgv(ctx, ev),
        ...hand(kills.map((k) => `${base} kill ${id} ${(k.argv.at(-1) ?? '').replace(/^SIG/, '')}`)),
      ],
    };
  }
  const how = s.killed ? `it did not exit within ${s.timeoutSec}s: SIGKILL` : 'it exited';
  return {
    summary: `sent ${s.signal}, ${how}`,
    lines: [
      ...fullArgv(ctx, ev),
      why(
        "stop asks first (the image's or --stop-signal, else SIGTERM) and waits; a process that " +
          'ignores it (pid 1 gets no default handlers) is killed with SIGKILL after the timeout',
      ),
      look(`${base} state ${s.id}`),
      ...hand([
        `${base} kill ${s.id} ${s.signal.replace(/^SIG/, '')}`,
        ...(s.killed ? [`${base} kill ${s.id} KILL`] : []),
      ]),
    ],
  };
}

export function removeText(ev: readonly TsrunEvent[]): StageText {
  const r = first(ev, 'container-remove');
  if (!r) return { summary: 'not reached', lines: [] };
  return {
    summary: `removed ${r.name} (${short(r.id)}): its record, bundle and writable layer`,
    lines: [
      why("the upper dir held everything the container wrote; the image's layers stay"),
      look(`tsrun ps -a --filter id=${short(r.id)}`),
    ],
  };
}

export function execText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const x = first(ev, 'container-exec');
  const mon = first(ev, 'monitor');
  if (!x) return { summary: 'not reached', lines: [] };
  const base = runtimeBase(seen);
  const lines: Line[] = [
    detail('process', `${shJoin(x.argv)}${x.user ? ` as ${x.user}` : ''}${x.cwd ? ` in ${x.cwd}` : ''}`),
  ];
  if (mon) lines.push(detail('pid', `${mon.pid} on the host; monitor ${mon.monitorPid}`));
  lines.push(...fullArgv(ctx, ev));
  lines.push(
    why(
      "exec starts one more process inside the running container's namespaces and cgroup (runc exec " +
        'joins them with setns); it ends on its own, the container runs on',
    ),
    ...(mon ? [look(`ls -l /proc/${mon.pid}/ns`)] : []),
    ...hand([`${base} exec${x.tty ? ' -t' : ''}${x.user ? ` --user ${x.user}` : ''} ${x.id} ${shJoin(x.argv)}`]),
  );
  return { summary: `${shJoin(x.argv)} joins container ${short(x.id)}${mon ? ` as host pid ${mon.pid}` : ''}`, lines };
}
