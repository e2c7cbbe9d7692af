/**
 * A misbehaving front for a real registry, on loopback: it forwards every request to the
 * registry, and for blob downloads it can cut the connection halfway through, stop sending
 * halfway through (the connection stays open), or hide Range support (strip the header, so the
 * registry answers 200 with the whole blob); for uploads, it can cut the first PATCH halfway
 * through its body. What a flaky link, a stuck proxy or an old CDN does.
 *
 * It counts the blob bytes it actually sent, per digest, so a test can tell a resumed download
 * (about one blob's worth) from one started over (more).
 */
import http from 'node:http';
import type net from 'node:net';

export type FrontMode =
  'pass' | 'drop' | 'stall' | 'drop-no-range' | 'always-drop' | 'drop-upload' | 'drop-upload-early';

export interface FlakyFront {
  host: string;
  mode: FrontMode;
  /** Blob bytes sent to clients, by digest. */
  sent: Map<string, number>;
  /** Blob requests seen, by digest, with their Range header ('' when none). */
  requests: Map<string, string[]>;
  /** Upload requests seen: "POST", "PATCH <Content-Range>", "GET", "PUT". */
  uploads: string[];
  stop(): Promise<void>;
}

const BLOB = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

export async function startFlakyFront(upstream: string, mode: FrontMode): Promise<FlakyFront> {
  const sockets = new Set<net.Socket>();
  const front: FlakyFront = { host: '', mode, sent: new Map(), requests: new Map(), uploads: [], stop: async () => {} };
  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? BLOB.exec(req.url ?? '') : null;
    const digest = m?.[1];
    // The Host header is kept, so the URLs the registry hands out (upload Locations) lead back here.
    const headers = { ...req.headers };
    if (digest) {
      const seen = front.requests.get(digest) ?? [];
      seen.push(String(req.headers.range ?? ''));
      front.requests.set(digest, seen);
      if (front.mode === 'drop-no-range') delete headers.range;
    }
    const upload = /\/blobs\/uploads\//.test(req.url ?? '');
    if (upload)
      front.uploads.push(
        req.method === 'PATCH' ? `PATCH ${String(req.headers['content-range'] ?? '')}` : String(req.method),
      );
    // 'drop-upload': the first PATCH gets half its body through, then both connections are cut;
    // 'drop-upload-early': none of it (the registry's session stays consistent).
    const cutUpload =
      (front.mode === 'drop-upload' || front.mode === 'drop-upload-early') &&
      req.method === 'PATCH' &&
      front.uploads.filter((u) => u.startsWith('PATCH')).length === 1;
    const up = http.request(
      {
        host: upstream.split(':')[0],
        port: Number(upstream.split(':')[1]),
        method: req.method,
        path: req.url,
        headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!digest) {
          ur.pipe(res);
          return;
        }
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
        ur.on('end', () => {
          if (!res.destroyed) res.end();
        });
      },
    );
    up.on('error', () => res.destroy());
    if (!cutUpload) {
      req.pipe(up);
      return;
    }
    if (front.mode === 'drop-upload-early') {
      up.destroy();
      req.socket.destroy();
      return;
    }
    const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2);
    let through = 0;
    req.on('data', (chunk: Buffer) => {
      if (through >= half) return;
      const part = chunk.subarray(0, half - through);
      through += part.length;
      up.write(part);
      if (through >= half)
        setTimeout(() => {
          up.destroy();
          req.socket.destroy();
        }, 50);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  front.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return front;
}
