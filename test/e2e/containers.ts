/**
 * What the container end-to-end suites share: where a store's volatile state lives, and the
 * list of everything a container can leave behind (records, names, mounts, volumes, monitor and
 * runtime state, and on the host network: attachments, namespaces, veths, leases, iptables rules;
 * user networks' records, endpoints, bridges, rules, leases and DNS server).
 */
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sleep } from '../../src/util/concurrency.js';

export function runDir(r: string): string {
  return path.join('/run/tsrun', createHash('sha256').update(path.resolve(r)).digest('hex').slice(0, 12));
}

/** Everything a container of store `r` can leave behind; [] means clean. */
export async function leftovers(r: string): Promise<string[]> {
  const out: string[] = [];
  const cdir = path.join(r, 'containers');
  for (const n of existsSync(cdir) ? readdirSync(cdir) : []) if (n !== 'names') out.push(`record ${n}`);
  for (const n of existsSync(path.join(cdir, 'names')) ? readdirSync(path.join(cdir, 'names')) : [])
    out.push(`name ${n}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.split(' ')[4]?.startsWith(r)) out.push(`mount ${line.split(' ')[4]}`);
  }
  // Volumes: a test removes what it made (an anonymous one leaks when `rm -v`/`--rm` forgot it),
  // and no half-made or half-removed volume stays under tmp/.
  const vdir = path.join(r, 'volumes');
  for (const n of existsSync(vdir) ? readdirSync(vdir) : []) {
    let anonymous = false;
    try {
      const rec = JSON.parse(readFileSync(path.join(vdir, n, 'volume.json'), 'utf8')) as { Labels?: object | null };
      anonymous = 'com.docker.volume.anonymous' in (rec.Labels ?? {});
    } catch {
      /* a damaged record is a leftover as well */
    }
    out.push(`${anonymous ? 'anonymous ' : ''}volume ${n}`);
  }
  const tdir = path.join(r, 'tmp');
  for (const n of existsSync(tdir) ? readdirSync(tdir) : []) if (n.includes('volume')) out.push(`tmp ${n}`);
  const rd = runDir(r);
  for (const n of existsSync(rd) ? readdirSync(rd) : []) {
    if (n !== 'runc' && !n.startsWith('runtime-')) out.push(`state ${n}`);
  }
  if (existsSync(path.join(rd, 'runc'))) {
    const l = await execa('runc', ['--root', path.join(rd, 'runc'), 'list', '-q'], { reject: false });
    for (const id of String(l.stdout).split('\n').filter(Boolean)) out.push(`runc ${id}`);
  }
  return [...out, ...healthProbes(), ...(await networkLeftovers())];
}

/** Health-check probes (the monitor's `runtime exec --process health-process.json`), host-wide. */
function healthProbes(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes('health-process.json')) out.push(`health probe ${pid} ${argv.join(' ').trim()}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * What the bridge network can leave on the host, less what was there before this test process
 * started (another store's running containers are not this suite's leak). Host-wide otherwise:
 * a leak from any store the tests made is a leak.
 */
export async function networkLeftovers(): Promise<string[]> {
  return (await hostNetworkState()).filter((l) => !preexisting.has(l));
}

async function hostNetworkState(): Promise<string[]> {
  const out: string[] = [];
  const att = '/run/tsrun/net/containers';
  for (const n of existsSync(att) ? readdirSync(att) : []) out.push(`attachment ${n}`);
  const ipam = '/run/tsrun/net/ipam/tsrun';
  for (const n of existsSync(ipam) ? readdirSync(ipam) : []) {
    if (n !== 'lock' && !n.startsWith('last_reserved_ip')) out.push(`lease ${n}`);
  }
  for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
    if (n.startsWith('tsrun-')) out.push(`netns ${n}`);
  // The tuning plugin's backup of an interface (--mac-address), dropped by its DEL.
  const tuning = '/run/cni/tuning';
  for (const n of existsSync(tuning) ? readdirSync(tuning) : []) out.push(`tuning backup ${n}`);
  const links = await execa('ip', ['-o', 'link', 'show', 'master', 'tsrun0'], { reject: false });
  for (const l of String(links.stdout).split('\n').filter(Boolean)) out.push(`veth ${l.split(':')[1]?.trim()}`);
  for (const table of ['nat', 'filter']) {
    const rules = await execa('iptables-save', ['-t', table], { reject: false });
    for (const l of String(rules.stdout).split('\n')) {
      if (
        /name: \\?"tsrun\\?" id:/.test(l) ||
        /CNI-FORWARD .*-[ds] \d/.test(l) ||
        /CNI-DN-/.test(l) ||
        /TSRUN-DN-/.test(l) ||
        /tsrun ports id:/.test(l)
      )
        out.push(`iptables ${table}: ${l}`);
    }
  }
  out.push(...(await userNetworkState()));
  return out;
}

/** What user networks (tsrun network create) leave: records, endpoints, bridges, rules, leases, DNS. */
async function userNetworkState(): Promise<string[]> {
  const out: string[] = [];
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  for (const n of ls('/run/tsrun/net/networks')) out.push(`network ${n}`);
  for (const n of ls('/run/tsrun/net/endpoints')) out.push(`endpoints ${n}`);
  for (const n of ls('/run/tsrun/net/aardvark')) out.push(`dns config ${n}`);
  for (const n of ls('/run/tsrun/net/ipam')) if (n.startsWith('tsrun-net-')) out.push(`leases ${n}`);
  const links = await execa('ip', ['-o', 'link', 'show'], { reject: false });
  for (const l of String(links.stdout).split('\n')) {
    const name = l.split(':')[1]?.trim().split('@')[0];
    if (name?.startsWith('tsbr-')) out.push(`bridge ${name}`);
  }
  // A removed network's rules: its bridge named in tsrun's chains (and the old per-network chains).
  for (const table of ['nat', 'filter']) {
    const rules = await execa('iptables-save', ['-t', table], { reject: false });
    for (const l of String(rules.stdout).split('\n'))
      if (/TSRUN-NET-/.test(l) || /^-A TSRUN-\S+ .*tsbr-[0-9a-f]/.test(l)) out.push(`iptables ${table}: ${l}`);
  }
  const dns = await execa('pgrep', ['-af', 'aardvark-dns'], { reject: false });
  for (const l of String(dns.stdout).split('\n'))
    if (l.includes('/run/tsrun/net/aardvark')) out.push(`dns process ${l}`);
  return out;
}

// Taken when the suites are imported, before any test runs.
const preexisting = new Set(await hostNetworkState());

export async function eventually(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(100);
  }
  assert.unreachable(`timed out waiting for: ${what}`);
}
