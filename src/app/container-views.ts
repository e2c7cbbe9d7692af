/**
 * Docker's views of a container: `inspect`'s JSON (moby's ContainerJSON shape: State, Config,
 * HostConfig, NetworkSettings, Mounts …) and `port`'s lines. Read-only: built from the record
 * and the observed state, never changing either. Split from containers.ts (the lifecycle).
 */
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { Container, UserNetworkRef } from '../runtime/records.js';
import { portLines, type PortMapping } from '../network/ports.js';
import { netnsPath, type NetworkInfo } from '../network/bridge.js';
import { storageDriver, type Env } from './containers.js';
import { volumeStore } from './volumes.js';
import { healthOf } from './healthcheck.js';
import { builtinNetworkId, dnsNames, endpointId, onUserNetworks } from './networks.js';

/** What the bridge gave the container, while it runs (the record keeps the last start's). */
function liveNetwork(c: Container): NetworkInfo | undefined {
  return c.observed.status === 'running' ? c.record.state.network : undefined;
}

/** `tsrun port NAME [PORT[/PROTO]]`. */
export async function containerPorts(env: Env, query: string, port?: string): Promise<string[]> {
  const c = await env.containers.find(query);
  const lines = portLines(liveNetwork(c)?.ports ?? [], port);
  if (!lines) {
    throw new TsrunError(
      'ERR_USAGE',
      `no public port '${port?.includes('/') ? port : `${port}/tcp`}' published for ${query}`,
      {
        hint: `see \`tsrun port ${query}\` for what is published`,
      },
    );
  }
  return lines;
}

/** `docker container inspect` JSON (the fields tsrun has). */
export function inspectView(env: Env, c: Container): Record<string, unknown> {
  const r = c.record;
  const o = c.observed;
  return {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: {
      Status: o.paused ? 'paused' : o.status,
      Running: o.status === 'running',
      Paused: o.paused ?? false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: o.pid,
      ExitCode: o.exitCode,
      Error: r.state.error ?? '',
      StartedAt: o.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: o.finishedAt ?? '0001-01-01T00:00:00Z',
      ...withHealth(c),
    },
    Image: r.imageId,
    ResolvConfPath: path.join(c.paths.etc, 'resolv.conf'),
    HostnamePath: path.join(c.paths.etc, 'hostname'),
    HostsPath: path.join(c.paths.etc, 'hosts'),
    LogPath: c.paths.log,
    Name: `/${r.name}`,
    RestartCount: r.restartCount,
    Driver: storageDriver(env, r),
    Platform: 'linux',
    HostConfig: {
      Binds: [
        ...r.host.binds.map((b) => `${b.source}:${b.destination}${b.readonly ? ':ro' : ''}`),
        ...(r.host.volumes ?? [])
          .filter((v) => !v.anonymous)
          .map((v) => `${v.name}:${v.destination}${v.readonly ? ':ro' : ''}`),
      ],
      NetworkMode: r.host.network,
      AutoRemove: r.host.autoRemove,
      ReadonlyRootfs: r.host.readonly,
      Runtime: r.host.runtime,
      Memory: r.host.memory ?? 0,
      NanoCpus: r.host.cpus ? Math.round(r.host.cpus * 1e9) : 0,
      PidsLimit: r.host.pidsLimit ?? null,
      PortBindings: portMap(r.host.ports ?? [], ''),
      PublishAllPorts: false,
      RestartPolicy: r.host.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 },
      // Logs are kept and read back (`logs`, the API's logs): Docker's name for that driver.
      // docker-compose reads no logs of a container without one.
      LogConfig: { Type: 'json-file', Config: {} },
      ...r.host.extra,
    },
    GraphDriver: {
      Name: storageDriver(env, r),
      Data: {
        LowerDir: [...r.layers]
          .reverse()
          .map((l) => env.store.layerDiff(l))
          .join(':'),
        UpperDir: c.paths.upper,
        WorkDir: c.paths.work,
        MergedDir: c.paths.rootfs,
      },
    },
    NetworkSettings: networkSettings(c),
    Mounts: [
      ...r.host.binds.map((b) => ({
        Type: 'bind',
        Source: b.source,
        Destination: b.destination,
        Mode: b.readonly ? 'ro' : '',
        RW: !b.readonly,
        Propagation: 'rprivate',
      })),
      ...(r.host.volumes ?? []).map((v) => ({
        Type: 'volume',
        Name: v.name,
        Source: volumeStore(env).dataPath(v.name),
        Destination: v.destination,
        Driver: 'local',
        Mode: v.nocopy ? 'nocopy' : 'z',
        RW: !v.readonly,
        Propagation: '',
      })),
    ],
    Config: {
      Hostname: r.config.hostname,
      User: r.config.user,
      Tty: r.config.tty,
      OpenStdin: r.config.openStdin,
      Env: r.config.env,
      Cmd: r.config.cmd,
      Image: r.image,
      WorkingDir: r.config.cwd,
      Entrypoint: r.config.entrypoint,
      Labels: r.config.labels,
      ExposedPorts: Object.fromEntries(r.config.exposedPorts.map((p) => [p, {}])),
      StopSignal: r.config.stopSignal ?? 'SIGTERM',
      ...(r.config.stopTimeout !== undefined ? { StopTimeout: r.config.stopTimeout } : {}),
      ...(r.config.healthcheck ? { Healthcheck: r.config.healthcheck } : {}),
      ...(r.config.shell ? { Shell: r.config.shell } : {}),
    },
  };
}

function withHealth(c: Container): { Health?: unknown } {
  const h = healthOf(c);
  return h ? { Health: h } : {};
}

/**
 * Docker's port map: HostConfig.PortBindings as asked ("" for any address or any port), or
 * NetworkSettings.Ports as bound (`defaultIP` 0.0.0.0).
 */
function portMap(ports: PortMapping[], defaultIP: string): Record<string, { HostIp: string; HostPort: string }[]> {
  const m: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) {
    const hostPort = p.hostRange ? `${p.hostRange[0]}-${p.hostRange[1]}` : p.hostPort ? String(p.hostPort) : '';
    (m[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIP || defaultIP, HostPort: hostPort });
  }
  return m;
}

/** Docker's EndpointSettings: the addresses while the container runs, the configuration always. */
function endpointSettings(
  c: Container,
  networkId: string,
  n: NetworkInfo | undefined,
  ref?: UserNetworkRef,
): Record<string, unknown> {
  return {
    IPAMConfig: ref?.ip ? { IPv4Address: ref.ip } : null,
    Links: null,
    Aliases: ref ? ref.aliases : null,
    MacAddress: n?.mac ?? '',
    DriverOpts: null,
    NetworkID: networkId,
    EndpointID: n?.ip ? endpointId(c.record.id, networkId) : '',
    Gateway: n?.gateway ?? '',
    IPAddress: n?.ip ?? '',
    IPPrefixLen: n?.prefixLen ?? 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: ref ? dnsNames(c.record, ref) : null,
  };
}

/** NetworkSettings.Networks: the default bridge (or host/none) and every user network, by name. */
export function networkEndpoints(c: Container): Record<string, unknown> {
  const r = c.record;
  const live = c.observed.status === 'running' ? (r.state.networks ?? {}) : {};
  const out: Record<string, unknown> = {};
  if (!onUserNetworks(r)) out[r.host.network] = endpointSettings(c, builtinNetworkId(r.host.network), liveNetwork(c));
  for (const ref of r.host.networks ?? []) out[ref.name] = endpointSettings(c, ref.id, live[ref.name], ref);
  return out;
}

/** Docker's NetworkSettings: the default bridge's address at the top (as Docker has it), every network's below. */
function networkSettings(c: Container): Record<string, unknown> {
  const n = liveNetwork(c);
  const ports: Record<string, unknown> = portMap(n?.ports ?? [], '0.0.0.0');
  for (const e of c.record.config.exposedPorts) ports[e.includes('/') ? e : `${e}/tcp`] ??= null;
  const bridge = c.record.host.network === 'bridge' ? n : undefined;
  return {
    Bridge: n?.bridge ?? '',
    SandboxID: n ? endpointId(c.record.id, 'sandbox') : '',
    SandboxKey: n ? netnsPath(c.record.id) : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: ports,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: bridge?.ip ? endpointId(c.record.id, builtinNetworkId('bridge')) : '',
    Gateway: bridge?.gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: bridge?.ip ?? '',
    IPPrefixLen: bridge?.prefixLen ?? 0,
    IPv6Gateway: '',
    MacAddress: bridge?.mac ?? '',
    Networks: networkEndpoints(c),
  };
}
