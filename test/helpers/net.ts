/**
 * Host-side network helpers for tests and benchmarks: a free port, and the host's own address
 * (traffic to it stays on this machine, but goes through the non-loopback path).
 */
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';

/** A TCP port free on every address right now (bound, then closed). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '0.0.0.0', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Whether a TCP port can be listened on at every address right now. */
async function canListen(port: number): Promise<boolean> {
  const s = net.createServer();
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.listen(port, '0.0.0.0', () => r(true));
  });
  if (ok) await new Promise((r) => s.close(r));
  return ok;
}

/**
 * `n` consecutive TCP ports free right now, the first of them returned (for `-p A-B:C-D`). The
 * port after a free one may be any connection's ephemeral port: each one is checked.
 */
export async function freePorts(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = await freePort();
    if (base + n - 1 > 65535) continue;
    let all = true;
    for (let p = base + 1; p < base + n && all; p++) all = await canListen(p);
    if (all) return base;
  }
  throw new Error(`no ${n} consecutive free TCP ports found`);
}

/** The first non-loopback IPv4 address that is not on a container bridge (tsrun 10.66/16, podman 10.88/16). */
export function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? [])
      if (a.family === 'IPv4' && !a.internal && !/^10\.(66|88|9\d)\./.test(a.address)) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this host');
}

/**
 * GET http://host:port/path, retried (for up to 30 s: a server in a container starting beside CPU
 * hogs can take seconds) while it starts.
 */
export async function httpGet(host: string, port: number, urlPath = '/'): Promise<string> {
  let last: unknown;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = http.get({ host, port, path: urlPath, timeout: 2000 }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}
