/**
 * A small router for the Engine API over node's http server: Docker's paths with and without the
 * `/vX.Y` prefix (every version is served, none refused: the prefix is dropped), `{name}` path
 * parameters (an image name may hold slashes: `{name*}` takes them), and Docker's errors as JSON
 * `{"message": …}` with the Engine's status codes (errors.ts).
 *
 * Contract: a handler either answers through `res` (and returns once it has) or throws; the
 * router turns a throw into an error body unless headers went out already (then it ends the
 * response or drops a hijacked connection). Unknown query parameters and body fields are ignored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError, toApiError } from './errors.js';

export interface ApiRequest {
  method: string;
  /** The path without the version prefix, e.g. /containers/abc/json. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  req: IncomingMessage;
  res: ServerResponse;
  /** Set when the client asked for a connection upgrade (attach, exec start): the raw socket. */
  upgrade?: { socket: Duplex; head: Buffer };
}

export type Handler = (r: ApiRequest) => Promise<void>;

interface Route {
  method: string;
  re: RegExp;
  names: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];
  /** One line per request once answered (the service's `--debug`): what a client asked and got. */
  log?: (line: string) => void;

  add(method: string, pattern: string, handler: Handler): this {
    const names: string[] = [];
    const re = pattern.replace(/\{(\w+)(\*?)\}/g, (_m, name: string, star: string) => {
      names.push(name);
      return star ? '(.+?)' : '([^/]+)';
    });
    this.routes.push({ method, re: new RegExp(`^${re}/?$`), names, handler });
    return this;
  }

  /** The route for a request, with its parameters; HEAD falls back to GET's. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | undefined {
    for (const m of method === 'HEAD' ? ['HEAD', 'GET'] : [method]) {
      for (const r of this.routes) {
        if (r.method !== m) continue;
        const hit = r.re.exec(path);
        if (!hit) continue;
        const params: Record<string, string> = {};
        r.names.forEach((n, i) => (params[n] = decodeURIComponent(hit[i + 1] ?? '')));
        return { handler: r.handler, params };
      }
    }
    return undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse, upgrade?: ApiRequest['upgrade']): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://docker');
    const path = url.pathname.replace(/^\/v\d+(\.\d+)?(?=\/)/, '');
    const method = req.method ?? 'GET';
    if (this.log) {
      const log = this.log;
      const t0 = Date.now();
      const done = (status: number | string) => log(`${method} ${req.url ?? ''} → ${status} (${Date.now() - t0} ms)`);
      if (upgrade) upgrade.socket.once('close', () => done('closed'));
      else res.once('close', () => done(res.statusCode));
    }
    try {
      const m = this.match(method, path);
      if (!m) throw new ApiError(404, `page not found`);
      await m.handler({ method, path, params: m.params, query: url.searchParams, req, res, upgrade });
    } catch (err) {
      const e = toApiError(err);
      this.log?.(`${method} ${req.url ?? ''}: ${e.status} ${e.message}`);
      if (upgrade && (upgrade.socket as Socket).bytesWritten > 0) {
        upgrade.socket.destroy();
        return;
      }
      if (upgrade) {
        // No 101 went out: answer on the raw socket as HTTP/1.1.
        const body = JSON.stringify({ message: e.message });
        upgrade.socket.end(
          `HTTP/1.1 ${e.status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
        return;
      }
      sendJson(res, e.status, { message: e.message });
    }
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function noContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

/** The request body as JSON (an empty body is `{}`); a body that does not parse is a 400. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ApiError(400, `invalid JSON body: ${(err as Error).message}`);
  }
}

/** Docker's boolean query parameters: 1, true, True (anything else, or absent, is false). */
export function queryBool(q: URLSearchParams, name: string, dflt = false): boolean {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  return v === '1' || v.toLowerCase() === 'true';
}

/** `filters`: Docker's JSON map of key → values (or key → {value: true}) as KEY=VALUE strings. */
export function queryFilters(q: URLSearchParams): string[] {
  const raw = q.get('filters');
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `invalid filters: ${raw}`);
  }
  const out: string[] = [];
  if (!parsed || typeof parsed !== 'object') return out;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const values = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.keys(v) : [];
    for (const x of values) out.push(`${k}=${String(x)}`);
  }
  return out;
}
