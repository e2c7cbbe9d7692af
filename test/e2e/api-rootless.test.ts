/**
 * `tsrun system service` as an unprivileged user (its own user, `tsrun-api`, with subordinate
 * ids), driven by the docker CLI run as that user, with a CI job's bare environment: the default
 * socket (/tmp/tsrun-UID/docker.sock without XDG_RUNTIME_DIR, $XDG_RUNTIME_DIR/tsrun/docker.sock
 * with it) is the user's own and 0600; `run --rm`, `run -d -p` (slirp4netns), `ps`, `logs`,
 * `rm -f` work as the tsrun CLI's do, and an `--exec` session removes what it made.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa, type ResultPromise } from 'execa';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN } from './cli.js';
import { eventually } from './containers.js';
import { freePort, httpGet } from '../helpers/net.js';
import { ensureUser, type TestUser } from '../helpers/users.js';
import type { TestRegistry } from '../helpers/registry.js';
import { DOCKER, busyboxRegistry, dockerClient } from './api-setup.js';

const R = suite('e2e api: rootless service');
let user: TestUser;
let reg: TestRegistry;
let IMAGE = '';
let store = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-rootless-'));

/** The user's bare environment (a CI job's): no XDG_RUNTIME_DIR unless given. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: user.home, PATH: process.env.PATH ?? '/usr/bin:/bin', USER: user.name, ...extra };
}

function asUser(cmd: string, args: string[], env: Record<string, string>, input = ''): ResultPromise {
  return execa(cmd, args, {
    reject: false,
    uid: user.uid,
    gid: user.gid,
    cwd: user.home,
    extendEnv: false,
    env,
    input,
    timeout: 120_000,
    stripFinalNewline: false,
  });
}

async function tsrunAs(args: string[], env = userEnv()) {
  const r = await asUser(BIN, ['--root', store, ...args], env);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function dockerAs(socket: string, args: string[], env = userEnv()) {
  const r = await asUser(DOCKER, args, {
    ...env,
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: path.join(user.home, '.docker-none'),
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The user's service on its default socket; resolves once `docker version` answers through it. */
async function serviceAs(socket: string, env = userEnv()) {
  const proc = asUser(BIN, ['--root', store, 'system', 'service', '--time', '0'], env);
  await eventually(
    'the rootless service answers',
    async () => existsSync(socket) && (await dockerAs(socket, ['version', '-f', '{{.Server.Os}}'], env)).code === 0,
    30_000,
  );
  return {
    proc,
    stop: async () => {
      proc.kill('SIGTERM');
      const r = await proc;
      assert.is(r.exitCode, 0, String(r.stderr));
    },
  };
}

const pauseFile = () => `/tmp/tsrun-${user.uid}/pause.pid`;

R.before(async () => {
  await dockerClient();
  user = ensureUser('tsrun-api', true, '900000-965535');
  store = path.join(user.home, 'tsrun-api-store');
  ({ reg, image: IMAGE } = await busyboxRegistry());
  const pull = await tsrunAs(['pull', '-q', IMAGE]);
  assert.is(pull.code, 0, pull.stderr);
});

R.after(async () => {
  if (user) {
    await tsrunAs(['rm', '-f', 'web', 'logger']);
    for (const f of [pauseFile(), path.join(tmp, 'xdg', 'tsrun', 'pause.pid')]) {
      try {
        process.kill(Number(readFileSync(f, 'utf8').trim()), 'SIGKILL');
      } catch {
        /* not started, or gone */
      }
    }
    rmSync(`/tmp/tsrun-${user.uid}`, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  }
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

R("default socket /tmp/tsrun-UID/docker.sock, 0600, the user's; docker run/ps/logs/rm as the user", async () => {
  const socket = `/tmp/tsrun-${user.uid}/docker.sock`;
  const svc = await serviceAs(socket);
  try {
    const st = statSync(socket);
    assert.is(st.mode & 0o777, 0o600);
    assert.is(st.uid, user.uid);
    assert.is(statSync(path.dirname(socket)).mode & 0o077, 0, "its directory is the user's alone");
    const hi = await dockerAs(socket, ['run', '--rm', '--network', 'none', IMAGE, 'echo', 'hi']);
    assert.is(hi.stdout, 'hi\n', hi.stderr);
    assert.is(hi.code, 0);
    const id0 = await dockerAs(socket, ['run', '--rm', IMAGE, 'id', '-u']);
    assert.is(id0.stdout, '0\n', id0.stderr);
    const port = await freePort();
    const web = await dockerAs(socket, [
      'run',
      '-d',
      '--name',
      'web',
      '-p',
      `${port}:80`,
      IMAGE,
      'sh',
      '-c',
      'mkdir /www && echo hello-api-rootless > /www/index.html && echo serving && exec httpd -f -p 80 -h /www',
    ]);
    assert.is(web.code, 0, web.stderr);
    await eventually('the published port answers', async () =>
      httpGet('127.0.0.1', port, '/index.html').then(
        (b) => b === 'hello-api-rootless\n',
        () => false,
      ),
    );
    const ps = await dockerAs(socket, ['ps', '--format', '{{.Names}} {{.Ports}}']);
    assert.is(ps.stdout, `web 0.0.0.0:${port}->80/tcp\n`, ps.stderr);
    // One store: the tsrun CLI sees what the socket made.
    assert.is((await tsrunAs(['ps', '--format', '{{.Names}}'])).stdout, 'web\n');
    const logs = await dockerAs(socket, ['logs', 'web']);
    assert.is(logs.stdout, 'serving\n', logs.stderr);
    const rm = await dockerAs(socket, ['rm', '-f', 'web']);
    assert.is(rm.stdout, 'web\n', rm.stderr);
    assert.is((await dockerAs(socket, ['ps', '-aq'])).stdout, '');
    await eventually('the port is closed', async () =>
      httpGet('127.0.0.1', port, '/').then(
        () => false,
        () => true,
      ),
    );
  } finally {
    await svc.stop();
  }
  assert.not.ok(existsSync(socket), 'the socket is removed at exit');
});

R('with XDG_RUNTIME_DIR: $XDG_RUNTIME_DIR/tsrun/docker.sock; --exec removes what CMD made', async () => {
  const xdg = path.join(tmp, 'xdg');
  mkdirSync(xdg, { mode: 0o700 });
  chownSync(xdg, user.uid, user.gid);
  chownSync(tmp, user.uid, user.gid);
  const env = userEnv({ XDG_RUNTIME_DIR: xdg });
  const socket = path.join(xdg, 'tsrun', 'docker.sock');
  const svc = await serviceAs(socket, env);
  try {
    assert.is(statSync(socket).mode & 0o777, 0o600);
    const ps = await dockerAs(socket, ['ps', '-a', '--format', '{{.Names}}'], env);
    assert.is(ps.code, 0, ps.stderr);
  } finally {
    await svc.stop();
  }
  const exec = await asUser(
    BIN,
    [
      '--root',
      store,
      'system',
      'service',
      '--exec',
      '--',
      'sh',
      '-c',
      [
        `${DOCKER} run -d --name logger ${IMAGE} sleep 60 >/dev/null`,
        `${DOCKER} volume create rlvol >/dev/null`,
        // CMD runs where the service does: in the user's namespace, as its uid 0.
        'echo "$DOCKER_HOST $(id -u)"',
        `${DOCKER} ps --format '{{.Names}}'`,
      ].join(' && '),
    ],
    { ...env, DOCKER_CONFIG: path.join(user.home, '.docker-none') },
  );
  assert.is(exec.exitCode, 0, String(exec.stderr));
  assert.is(String(exec.stdout), `unix://${socket} 0\nlogger\n`);
  assert.is((await tsrunAs(['ps', '-a', '-q'], env)).stdout, '');
  assert.is((await tsrunAs(['volume', 'ls', '-q'], env)).stdout, '');
});

R.run();
