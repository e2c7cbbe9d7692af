/**
 * The name files a container sees: /etc/hosts, /etc/resolv.conf (hostname is the spec's job).
 * Pure text builders; the caller writes them into the container's etc/ directory, which the
 * runtime bind-mounts over the image's files.
 */

const HOSTS_BASE =
  '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** Docker's /etc/hosts: the loopback names, `extra` lines (--add-host; network/extra-hosts.ts), then the container's address with its hostname. */
export function hostsFile(hostname: string, ip?: string, extra = ''): string {
  return ip ? `${HOSTS_BASE}${extra}${ip}\t${hostname}\n` : `${HOSTS_BASE}${extra}`;
}

/**
 * The host's resolv.conf for a container. In its own network namespace a nameserver on the
 * host's loopback is unreachable (moby libnetwork/resolvconf drops them); when none is left,
 * Docker falls back to Google's public DNS, and so do we. `keepLoopback` is for --network host.
 */
export function resolvConf(hostText: string, keepLoopback: boolean): string {
  if (keepLoopback) return hostText;
  const body = hostText.replace(/\n+$/, '');
  const lines = (body ? body.split('\n') : []).filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return lines.join('\n').replace(/\n*$/, '\n');
}
