/**
 * What a container's /etc/hosts and /etc/resolv.conf get beyond the defaults (etc-files.ts):
 * `host.containers.internal` for the host, as podman adds it, `--add-host NAME:IP` entries
 * (Docker's; `host-gateway` stands for the host's address, so
 * `--add-host host.docker.internal:host-gateway` works as with Docker), and `--dns`,
 * `--dns-search`, `--dns-option`, which replace the host's nameservers, search domains and options.
 *
 * The host's address as a container reaches it: on the root bridge the bridge's gateway (the
 * host's address on tsrun0); elsewhere (rootless slirp4netns, which does not pass the host's
 * loopback, and the host network) the host's first non-loopback IPv4 address, as podman picks.
 * A service published with `-p` on the host is reached there by another container.
 */
import net from 'node:net';
import os from 'node:os';
import { TsrunError } from '../errors.js';
import type { ExtraHost } from '../oci/network.js';

export type { ExtraHost };

export const HOST_GATEWAY = 'host-gateway';
export const HOST_INTERNAL = 'host.containers.internal';

/** Docker's `--add-host NAME:IP` (also NAME=IP); the IP may be IPv6 (`h:::1`, `h:[::1]`) or host-gateway. */
export function parseAddHost(spec: string): ExtraHost {
  const i = spec.search(/[:=]/);
  const name = i > 0 ? spec.slice(0, i) : '';
  let ip = i > 0 ? spec.slice(i + 1) : '';
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!name || /\s/.test(name))
    throw new TsrunError(
      'ERR_USAGE',
      `invalid argument "${spec}" for "--add-host" flag: bad format for add-host: "${spec}"`,
      { hint: 'use --add-host NAME:IP, or NAME:host-gateway' },
    );
  if (ip !== HOST_GATEWAY && net.isIP(ip) === 0) {
    throw new TsrunError(
      'ERR_USAGE',
      `invalid argument "${spec}" for "--add-host" flag: invalid IP address in add-host: "${ip}"`,
      { hint: 'use --add-host NAME:IP, or NAME:host-gateway' },
    );
  }
  return { name, ip };
}

/** The host's first non-loopback IPv4 address not on a container bridge (undefined on a host with none). */
export function hostAddress(): string | undefined {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (/^(tsrun|cni|podman|docker|veth|br-)/.test(name)) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** Lines for /etc/hosts: host.containers.internal, then the --add-host entries (host-gateway resolved). */
export function extraHostLines(extra: readonly ExtraHost[], gateway: string | undefined): string {
  const lines: string[] = [];
  for (const h of extra) {
    const ip = h.ip === HOST_GATEWAY ? gateway : h.ip;
    if (ip) lines.push(`${ip}\t${h.name}`);
  }
  if (gateway && !extra.some((h) => h.name === HOST_INTERNAL)) lines.push(`${gateway}\t${HOST_INTERNAL}`);
  return lines.map((l) => `${l}\n`).join('');
}

export interface DnsOptions {
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOption?: readonly string[];
}

/** `--dns` replaces the nameservers, `--dns-search` the search domains (`.`: none), `--dns-option` the options. */
export function withDnsOptions(text: string, o: DnsOptions): string {
  for (const ip of o.dns ?? []) {
    if (net.isIP(ip) === 0)
      throw new TsrunError('ERR_USAGE', `invalid argument "${ip}" for "--dns" flag: ${ip} is not an ip address`);
  }
  let lines = text
    .replace(/\n+$/, '')
    .split('\n')
    .filter((l) => l !== '');
  if (o.dns?.length)
    lines = [...lines.filter((l) => !/^\s*nameserver\s/.test(l)), ...o.dns.map((ip) => `nameserver ${ip}`)];
  if (o.dnsSearch?.length) {
    lines = lines.filter((l) => !/^\s*(search|domain)\s/.test(l));
    const domains = o.dnsSearch.filter((d) => d !== '.');
    if (domains.length) lines.unshift(`search ${domains.join(' ')}`);
  }
  if (o.dnsOption?.length)
    lines = [...lines.filter((l) => !/^\s*options\s/.test(l)), `options ${o.dnsOption.join(' ')}`];
  return lines.length ? `${lines.join('\n')}\n` : '';
}
