/**
 * Published ports: Docker's `-p`/`-P` syntax, choosing host ports, and how `ps`/`port` show them.
 *
 *   -p [hostIP:][hostPort:]containerPort[/tcp|udp]     ports may be ranges (8000-8009)
 *   -p [::1]:8080:80                                     an IPv6 host address, in brackets
 *   -P                                                   every EXPOSEd port on a free host port
 *
 * Contract: parsing is pure and rejects what Docker rejects with a message naming the spec;
 * `assignHostPorts` turns "any free port" (hostPort 0, or a host range for one container port)
 * into concrete ports and fails with ERR_PORT_IN_USE (exit 125) when a requested port is taken,
 * before anything is made. That check is a courtesy: the monitor binds and holds every host port
 * for the container's life (as podman's conmon does), which is the authoritative check.
 */
import net from 'node:net';
import { TsrunError } from '../errors.js';
import { dgram } from '../util/lazy-builtins.js';
import type { PortMapping, Protocol } from '../oci/network.js';

export type { PortMapping, Protocol };

function usage(spec: string, why: string): TsrunError {
  return new TsrunError('ERR_USAGE', `invalid port specification "${spec}": ${why}`, {
    hint: 'use -p [hostIP:][hostPort:]containerPort[/tcp|udp], e.g. -p 8080:80 or -p 127.0.0.1:8080:80/udp',
  });
}

function parseRange(text: string, spec: string, what: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw usage(spec, `${what} "${text}" is not a port or a range`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) throw usage(spec, `${what} "${text}" is out of 1-65535 or reversed`);
  return [lo, hi];
}

/** One `-p` argument → its mappings (one per container port). */
export function parsePublish(spec: string): PortMapping[] {
  let rest = spec.trim();
  let protocol: Protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp')
      throw usage(spec, p === 'sctp' ? 'sctp is not supported' : `unknown protocol "${p}"`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIP = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':')
      throw usage(spec, 'an IPv6 address must be written [addr]:hostPort:containerPort');
    hostIP = rest.slice(1, close);
    if (net.isIPv6(hostIP) === false) throw usage(spec, `"${hostIP}" is not an IPv6 address`);
    rest = rest.slice(close + 2);
    if (rest.split(':').length !== 2) throw usage(spec, 'expected hostPort:containerPort after the address');
  }
  const parts = rest.split(':');
  if (parts.length > 3) throw usage(spec, 'too many colons (IPv6 addresses go in brackets)');
  let hostText = '';
  let ctrText: string;
  if (parts.length === 3) {
    if (hostIP) throw usage(spec, 'too many colons');
    [hostIP, hostText, ctrText] = parts as [string, string, string];
    if (!net.isIPv4(hostIP)) throw usage(spec, `"${hostIP}" is not an IPv4 address`);
  } else if (parts.length === 2) {
    [hostText, ctrText] = parts as [string, string];
  } else {
    ctrText = parts[0] ?? '';
  }
  if (!ctrText) throw usage(spec, 'no container port');
  const ctr = parseRange(ctrText, spec, 'container port');
  const host = hostText ? parseRange(hostText, spec, 'host port') : undefined;
  const count = ctr[1] - ctr[0] + 1;
  if (host && host[1] - host[0] + 1 !== count) {
    if (count !== 1) throw usage(spec, `the host range ${hostText} and the container range ${ctrText} differ in size`);
    return [{ hostIP, hostPort: 0, containerPort: ctr[0], protocol, hostRange: host }];
  }
  const out: PortMapping[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ hostIP, hostPort: host ? host[0] + i : 0, containerPort: ctr[0] + i, protocol });
  }
  return out;
}

/** `-P`: each EXPOSEd port ("80/tcp", "53/udp", "8080") on any free host port. */
export function publishAll(exposed: string[]): PortMapping[] {
  const out: PortMapping[] = [];
  for (const e of exposed) {
    const [port, proto = 'tcp'] = e.split('/');
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const [lo, hi] = parseRange(port ?? '', e, 'exposed port');
    for (let p = lo; p <= hi; p++) out.push({ hostIP: '', hostPort: 0, containerPort: p, protocol: proto });
  }
  return out;
}

/** Try to bind a host port; resolves with the bound port (useful for 0) or undefined if it is taken. */
function probe(hostIP: string, port: number, protocol: Protocol): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = dgram().createSocket(hostIP && net.isIPv6(hostIP) ? 'udp6' : 'udp4');
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.close();
        if (e.code === 'EADDRINUSE') resolve(undefined);
        else reject(e);
      });
      s.bind({ port, address: hostIP || '0.0.0.0', exclusive: true }, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve(undefined);
      else reject(e);
    });
    srv.listen({ port, host: hostIP || '0.0.0.0', exclusive: true }, () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

export function portInUse(m: Pick<PortMapping, 'hostIP' | 'hostPort' | 'protocol'>): TsrunError {
  return new TsrunError(
    'ERR_PORT_IN_USE',
    `Bind for ${m.hostIP || '0.0.0.0'}:${m.hostPort} failed: port is already allocated`,
    {
      hint: `another program (or container) holds ${m.protocol} port ${m.hostPort}: choose another host port, or -p ${m.hostIP ? `${m.hostIP}::` : ''}CONTAINERPORT for any free one`,
    },
  );
}

/**
 * Concrete host ports for every mapping: requested ports are checked free, "any" ports are
 * chosen by the kernel (as Docker's ephemeral range), host ranges give their first free port.
 * Two mappings may not claim the same host port and protocol.
 */
export async function assignHostPorts(mappings: PortMapping[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  const claimed = new Set<string>();
  const key = (m: PortMapping): string => `${m.protocol}:${m.hostPort}`;
  for (const m of mappings) {
    let port: number | undefined;
    if (m.hostRange) {
      for (let p = m.hostRange[0]; p <= m.hostRange[1] && port === undefined; p++) {
        if (!claimed.has(`${m.protocol}:${p}`)) port = await probe(m.hostIP, p, m.protocol);
      }
      if (port === undefined) throw portInUse({ ...m, hostPort: m.hostRange[0] });
    } else if (m.hostPort === 0) {
      do port = await probe(m.hostIP, 0, m.protocol);
      while (port !== undefined && claimed.has(`${m.protocol}:${port}`));
      if (port === undefined) throw portInUse(m);
    } else {
      if (claimed.has(key(m))) {
        throw new TsrunError('ERR_USAGE', `host port ${m.hostPort}/${m.protocol} is published twice`, {
          hint: 'give each -p its own host port',
        });
      }
      port = await probe(m.hostIP, m.hostPort, m.protocol);
      if (port === undefined) throw portInUse(m);
    }
    const done: PortMapping = {
      hostIP: m.hostIP,
      hostPort: port,
      containerPort: m.containerPort,
      protocol: m.protocol,
    };
    claimed.add(key(done));
    out.push(done);
  }
  return out;
}

function hostAddr(m: PortMapping): string {
  const ip = m.hostIP || '0.0.0.0';
  return `${net.isIPv6(ip) ? `[${ip}]` : ip}:${m.hostPort}`;
}

/**
 * `tsrun port NAME [PRIVATE_PORT[/PROTO]]`: "80/tcp -> 0.0.0.0:8080" lines, or with a port just
 * the host addresses. Undefined when the asked-for port is not published.
 */
export function portLines(published: PortMapping[], query?: string): string[] | undefined {
  const sorted = [...published].sort(
    (a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol),
  );
  if (query === undefined) return sorted.map((m) => `${m.containerPort}/${m.protocol} -> ${hostAddr(m)}`);
  const [port, proto = 'tcp'] = query.split('/');
  const hits = sorted.filter((m) => String(m.containerPort) === port && m.protocol === proto);
  return hits.length > 0 ? hits.map(hostAddr) : undefined;
}
