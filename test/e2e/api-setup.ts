/**
 * What the Engine API suites share: a real registry with a busybox image, a `tsrun system
 * service` child on its own store and socket, the `docker` client binary from Debian's docker.io
 * (scripts/test-tools.sh; never a docker found on PATH, and never a daemon), and raw requests
 * over the socket for what no client shows (status codes, error bodies).
 */
import * as assert from 'uvu/assert';
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './cli.js';
import { eventually } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DOCKER = path.join(REPO, '.tools/bin/docker');

/** The docker client, fetched once by scripts/test-tools.sh (apt-get download + dpkg-deb -x). */
export async function dockerClient(): Promise<string> {
  if (!existsSync(DOCKER)) {
    const r = await execa('bash', [path.join(REPO, 'scripts/test-tools.sh')], { reject: false });
    assert.is(r.exitCode, 0, `scripts/test-tools.sh: ${r.stderr}`);
  }
  return DOCKER;
}

export async function busyboxRegistry(): Promise<{ reg: TestRegistry; image: string }> {
  const reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/busybox', 'latest', { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
  return { reg, image: `${reg.host}/e2e/busybox` };
}

export interface RunningService {
  socket: string;
  proc: ResultPromise;
  stop(): Promise<void>;
}

/** `tsrun system service` on `socket` for store `root`; resolves once the socket answers. */
export async function startService(
  root: string,
  socket: string,
  args: string[] = ['--time', '0'],
): Promise<RunningService> {
  const proc = execa(BIN, ['--root', root, 'system', 'service', ...args, socket], {
    reject: false,
    stdin: 'ignore',
    env: { HOME: process.env.HOME ?? '/root' },
  });
  await eventually(
    'the service answers',
    async () => (await request(socket, 'GET', '/_ping').catch(() => undefined))?.status === 200,
  );
  return {
    socket,
    proc,
    stop: async () => {
      proc.kill('SIGTERM');
      await proc;
    },
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): any;
}

export function request(socket: string, method: string, p: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: socket, method, path: p, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The docker CLI against `socket`; no config of the user's is read. */
export async function docker(
  socket: string,
  args: string[],
  o: { input?: string; cwd?: string; config?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa(DOCKER, args, {
    reject: false,
    input: o.input ?? '',
    cwd: o.cwd,
    timeout: 60_000,
    stripFinalNewline: false,
    env: {
      DOCKER_HOST: `unix://${socket}`,
      DOCKER_CONFIG: o.config ?? '/nonexistent-docker-config',
      HOME: '/nonexistent',
    },
    extendEnv: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
