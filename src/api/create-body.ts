/**
 * `POST /containers/create`'s body (Config with HostConfig and NetworkingConfig inside, Docker's
 * container.CreateRequest) → app/run.ts's RunOptions, the same options the CLI's flags become,
 * so a container made through the socket is the one `tsrun create` would make with those flags.
 *
 * Untrusted input: each field used is checked for its type here, and a wrong one is a 400 that
 * names it; fields tsrun does not use are ignored (as a newer daemon ignores an older client's).
 */
import type { RunOptions } from '../app/run.js';
import { ApiError } from './errors.js';
import { endpointOptions } from './networks.js';

type Obj = Record<string, unknown>;

function obj(v: unknown, field: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `invalid ${field}: expected an object`);
  return v as Obj;
}

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `invalid ${field}: expected a string`);
  return v;
}

function num(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ApiError(400, `invalid ${field}: expected a number`);
  return v;
}

function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `invalid ${field}: expected a boolean`);
  return v;
}

/** A string list; Docker's strslice also takes a single string. */
function strs(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new ApiError(400, `invalid ${field}: expected a list of strings`);
  return v as string[];
}

function map(v: unknown, field: string): Record<string, string> | undefined {
  const o = obj(v, field);
  if (!o) return undefined;
  for (const [k, x] of Object.entries(o))
    if (typeof x !== 'string') throw new ApiError(400, `invalid ${field}.${k}: expected a string`);
  return o as Record<string, string>;
}

const shellQuote = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** Config.Healthcheck (Test, nanosecond durations, Retries) → the --health-* flags' values. */
function healthFlags(v: unknown): RunOptions['health'] {
  const h = obj(v, 'Healthcheck');
  if (!h) return undefined;
  const test = strs(h.Test, 'Healthcheck.Test') ?? [];
  const dur = (k: string) => {
    const n = num(h[k], `Healthcheck.${k}`);
    return n ? `${Math.round(n / 1e6)}ms` : undefined;
  };
  const retries = num(h.Retries, 'Healthcheck.Retries');
  if (test[0] === 'NONE') return { none: true };
  return {
    cmd:
      test[0] === 'CMD-SHELL'
        ? test.slice(1).join(' ')
        : test[0] === 'CMD'
          ? test.slice(1).map(shellQuote).join(' ')
          : undefined,
    interval: dur('Interval'),
    timeout: dur('Timeout'),
    startPeriod: dur('StartPeriod'),
    startInterval: dur('StartInterval'),
    retries: retries ? String(retries) : undefined,
  };
}

const positive = (n: number | undefined) => (n !== undefined && n !== 0 ? String(n) : undefined);

/** `name` (query) and the body → RunOptions; `labels` are added (the session's). */
export function runOptionsFromBody(body: Obj, name: string | undefined, labels: Record<string, string>): RunOptions {
  const image = str(body.Image, 'Image');
  if (!image) throw new ApiError(400, 'invalid Image: an image is required');
  const hc = obj(body.HostConfig, 'HostConfig') ?? {};
  const entry = strs(body.Entrypoint, 'Entrypoint');
  const cmd = strs(body.Cmd, 'Cmd') ?? [];
  let entrypoint: string | undefined;
  let args = cmd;
  if (entry !== undefined) {
    // RunOptions takes --entrypoint's one word; the rest of a longer ENTRYPOINT leads the args.
    entrypoint = entry[0] ?? '';
    args = [...entry.slice(1), ...cmd];
  }
  const publish: string[] = [];
  for (const [port, binds] of Object.entries(obj(hc.PortBindings, 'HostConfig.PortBindings') ?? {})) {
    const list = (binds ?? [{}]) as unknown;
    if (!Array.isArray(list)) throw new ApiError(400, `invalid HostConfig.PortBindings.${port}: expected a list`);
    for (const b of list.length > 0 ? (list as unknown[]) : [{}]) {
      const o = obj(b, `HostConfig.PortBindings.${port}`) ?? {};
      const ip = str(o.HostIp, 'HostConfig.PortBindings.HostIp') ?? '';
      // "0" (testcontainers) and "" both ask for any free host port.
      const given = str(o.HostPort, 'HostConfig.PortBindings.HostPort') ?? '';
      const hp = given === '0' ? '' : given;
      const ipPart = ip ? (ip.includes(':') ? `[${ip}]:` : `${ip}:`) : '';
      publish.push(hp ? `${ipPart}${hp}:${port}` : ip ? `${ipPart}:${port}` : port);
    }
  }
  const mounts: string[] = [];
  for (const [i, m] of ((hc.Mounts as unknown[] | undefined) ?? []).entries()) {
    const o = obj(m, `HostConfig.Mounts[${i}]`) ?? {};
    const type = str(o.Type, `HostConfig.Mounts[${i}].Type`) ?? 'volume';
    const parts = [`type=${type}`];
    const src = str(o.Source, `HostConfig.Mounts[${i}].Source`);
    if (src) parts.push(`source=${src}`);
    parts.push(`target=${str(o.Target, `HostConfig.Mounts[${i}].Target`) ?? ''}`);
    if (bool(o.ReadOnly, `HostConfig.Mounts[${i}].ReadOnly`)) parts.push('readonly');
    const size = num(obj(o.TmpfsOptions, 'TmpfsOptions')?.SizeBytes, `HostConfig.Mounts[${i}].TmpfsOptions.SizeBytes`);
    if (size) parts.push(`tmpfs-size=${size}`);
    mounts.push(parts.join(','));
  }
  const restart = obj(hc.RestartPolicy, 'HostConfig.RestartPolicy');
  const restartName = str(restart?.Name, 'HostConfig.RestartPolicy.Name');
  const retries = num(restart?.MaximumRetryCount, 'HostConfig.RestartPolicy.MaximumRetryCount');
  const ulimits = ((hc.Ulimits as unknown[] | undefined) ?? []).map((u, i) => {
    const o = obj(u, `HostConfig.Ulimits[${i}]`) ?? {};
    return `${str(o.Name, 'HostConfig.Ulimits.Name')}=${num(o.Soft, 'HostConfig.Ulimits.Soft')}:${num(o.Hard, 'HostConfig.Ulimits.Hard')}`;
  });
  const devices = ((hc.Devices as unknown[] | undefined) ?? []).map((d, i) => {
    const o = obj(d, `HostConfig.Devices[${i}]`) ?? {};
    const host = str(o.PathOnHost, 'HostConfig.Devices.PathOnHost') ?? '';
    const ctr = str(o.PathInContainer, 'HostConfig.Devices.PathInContainer') || host;
    return `${host}:${ctr}:${str(o.CgroupPermissions, 'HostConfig.Devices.CgroupPermissions') || 'rwm'}`;
  });
  const network = str(hc.NetworkMode, 'HostConfig.NetworkMode');
  // NetworkingConfig.EndpointsConfig[NAME]: --network-alias and --ip for the network NAME.
  const endpoints = obj(obj(body.NetworkingConfig, 'NetworkingConfig')?.EndpointsConfig, 'EndpointsConfig') ?? {};
  const epName = network && endpoints[network] !== undefined ? network : Object.keys(endpoints)[0];
  const ep = epName ? endpointOptions(endpoints[epName], `EndpointsConfig.${epName}`) : {};
  const netName = !network || network === 'default' ? epName : network;
  const stopTimeout = num(body.StopTimeout, 'StopTimeout');
  const nano = num(hc.NanoCpus, 'HostConfig.NanoCpus');
  const labelMap = { ...(map(body.Labels, 'Labels') ?? {}), ...labels };
  const tmpfs = Object.entries(map(hc.Tmpfs, 'HostConfig.Tmpfs') ?? {}).map(([p, o]) => (o ? `${p}:${o}` : p));
  const sysctl = Object.entries(map(hc.Sysctls, 'HostConfig.Sysctls') ?? {}).map(([k, v]) => `${k}=${v}`);
  const pids = num(hc.PidsLimit, 'HostConfig.PidsLimit');
  return {
    image,
    args,
    name: name || undefined,
    entrypoint,
    interactive: bool(body.OpenStdin, 'OpenStdin'),
    tty: bool(body.Tty, 'Tty'),
    rm: bool(hc.AutoRemove, 'HostConfig.AutoRemove'),
    env: strs(body.Env, 'Env') ?? [],
    volumes: strs(hc.Binds, 'HostConfig.Binds') ?? [],
    workdir: str(body.WorkingDir, 'WorkingDir') || undefined,
    user: str(body.User, 'User') || undefined,
    hostname: str(body.Hostname, 'Hostname') || undefined,
    readOnly: bool(hc.ReadonlyRootfs, 'HostConfig.ReadonlyRootfs'),
    memory: positive(num(hc.Memory, 'HostConfig.Memory')),
    cpus: nano ? String(nano / 1e9) : undefined,
    pidsLimit: pids !== undefined && pids !== 0 ? String(pids) : undefined,
    runtime: str(hc.Runtime, 'HostConfig.Runtime') || undefined,
    network: !netName || netName === 'default' ? undefined : netName,
    networkAliases: ep.aliases && ep.aliases.length > 0 ? ep.aliases : undefined,
    ip: ep.ip,
    labels: Object.entries(labelMap).map(([k, v]) => `${k}=${v}`),
    // The Engine's create never pulls: the client pulls on a 404 and tries again.
    pull: 'never',
    publish,
    publishAll: bool(hc.PublishAllPorts, 'HostConfig.PublishAllPorts'),
    addHost: strs(hc.ExtraHosts, 'HostConfig.ExtraHosts') ?? [],
    dns: strs(hc.Dns, 'HostConfig.Dns') ?? [],
    dnsSearch: strs(hc.DnsSearch, 'HostConfig.DnsSearch') ?? [],
    dnsOption: strs(hc.DnsOptions, 'HostConfig.DnsOptions') ?? [],
    privileged: bool(hc.Privileged, 'HostConfig.Privileged'),
    capAdd: strs(hc.CapAdd, 'HostConfig.CapAdd') ?? [],
    capDrop: strs(hc.CapDrop, 'HostConfig.CapDrop') ?? [],
    securityOpt: strs(hc.SecurityOpt, 'HostConfig.SecurityOpt') ?? [],
    device: devices,
    ipc: str(hc.IpcMode, 'HostConfig.IpcMode') || undefined,
    pid: str(hc.PidMode, 'HostConfig.PidMode') || undefined,
    uts: str(hc.UTSMode, 'HostConfig.UTSMode') || undefined,
    userns: str(hc.UsernsMode, 'HostConfig.UsernsMode') || undefined,
    mount: mounts,
    tmpfs,
    ulimit: ulimits,
    init: bool(hc.Init, 'HostConfig.Init') || undefined,
    stopSignal: str(body.StopSignal, 'StopSignal') || undefined,
    stopTimeout: stopTimeout !== undefined ? String(stopTimeout) : undefined,
    macAddress: str(body.MacAddress, 'MacAddress') || undefined,
    groupAdd: strs(hc.GroupAdd, 'HostConfig.GroupAdd') ?? [],
    shmSize: positive(num(hc.ShmSize, 'HostConfig.ShmSize')),
    sysctl,
    oomScoreAdj: hc.OomScoreAdj ? String(num(hc.OomScoreAdj, 'HostConfig.OomScoreAdj')) : undefined,
    restart:
      restartName && restartName !== 'no'
        ? restartName === 'on-failure' && retries
          ? `on-failure:${retries}`
          : restartName
        : undefined,
    health: healthFlags(body.Healthcheck),
    // Relative binds have no meaning for a socket's client: sources are taken as given.
    cwd: '/',
  };
}
