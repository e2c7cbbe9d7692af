/**
 * Name resolution on user networks through aardvark-dns, the DNS server podman's netavark uses
 * (Debian: aardvark-dns, in /usr/lib/podman). tsrun only writes its configuration and signals it;
 * it never answers a query itself.
 *
 * aardvark's configuration (its config.md, version 1.4): a directory with one file per network,
 * named after it. The first line lists the addresses to listen on (the bridge's gateway); each
 * further line is one container: `ID IPV4S IPV6S NAMES` (comma-separated lists, an empty IPv6
 * column is two spaces). aardvark answers a container only with the names of the networks the
 * asking address shares with them, and forwards every other name to the host's resolvers
 * (/etc/resolv.conf). `aardvark-dns --config DIR -p 53 run` forks a server that writes its pid
 * to DIR/aardvark.pid and returns once it serves; SIGHUP makes it read the directory again, and
 * with no network file left it exits (and removes its pid file).
 *
 * One server serves every tsrun network of the host (all stores):
 *   /run/tsrun/net/aardvark/<network id>   one network's file (named by id: names may be reused)
 *   /run/tsrun/net/aardvark.tmp/           where files are written before the rename into place,
 *                                           so aardvark never reads a half-written one
 *   /run/tsrun/net/aardvark.lock           flock over every read-modify-write and the signal
 *
 * Contract: `setEntry`/`dropEntry`/`dropNetwork` are idempotent. A network's file (and so the
 * server) stays while the network does, even with no container: starting and stopping the
 * server at each container's start and exit cost `run --rm` half a second. `dropNetwork` of
 * the last network stops the server, so a host without user networks has no DNS process.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { withFileLock } from '../native/index.js';
import { pidAlive } from '../util/fs.js';
import { runProgram, which } from '../util/exec.js';
import { NET_RUN_DIR } from './bridge.js';

export const DNS_DIR = path.join(NET_RUN_DIR, 'aardvark');
const TMP_DIR = path.join(NET_RUN_DIR, 'aardvark.tmp');
const PID_FILE = path.join(DNS_DIR, 'aardvark.pid');

/** Where Debian, Fedora and a source build put it. */
const CANDIDATES = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'];

export interface DnsEntry {
  id: string;
  ip: string;
  names: string[];
}

async function aardvarkBinary(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.TSRUN_AARDVARK) return env.TSRUN_AARDVARK;
  for (const c of CANDIDATES) {
    try {
      await fs.access(c, fs.constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  const found = await which('aardvark-dns', env);
  if (found) return found;
  throw new TsrunError('ERR_CNI', 'starting the DNS server of a user network: aardvark-dns is missing', {
    hint: 'apt-get install aardvark-dns (or set TSRUN_AARDVARK to its path)',
  });
}

function parse(text: string): { listen: string; entries: DnsEntry[] } {
  const [first = '', ...rest] = text.split('\n');
  const entries: DnsEntry[] = [];
  for (const line of rest) {
    const [id, ip, , names] = line.split(' ');
    if (id && ip && names) entries.push({ id, ip, names: names.split(',') });
  }
  return { listen: first.trim(), entries };
}

function format(listen: string, entries: DnsEntry[]): string {
  return `${[listen, ...entries.map((e) => `${e.id} ${e.ip}  ${e.names.join(',')}`)].join('\n')}\n`;
}

/**
 * Whether `pid` runs (a zombie does not: the server, daemonized, is reparented to whichever
 * subreaper is nearest, e.g. a container's monitor when cleanup updated the names, which may
 * reap it late).
 */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

/** The running server's pid, if there is one (and it is aardvark, not a reused pid). */
function serverPid(): number | undefined {
  try {
    const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid) || !running(pid)) return undefined;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('aardvark') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Make the server read its directory again: SIGHUP it, or start it when files exist and it does
 * not run. With no file left it is stopped here (SIGTERM, which it does not catch: at once)
 * rather than left to exit on SIGHUP, which takes it half a second, during which a new network
 * would signal a server on its way out.
 */
async function reload(env: NodeJS.ProcessEnv, start: boolean): Promise<void> {
  const files = (await fs.readdir(DNS_DIR).catch(() => [] as string[])).filter((n) => n !== 'aardvark.pid');
  const pid = serverPid();
  if (pid !== undefined && files.length === 0) {
    process.kill(pid, 'SIGTERM');
    for (const end = Date.now() + 5000; running(pid) && Date.now() < end;) await new Promise((r) => setTimeout(r, 5));
    await fs.rm(PID_FILE, { force: true });
    return;
  }
  if (pid !== undefined) {
    process.kill(pid, 'SIGHUP');
    return;
  }
  if (files.length === 0 || !start) return;
  const bin = await aardvarkBinary(env);
  const r = await runProgram(bin, ['--config', DNS_DIR, '-p', '53', 'run'], { timeoutMs: 10_000 });
  if (r.code !== 0)
    throw new TsrunError('ERR_CNI', `starting aardvark-dns: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, {
      hint: 'something else may listen on port 53 of the network gateway',
    });
}

async function update(
  networkId: string,
  env: NodeJS.ProcessEnv,
  change: (cur: { listen: string; entries: DnsEntry[] }) => { listen: string; entries: DnsEntry[] } | undefined,
  start = false,
): Promise<void> {
  await fs.mkdir(DNS_DIR, { recursive: true, mode: 0o700 });
  await fs.mkdir(TMP_DIR, { recursive: true, mode: 0o700 });
  await withFileLock(path.join(NET_RUN_DIR, 'aardvark.lock'), 'ex', async () => {
    const file = path.join(DNS_DIR, networkId);
    const cur = parse(await fs.readFile(file, 'utf8').catch(() => ''));
    const next = change(cur);
    if (next === undefined) {
      await fs.rm(file, { force: true });
    } else {
      const tmp = path.join(TMP_DIR, `${networkId}.${process.pid}`);
      await fs.writeFile(tmp, format(next.listen, next.entries), { mode: 0o600 });
      await fs.rename(tmp, file);
    }
    await reload(env, start);
  });
}

/** Add or replace container `e.id` in network `networkId`'s names (the server listens on `gateway`). */
export async function setEntry(networkId: string, gateway: string, e: DnsEntry, env: NodeJS.ProcessEnv) {
  await update(
    networkId,
    env,
    (cur) => ({ listen: gateway, entries: [...cur.entries.filter((x) => x.id !== e.id), e] }),
    true,
  );
}

/** Remove container `id` from network `networkId`'s names; idempotent. */
export async function dropEntry(networkId: string, id: string, env: NodeJS.ProcessEnv): Promise<void> {
  const file = path.join(DNS_DIR, networkId);
  try {
    await fs.access(file);
  } catch {
    return;
  }
  await update(networkId, env, (cur) => ({ ...cur, entries: cur.entries.filter((x) => x.id !== id) }));
}

/** Forget network `networkId` (network rm); the last one gone stops the server. Idempotent. */
export async function dropNetwork(networkId: string, env: NodeJS.ProcessEnv): Promise<void> {
  await update(networkId, env, () => undefined);
}

/** A container's resolv.conf on user networks: the gateways' DNS servers, the host's search and options. */
export function userResolvConf(hostResolv: string, gateways: string[]): string {
  const keep = hostResolv.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return `${[...gateways.map((g) => `nameserver ${g}`), ...keep].join('\n')}\n`;
}

/**
 * A container's resolv.conf with the DNS servers of user networks it joined after it was made
 * (a default-bridge container connected to them, as Docker then answers through its embedded
 * server): `add`'s nameserver lines first, `drop`'s removed, everything else kept.
 */
export function withNameservers(resolv: string, add: readonly string[], drop: readonly string[] = []): string {
  const ns = (l: string) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1];
  const gone = new Set([...add, ...drop]);
  const rest = resolv.split('\n').filter((l) => !gone.has(ns(l) ?? ''));
  const text = [...add.map((g) => `nameserver ${g}`), ...rest].join('\n');
  return text.endsWith('\n') ? text : `${text}\n`;
}
