/**
 * A real registry for tests: Debian's `docker-registry` (distribution 2.8) on a free loopback
 * port, configured by a generated YAML file in a temp dir, with filesystem storage in that dir.
 *
 * Modes (`auth`):
 * - 'anonymous': no auth at all.
 * - 'htpasswd': HTTP Basic against a bcrypt file made with `htpasswd -Bbn`.
 * - 'token': the Docker Hub way. A token service runs in this process (node:http, another
 *   loopback port) and issues ES256 JWTs signed with a key whose self-signed certificate (made
 *   with the `openssl` CLI) is the registry's `auth.token.rootcertbundle`; the certificate rides
 *   in the JWT header's `x5c`, which distribution verifies against the bundle. Anonymous callers
 *   get `pull` on repositories `isPublic(name)` accepts; users with the right password get
 *   pull+push; a wrong password is a 401. Refresh tokens (identity tokens) are accepted by POST.
 *
 * Contract: `stop()` kills the registry, waits for it to exit, closes the token service and
 * removes the temp dir; it is safe to call twice. Missing binaries throw (never skip) — a test
 * that needs this harness fails loudly when the prerequisites are absent.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type RegistryAuthMode = 'anonymous' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuthMode;
  /** username → password (htpasswd and token modes). Default { alice: 'wonderland' }. */
  users?: Record<string, string>;
  /** Token mode: repositories anyone may pull (default: names starting with 'public/' or 'library/'). */
  isPublic?: (repository: string) => boolean;
  /** Token mode: refresh token → username, accepted by POST grant_type=refresh_token. */
  refreshTokens?: Record<string, string>;
  /** Token mode: lifetime of issued tokens in seconds (default 300). */
  tokenExpiresIn?: number;
  /** Path of the registry binary (default /usr/bin/docker-registry, or $TSRUN_TEST_REGISTRY_BIN). */
  binary?: string;
}

export interface TokenServiceInfo {
  realm: string;
  service: string;
  issuer: string;
}

export interface TestRegistry {
  /** '127.0.0.1:PORT' */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  auth: RegistryAuthMode;
  users: Record<string, string>;
  /** Token mode only. */
  token?: TokenServiceInfo;
  /** How many requests the token service has answered (any outcome). */
  tokenRequests(): number;
  /** The Authorization header of every token request, in order (to check what was sent). */
  tokenRequestLog(): Array<{ method: string; url: string; user?: string; status: number }>;
  /** Registry temp dir (storage lives in `${dir}/data`). */
  dir: string;
  stop(): Promise<void>;
}

const DEFAULT_USERS = { alice: 'wonderland' };

export function registryBinary(opts: { binary?: string } = {}): string {
  return opts.binary ?? process.env['TSRUN_TEST_REGISTRY_BIN'] ?? '/usr/bin/docker-registry';
}

/** Throws a clear error when something the harness needs is missing. */
export function checkPrerequisites(mode: RegistryAuthMode, binary = registryBinary()): void {
  const need: Array<[string, string]> = [[binary, 'docker-registry (apt install docker-registry)']];
  if (mode === 'htpasswd') need.push(['/usr/bin/htpasswd', 'htpasswd (apt install apache2-utils)']);
  if (mode === 'token') need.push(['/usr/bin/openssl', 'openssl (apt install openssl)']);
  for (const [path, what] of need) {
    if (!existsSync(path) && !onPath(path.split('/').pop() as string))
      throw new Error(`test registry: ${what} is not installed (${path})`);
  }
}

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

interface TokenKey {
  keyPem: string;
  certDerB64: string;
  certPath: string;
}

function makeTokenKey(dir: string): TokenKey {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=tsrun-test-token-issuer',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const cert = new X509Certificate(readFileSync(certPath));
  return { keyPem: readFileSync(keyPath, 'utf8'), certDerB64: cert.raw.toString('base64'), certPath };
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

function signJwt(key: TokenKey, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [key.certDerB64] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = createSign('SHA256').update(input).sign({ key: key.keyPem, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

/** Parse `repository:name:pull,push` scopes (the name may contain ':'? no — but keep the last ':' rule). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function startTokenService(
  key: TokenKey,
  info: TokenServiceInfo,
  opts: {
    users: Record<string, string>;
    isPublic: (r: string) => boolean;
    refreshTokens: Record<string, string>;
    expiresIn: number;
  },
  log: Array<{ method: string; url: string; user?: string; status: number }>,
): Promise<http.Server> {
  const issue = (user: string | undefined, scopes: string[]) => {
    const access: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      // The catalog (GET /v2/_catalog) is for signed-in users, as on most token services.
      if (a?.type === 'registry' && a.name === 'catalog' && user !== undefined) access.push(a);
      if (!a || a.type !== 'repository') continue;
      const allowed =
        user !== undefined
          ? a.actions.filter((x) => x === 'pull' || x === 'push' || x === '*')
          : opts.isPublic(a.name)
            ? a.actions.filter((x) => x === 'pull')
            : [];
      access.push({ ...a, actions: allowed });
    }
    const now = Math.floor(Date.now() / 1000);
    return signJwt(key, {
      iss: info.issuer,
      sub: user ?? '',
      aud: info.service,
      exp: now + opts.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    });
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const reply = (status: number, body: unknown, user?: string) => {
        log.push({ method: req.method ?? 'GET', url: req.url ?? '', user, status });
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.pathname !== '/token') return reply(404, { error: 'not found' });
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        if (form.get('grant_type') === 'refresh_token') {
          const user = opts.refreshTokens[form.get('refresh_token') ?? ''];
          if (!user) return reply(401, { error: 'invalid_grant' });
          return reply(
            200,
            { access_token: issue(user, scopes), expires_in: opts.expiresIn, scope: scopes.join(' ') },
            user,
          );
        }
        if (form.get('grant_type') === 'password') {
          const user = form.get('username') ?? '';
          if (opts.users[user] === undefined || opts.users[user] !== form.get('password'))
            return reply(401, { error: 'invalid_grant' }, user);
          return reply(200, { access_token: issue(user, scopes), expires_in: opts.expiresIn }, user);
        }
        return reply(400, { error: 'unsupported_grant_type' });
      }
      const scopes = url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      const authz = req.headers['authorization'];
      let user: string | undefined;
      if (authz) {
        const m = /^Basic\s+(.+)$/i.exec(authz);
        const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        const name = colon < 0 ? decoded : decoded.slice(0, colon);
        const pass = colon < 0 ? '' : decoded.slice(colon + 1);
        if (opts.users[name] === undefined || opts.users[name] !== pass) {
          return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }, name);
        }
        user = name;
      }
      const token = issue(user, scopes);
      // Docker Hub sends both fields; tests of `access_token`-only services use a fake server.
      return reply(
        200,
        { token, access_token: token, expires_in: opts.expiresIn, issued_at: new Date().toISOString() },
        user,
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    const port = Number(new URL(info.realm).port);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function configYaml(dir: string, port: number, authBlock: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    authBlock,
    '',
  ].join('\n');
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`test registry exited early (${child.exitCode ?? child.signalCode}): ${stderr().trim()}`);
    }
    const status = await new Promise<number | undefined>((resolve) => {
      const req = http.get(`${url}/v2/`, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', () => resolve(undefined));
      req.setTimeout(1000, () => {
        req.destroy();
        resolve(undefined);
      });
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`test registry did not answer on ${url}/v2/ within ${timeoutMs} ms: ${stderr().trim()}`);
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const mode = opts.auth ?? 'anonymous';
  const binary = registryBinary(opts);
  checkPrerequisites(mode, binary);
  const users = { ...(opts.users ?? DEFAULT_USERS) };
  const dir = mkdtempSync(join(tmpdir(), 'tsrun-registry-'));
  const log: Array<{ method: string; url: string; user?: string; status: number }> = [];
  let tokenServer: http.Server | undefined;
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (tokenServer) {
      const s = tokenServer;
      tokenServer = undefined;
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    let authBlock = '';
    let token: TokenServiceInfo | undefined;
    if (mode === 'htpasswd') {
      const lines = Object.entries(users).map(([u, p]) =>
        execFileSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' }).trim(),
      );
      writeFileSync(join(dir, 'htpasswd'), lines.join('\n') + '\n');
      authBlock = ['auth:', '  htpasswd:', '    realm: tsrun-test', `    path: ${join(dir, 'htpasswd')}`].join('\n');
    } else if (mode === 'token') {
      const key = makeTokenKey(dir);
      const tokenPort = await freePort();
      token = {
        realm: `http://127.0.0.1:${tokenPort}/token`,
        service: 'tsrun-test-registry',
        issuer: 'tsrun-test-issuer',
      };
      tokenServer = await startTokenService(
        key,
        token,
        {
          users,
          isPublic: opts.isPublic ?? ((r) => r.startsWith('public/') || r.startsWith('library/')),
          refreshTokens: opts.refreshTokens ?? {},
          expiresIn: opts.tokenExpiresIn ?? 300,
        },
        log,
      );
      authBlock = [
        'auth:',
        '  token:',
        `    realm: ${token.realm}`,
        `    service: ${token.service}`,
        `    issuer: ${token.issuer}`,
        `    rootcertbundle: ${key.certPath}`,
      ].join('\n');
    }

    // The port may be taken between freePort() and the registry's bind: try a few.
    let lastError: unknown;
    for (let attempt = 0; attempt < 4; attempt++) {
      const port = await freePort();
      const configPath = join(dir, 'config.yml');
      writeFileSync(configPath, configYaml(dir, port, authBlock));
      let err = '';
      child = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (c: Buffer) => {
        err = (err + c.toString('utf8')).slice(-8192);
      });
      child.on('error', (e) => {
        err += String(e);
      });
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitReady(url, child, () => err);
      } catch (e) {
        lastError = e;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child?.once('exit', r));
          child.kill('SIGKILL');
          await exited;
        }
        if (/address already in use/i.test(String(e))) continue;
        throw e;
      }
      const reg: TestRegistry = {
        host: `127.0.0.1:${port}`,
        url,
        auth: mode,
        users,
        dir,
        tokenRequests: () => log.length,
        tokenRequestLog: () => [...log],
        stop: cleanup,
      };
      if (token) reg.token = token;
      return reg;
    }
    throw lastError;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
