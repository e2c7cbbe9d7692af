/**
 * docker-compose against `tsrun system service`: Debian 12's docker-compose (the Python compose
 * 1.29, what its users have; apt-get install docker-compose) runs a two-service project from its
 * directory, the getting-started tutorial's shape: an app serving HTTP on a published port from a
 * relative bind mount, reaching a `db` service by its service name on a user network, and the
 * db keeping its data in a named volume. Checked with compose's own commands (up -d, ps, logs,
 * down, down -v) and with the tsrun CLI on the same store (ps -a, network ls, volume ls).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { eventually, runDir } from './containers.js';
import { freePort, type TestRegistry } from '../helpers/registry.js';
import { busyboxRegistry, startService, type RunningService } from './api-setup.js';

const COMPOSE = '/usr/bin/docker-compose';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-api-compose-'));
const root = path.join(tmp, 'root');
const socket = path.join(tmp, 'docker.sock');
// The project is named after its directory, as compose does it: todo_app_1, todo_backend, …
const project = path.join(tmp, 'todo');
let reg: TestRegistry;
let IMAGE = '';
let PORT = 0;
let svc: RunningService;

const C = suite('e2e api: docker-compose');
const cli = (args: string[]) => tsrun(args, { root });

/** docker-compose in the project directory, against the service's socket; no user config read. */
async function compose(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa(COMPOSE, args, {
    cwd: project,
    reject: false,
    timeout: 120_000,
    input: '',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DOCKER_HOST: `unix://${socket}`,
      DOCKER_CONFIG: path.join(tmp, 'no-docker-config'),
      HOME: tmp,
    },
    extendEnv: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** GET from the app's published port: "STATUS body", or the error. */
async function get(p: string): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${PORT}${p}`, { signal: AbortSignal.timeout(3000) });
    return `${res.status} ${await res.text()}`;
  } catch (err) {
    return String(err);
  }
}

/** Until GET `p` answers 200 `body`; the last answer in the failure. */
async function answers(what: string, p: string, body: string): Promise<void> {
  let last = '';
  await eventually(what, async () => (last = await get(p)) === `200 ${body}`).catch((err: Error) => {
    throw new Error(`${err.message}; the last answer: ${JSON.stringify(last)}`);
  });
}

async function names(args: string[]): Promise<string[]> {
  const r = await cli(args);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

function writeProject(): void {
  // The app's site, bind-mounted by a relative path: a page, and a CGI script that asks the db
  // service by its name on the project's network.
  mkdirSync(path.join(project, 'site', 'cgi-bin'), { recursive: true });
  writeFileSync(path.join(project, 'site', 'index.html'), 'todo app\n');
  const cgi = path.join(project, 'site', 'cgi-bin', 'db');
  // CRLF after the header: node's HTTP parser refuses the bare LF that `echo` would give.
  writeFileSync(cgi, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nwget -qO- http://db:8080/starts\n");
  chmodSync(cgi, 0o755);
  writeFileSync(
    path.join(project, 'docker-compose.yml'),
    `version: "3.8"
services:
  app:
    image: ${IMAGE}
    command: ["sh", "-c", "echo app listening on 8080; exec httpd -f -p 8080 -h /www"]
    ports:
      - "127.0.0.1:${PORT}:8080"
    volumes:
      - ./site:/www:ro
    depends_on:
      - db
    networks:
      - backend
  db:
    image: ${IMAGE}
    command: ["sh", "-c", "echo db start >> /data/starts; echo db ready; exec httpd -f -p 8080 -h /data"]
    volumes:
      - db-data:/data
    networks:
      - backend
volumes:
  db-data:
networks:
  backend:
`,
  );
}

C.before(async () => {
  assert.ok(existsSync(COMPOSE), `${COMPOSE} is missing: apt-get install docker-compose (.ci/run does)`);
  ({ reg, image: IMAGE } = await busyboxRegistry());
  PORT = await freePort();
  writeProject();
  svc = await startService(root, socket);
});
C.after(async () => {
  await compose(['down', '-v', '-t', '1']).catch(() => undefined);
  for (const id of (await cli(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean))
    await cli(['rm', '-f', id]);
  await cli(['network', 'prune', '-f']);
  await cli(['volume', 'prune', '-af']);
  await svc?.stop();
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

C('up -d, ps, the app reaching db by name, the published port, logs, down, up again, down -v', async () => {
  const up = await compose(['up', '-d']);
  assert.is(up.code, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stderr, 'Creating network "todo_backend"');
  assert.match(up.stderr, 'Creating volume "todo_db-data"');
  assert.match(up.stderr, /Creating todo_app_1 \.\.\. done/);

  const ps = await compose(['ps']);
  assert.is(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, new RegExp(`todo_app_1 .* Up +127\\.0\\.0\\.1:${PORT}->8080/tcp`));
  assert.match(ps.stdout, /todo_db_1 .* Up *$/m);
  assert.equal(await names(['ps', '--format', '{{.Names}}']), ['todo_app_1', 'todo_db_1']);

  // Up again with nothing changed: compose compares the network, volume and containers with its
  // file (the network's options and labels, the containers' config-hash label) and keeps them.
  const same = await compose(['up', '-d']);
  assert.is(same.code, 0, `${same.stdout}\n${same.stderr}`);
  assert.match(same.stderr, 'todo_db_1 is up-to-date');
  assert.match(same.stderr, 'todo_app_1 is up-to-date');

  // The host reaches the app on its published port; the app reaches db by its service name.
  await answers('the app answers on its published port', '/', 'todo app\n');
  await answers('the app reaches db by name', '/cgi-bin/db', 'db start\n');

  assert.ok((await names(['volume', 'ls', '-q'])).includes('todo_db-data'));
  assert.ok((await names(['network', 'ls', '--format', '{{.Name}}'])).includes('todo_backend'));

  const logs = await compose(['logs', '--no-color']);
  assert.is(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /app_1 +\| app listening on 8080/);
  assert.match(logs.stdout, /db_1 +\| db ready/);

  const down = await compose(['down', '-t', '1']);
  assert.is(down.code, 0, `${down.stdout}\n${down.stderr}`);
  assert.equal(await names(['ps', '-aq']), []);
  assert.ok(!(await names(['network', 'ls', '--format', '{{.Name}}'])).includes('todo_backend'));
  // down keeps named volumes: the db's data is there for the next up.
  assert.ok((await names(['volume', 'ls', '-q'])).includes('todo_db-data'));

  const again = await compose(['up', '-d']);
  assert.is(again.code, 0, `${again.stdout}\n${again.stderr}`);
  await answers('the db kept its volume', '/cgi-bin/db', 'db start\ndb start\n');

  const gone = await compose(['down', '-v', '-t', '1']);
  assert.is(gone.code, 0, `${gone.stdout}\n${gone.stderr}`);
  assert.match(gone.stderr, 'Removing volume todo_db-data');
  assert.equal(await names(['ps', '-aq']), []);
  assert.equal(await names(['network', 'ls', '-q', '--filter', 'type=custom']), []);
  assert.equal(await names(['volume', 'ls', '-q']), []);
});

C.run();
