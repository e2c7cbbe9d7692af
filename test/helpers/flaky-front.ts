/**
 * A misbehaving front for a real registry, on loopback: it forwards every request to the
 * registry, and for blob downloads it can cut the connection halfway through, stop sending
 * halfway through (the connection stays open), or hide Range support (strip the header, so the
 * registry answers 200 with the whole blob). What a flaky link, a stuck proxy or an old CDN does.
 *
 * It counts the blob bytes it actually sent, per digest, so a test can tell a resumed download
 * (about one blob's worth) from one started over (more).
 */
import http from 'node:http';
import type net from 'node:net';

export type FrontMode = 'pass' | 'drop' | 'stall' | 'drop-no-range' | 'always-drop';

export interface FlakyFront {
  host: string;
  mode: FrontMode;
  /** Blob bytes sent to clients, by digest. */
  sent: Map<string, number>;
  /** Blob requests seen, by digest, with their Range header ('' when none). */
  requests: Map<string, string[]>;
  stop(): Promise<void>;
}

const BLOB = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

export async function startFlakyFront(upstream: string, mode: FrontMode): Promise<FlakyFront> {
  const sockets = new Set<net.Socket>();
  const front: FlakyFront = { host: '', mode, sent: new Map(), requests: new Map(), stop: async () => {} };
  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? BLOB.exec(req.url ?? '') : null;
    const digest = m?.[1];
    const headers = { ...req.headers, host: upstream };
    if (digest) {
      const seen = front.requests.get(digest) ?? [];
      seen.push(String(req.headers.range ?? ''));
      front.requests.set(digest, seen);
      if (front.mode === 'drop-no-range') delete headers.range;
    }
    const up = http.request({ host: upstream.split(':')[0], port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!digest) { ur.pipe(res); return; }
      const total = Number(ur.headers['content-length'] ?? 0);
      const first = (front.requests.get(digest)?.length ?? 0) === 1;
      // 'always-drop' spares small blobs (the config), so a test knows which blob fails.
      const misbehave = front.mode === 'always-drop' ? total >= 64 * 1024 : first && front.mode !== 'pass';
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (res.destroyed) return;
        if (misbehave && sent + chunk.length >= total / 2) {
          const part = chunk.subarray(0, Math.max(0, Math.floor(total / 2) - sent));
          res.write(part);
          front.sent.set(digest, (front.sent.get(digest) ?? 0) + part.length);
          ur.destroy();
          if (front.mode === 'stall') return; // keep the connection open, send nothing more
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        }
        sent += chunk.length;
        front.sent.set(digest, (front.sent.get(digest) ?? 0) + chunk.length);
        res.write(chunk);
      });
      ur.on('end', () => { if (!res.destroyed) res.end(); });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  front.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return front;
}
