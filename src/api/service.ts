/**
 * `tsrun system service`: the Docker Engine API on a unix socket, served from this process for as
 * long as someone uses it (podman's `system service`): no daemon owns the containers (their
 * monitors do, as with the CLI), so the service can come and go, and everything it makes is the
 * CLI's too (one store).
 *
 * Contract:
 * - The socket is made mode 0600 in a 0700 directory: whoever can connect can do what the user
 *   can do with containers (docs/engine-api.md). A socket file nobody answers on is replaced; one
 *   a live service answers on is an error.
 * - Idle exit: after `idleSeconds` with no open connection (a request in flight, a hijacked
 *   attach, a client's kept-alive connection); 0 serves until `close()`. Kept-alive connections
 *   close after 5 s without a request (node's default), so a client that went quiet does not hold
 *   the service forever.
 */
import http from 'node:http';
import net from 'node:net';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { AppContext } from '../app/context.js';
import { openEnv } from '../app/containers.js';
import { Router } from './router.js';
import { ApiState } from './state.js';
import { registerSystemRoutes } from './system.js';
import { registerContainerRoutes } from './containers.js';
import { registerStreamRoutes } from './streams.js';
import { registerImageRoutes } from './images.js';
import { registerArchiveRoutes } from './archive.js';
import { registerExtraRoutes } from './extra.js';
import { registerNetworkRoutes } from './networks.js';
import { registerVolumeRoutes } from './volumes.js';
import { registerContainerToolRoutes } from './container-tools.js';
import { registerDfRoutes } from './df.js';

export interface ServiceOptions {
  ctx: AppContext;
  /** A socket path, or unix:///path. */
  uri: string;
  idleSeconds: number;
  version: string;
  /** Label every container made through this socket with this session id (`--exec`). */
  session?: string;
  /** Called with one line per request answered (`--debug`): method, URL, status, error message. */
  log?: (line: string) => void;
}

export interface Service {
  socket: string;
  state: ApiState;
  /** Resolves once the service stopped (idle, or close()). */
  closed: Promise<void>;
  close(): Promise<void>;
}

/** The default socket: /run/tsrun/docker.sock (root), else $XDG_RUNTIME_DIR/tsrun or /tmp/tsrun-UID. */
export function defaultSocket(uid: number, env: NodeJS.ProcessEnv): string {
  if (uid === 0) return '/run/tsrun/docker.sock';
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'tsrun', 'docker.sock');
  return `/tmp/tsrun-${uid}/docker.sock`;
}

export function socketPath(uri: string): string {
  if (uri.startsWith('unix://')) return uri.slice('unix://'.length);
  if (/^[a-z]+:\/\//.test(uri))
    throw new TsrunError('ERR_USAGE', `serving on ${uri}: only unix sockets are served`, {
      hint: 'give a path or unix:///path (a TCP socket would hand your containers to anyone who can reach it)',
    });
  return uri;
}

async function answering(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function buildRouter(state: ApiState): Router {
  const router = new Router();
  registerSystemRoutes(router, state);
  registerContainerRoutes(router, state);
  registerStreamRoutes(router, state);
  registerArchiveRoutes(router, state);
  registerImageRoutes(router, state);
  registerExtraRoutes(router, state);
  registerVolumeRoutes(router, state);
  registerNetworkRoutes(router, state);
  registerContainerToolRoutes(router, state);
  registerDfRoutes(router, state);
  return router;
}

export async function startService(o: ServiceOptions): Promise<Service> {
  const socket = path.resolve(socketPath(o.uri));
  await fs.mkdir(path.dirname(socket), { recursive: true, mode: 0o700 });
  if (await answering(socket)) {
    throw new TsrunError('ERR_USAGE', `serving on ${socket}: another service answers there`, {
      hint: 'stop it, or give another socket path',
    });
  }
  await fs.rm(socket, { force: true });
  const env = await openEnv(o.ctx);
  const state = new ApiState(o.ctx, env, o.version, o.session);
  const router = buildRouter(state);
  router.log = o.log;

  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish: () => void = () => {};
  const closed = new Promise<void>((r) => (finish = r));
  const server = http.createServer((req, res) => void router.handle(req, res));
  server.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
    const res = new http.ServerResponse(req);
    void router.handle(req, res, { socket: sock, head });
  });
  const stop = async () => {
    if (timer) clearTimeout(timer);
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
    await fs.rm(socket, { force: true });
    finish();
  };
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (o.idleSeconds > 0 && open === 0) timer = setTimeout(() => void stop(), o.idleSeconds * 1000);
  };
  server.on('connection', (s: net.Socket) => {
    open++;
    arm();
    s.on('close', () => {
      open--;
      arm();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Nobody but the owner may connect, even for the instant before chmod.
    const old = process.umask(0o177);
    server.listen(socket, () => {
      process.umask(old);
      resolve();
    });
  });
  await fs.chmod(socket, 0o600);
  arm();
  return { socket, state, closed, close: stop };
}
