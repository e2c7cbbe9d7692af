/**
 * End to end, as an unprivileged user: the suite (run as root by CI) creates the users it needs
 * — `tsrun-rl` with subordinate ranges, `tsrun-nosub` without — and drives the real CLI as them.
 * What is checked is what the rootless issue asks: images with several users keep their owners
 * (as subordinate ids on disk, never the real root), run/exec/logs/cp/stop/rm work with
 * --network none and host, the default network is slirp4netns with -p, build works with the
 * same layers root would make, and what cannot work says what is missing and how to fix it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN } from './cli.js';
import { eventually } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { freePort, hostAddress, httpGet } from '../helpers/net.js';
import { endRootlessSession, ensureUser, subuidStart } from '../helpers/users.js';

const R = suite('e2e rootless');
const USER = 'tsrun-rl';
const NOSUB = 'tsrun-nosub';
let reg: TestRegistry;
let IMAGE = '';
let uid = 0;
let gid = 0;
let home = '';
let root = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-rootless-'));

/**
 * The CLI as `as` (default the rootless user), with a clean environment as a CI job has, from
 * `cwd` (default the user's home); `root: null` leaves the store to TSRUN_ROOT or the default.
 */
async function cli(
  args: string[],
  o: {
    as?: { uid: number; gid: number; home: string };
    input?: string;
    env?: Record<string, string>;
    cwd?: string;
    root?: string | null;
  } = {},
) {
  const who = o.as ?? { uid, gid, home };
  const storeArgs = o.root === null ? [] : ['--root', o.root ?? path.join(who.home, 'tsrun-store')];
  const r = await execa(BIN, [...storeArgs, ...args], {
    reject: false,
    uid: who.uid,
    gid: who.gid,
    cwd: o.cwd ?? who.home,
    extendEnv: false,
    input: o.input ?? '',
    env: { HOME: who.home, PATH: process.env.PATH ?? '/usr/bin:/bin', USER: String(who.uid), ...o.env },
    timeout: 120_000,
    stripFinalNewline: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Write `files` (relative to `dir`) as the rootless user would have them. */
function userFiles(dir: string, files: Record<string, string>, owner = { uid, gid }): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dir]);
}

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** No slirp4netns of the user is left (a killed one is reaped by init, which can take a moment). */
const slirpGone = () =>
  eventually('slirp4netns to be gone', async () => {
    try {
      execFileSync('pgrep', ['-u', String(uid), 'slirp4netns'], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });

const pausePid = () => Number(readFileSync(`/tmp/tsrun-${uid}/pause.pid`, 'utf8').trim());

R.before(async () => {
  ({ uid, gid, home } = ensureUser(USER, true));
  root = path.join(home, 'tsrun-store');
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'rl/busybox', '1');
  IMAGE = `${reg.host}/rl/busybox:1`;
});
R.after(async () => {
  await reg?.stop();
  endRootlessSession(uid);
  rmSync(root, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

R('info: rootless, every required prerequisite ok', async () => {
  const r = await cli(['info']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, ' Rootless: true');
  assert.match(r.stdout, `Root Dir: ${root}`);
  assert.not.match(r.stdout, 'MISSING', r.stdout);
  assert.match(r.stdout, /ok\s+subordinate uids/);
});

R('pull: owners kept as subordinate ids; nothing in the store belongs to the real root', async () => {
  const r = await cli(['pull', '-q', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  // The first command started the namespace and probed its storage; info says what it found.
  assert.match((await cli(['info'])).stdout, /Storage Driver: overlay \(overlayfs with userxattr; probed /);
  const sub = subuidStart(USER);
  const layers = readdirSync(path.join(root, 'layers'));
  const hello = lstatSync(path.join(root, 'layers', layers[0] as string, 'diff', 'home', 'app', 'hello.txt'));
  assert.is(hello.uid, sub + 999, 'uid 1000 in the image is subordinate id start+999 on disk');
  const owners = new Set<number>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      const st = lstatSync(p);
      owners.add(st.uid);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  assert.not.ok(owners.has(0), `owners: ${[...owners].join(',')}`);
  assert.ok(owners.has(uid));
});

R(
  'run --explain, rootless: the uid/gid maps from /etc/subuid, the overlay driver and why, slirp4netns and add_hostfwd',
  async () => {
    const port = await freePort();
    const r = await cli(['run', '--explain', '--rm', '-p', `${port}:80`, IMAGE, 'echo', 'told']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'told\n');
    const start = subuidStart(USER);
    assert.match(r.stderr, new RegExp(`userns +rootless: uid 0-0 → ${uid}-${uid}, 1-65536 → ${start}-`));
    assert.match(r.stderr, new RegExp(`from /etc/subuid ${USER}:${start}:65536`));
    assert.match(r.stderr, /^\[2\/8\] Root filesystem {2}(overlay|fuse-overlayfs)/m);
    assert.match(r.stderr, /chosen because rootless/);
    assert.match(r.stderr, /^\[4\/8\] Network {2}slirp4netns/m);
    assert.match(r.stderr, new RegExp(`:${port} → 80/tcp \\(slirp4netns add_hostfwd\\)`));
    await slirpGone();
  },
);

R('run --rm: uid 0 inside is the user outside; image users resolve; exit codes pass through', async () => {
  const r = await cli([
    'run',
    '--rm',
    '--network',
    'none',
    IMAGE,
    'sh',
    '-c',
    'id -u; stat -c %u /home/app/hello.txt; cat /proc/self/uid_map | wc -l',
  ]);
  assert.is(r.stdout, '0\n1000\n2\n', r.stderr);
  const app = await cli(['run', '--rm', '--network', 'none', '-u', 'app', IMAGE, 'id', '-u']);
  assert.is(app.stdout, '1000\n', app.stderr);
  assert.is((await cli(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'exit 7'])).code, 7);
});

R(
  'unshare: a command in the namespace as uid 0 there, where image files keep their owners; its exit status; not for root',
  async () => {
    const r = await cli([
      'unshare',
      'sh',
      '-c',
      'id -u; stat -c %u "$CONTAINERS_GRAPHROOT"/layers/*/diff/home/app/hello.txt; echo "$@"',
      'sh',
      '--help',
      '-h',
    ]);
    assert.is(r.stdout, '0\n1000\n--help -h\n', r.stderr);
    assert.is((await cli(['unshare', 'sh', '-c', 'exit 3'])).code, 3);
    assert.is((await cli(['unshare', '/no/such-command'])).code, 127);
    const asRoot = await cli(['unshare', 'true'], { as: { uid: 0, gid: 0, home: tmp } });
    assert.is(asRoot.code, 1);
    assert.match(asRoot.stderr, 'tsrun unshare is for rootless mode');
  },
);

R(
  'once the namespace is up, a command is one Node process: the launcher enters it (bin/rootless-enter.sh)',
  async () => {
    assert.is((await cli(['images'])).code, 0); // the namespace is up
    // The shell's parent is the CLI's Node; that Node's parent is this test process only when no
    // second Node (src/rootless/enter.ts) stood between.
    const r = await cli(['unshare', 'sh', '-c', 'grep ^PPid: /proc/$PPID/status | cut -f2; pwd']);
    assert.is(r.stdout, `${process.pid}\n${home}\n`, r.stderr);
    // --help anywhere: the launcher leaves the decision to Node (help stays outside the namespace).
    const h = await cli(['unshare', 'sh', '-c', 'grep ^PPid: /proc/$PPID/status | cut -f2', '--help']);
    assert.is.not(h.stdout, `${process.pid}\n`, h.stderr);
  },
);

R(
  'run flags in the user namespace: caps, --privileged, seccomp, --ulimit, --tmpfs, --init, --ipc shareable; host namespaces refused',
  async () => {
    const st = (field: string, text: string) => new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(text)?.[1];
    const d = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'kill',
      '--ulimit',
      'nofile=256:512',
      '--tmpfs',
      '/scratch',
      '--init',
      IMAGE,
      'sh',
      '-c',
      'cat /proc/self/status; ulimit -n; grep -c " /scratch " /proc/mounts; cat /proc/1/comm',
    ]);
    assert.is(d.code, 0, d.stderr);
    assert.is(st('CapEff', d.stdout), '0000000000000020');
    assert.is(st('Seccomp', d.stdout), '2', 'the default seccomp profile applies rootless too');
    assert.match(d.stdout, /\n256\n1\ndocker-init\n$/, d.stdout.slice(-120));
    const priv = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      '--privileged',
      IMAGE,
      'sh',
      '-c',
      'grep Seccomp: /proc/self/status; grep -c " /proc/kcore " /proc/mounts; true',
    ]);
    assert.is(priv.code, 0, priv.stderr);
    assert.match(priv.stdout, /Seccomp:\s+0\n0\n/);
    const donor = await cli([
      'run',
      '-d',
      '--name',
      'shm-donor',
      '--network',
      'none',
      '--ipc',
      'shareable',
      IMAGE,
      'sh',
      '-c',
      'echo shared > /dev/shm/m; sleep 60',
    ]);
    assert.is(donor.code, 0, donor.stderr);
    const j = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      '--ipc',
      'container:shm-donor',
      '--pid',
      'container:shm-donor',
      IMAGE,
      'sh',
      '-c',
      'cat /dev/shm/m; pidof sleep',
    ]);
    assert.is(j.code, 0, j.stderr);
    assert.match(j.stdout, /^shared\n\d+\n$/);
    assert.is((await cli(['rm', '-f', 'shm-donor'])).code, 0);
    for (const flag of [
      ['--pid', 'host'],
      ['--ipc', 'host'],
    ]) {
      const r = await cli(['run', '--rm', '--network', 'none', ...flag, IMAGE, 'true']);
      assert.is(r.code, 125, flag.join(' '));
      assert.match(r.stderr, new RegExp(`rootless mode: ${flag.join(' ')} is not possible`));
    }
  },
);

R('run -d on the host network: ps, logs, exec, cp both ways, stop, rm; no mount left in the namespace', async () => {
  const d = await cli(['run', '-d', '--name', 'rl', '--network', 'host', IMAGE, 'sh', '-c', 'echo up; exec sleep 60']);
  assert.is(d.code, 0, d.stderr);
  assert.match((await cli(['ps'])).stdout, /\srl\n/);
  assert.is((await cli(['exec', '-u', 'app', 'rl', 'id', '-u'])).stdout, '1000\n');
  const src = path.join(home, 'in.txt');
  writeFileSync(src, 'copied in\n');
  chownSync(src, uid, gid);
  assert.is((await cli(['cp', src, 'rl:/tmp/in.txt'])).code, 0);
  assert.is((await cli(['exec', 'rl', 'cat', '/tmp/in.txt'])).stdout, 'copied in\n');
  assert.is((await cli(['cp', 'rl:/home/app/hello.txt', path.join(home, 'out.txt')])).code, 0);
  assert.is(readFileSync(path.join(home, 'out.txt'), 'utf8'), 'hello from the image\n');
  assert.is(lstatSync(path.join(home, 'out.txt')).uid, uid);
  assert.is((await cli(['logs', 'rl'])).stdout, 'up\n');
  assert.is((await cli(['stop', '-t', '1', 'rl'])).code, 0);
  // Stopped: the root is rebuilt by tsrun-rootns inside the user's namespaces.
  const back = await cli(['cp', 'rl:/tmp/in.txt', path.join(home, 'back.txt')]);
  assert.is(back.code, 0, back.stderr);
  assert.is(readFileSync(path.join(home, 'back.txt'), 'utf8'), 'copied in\n');
  assert.is((await cli(['rm', 'rl'])).code, 0);
  assert.is((await cli(['ps', '-aq'])).stdout, '');
  const mounts = readFileSync(`/proc/${pausePid()}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.includes(root));
  assert.equal(mounts, []);
});

R(
  'default network: slirp4netns; -p answers on 127.0.0.1; the host is reachable by its address; rm leaves no slirp4netns',
  async () => {
    const port = await freePort();
    const d = await cli([
      'run',
      '-d',
      '--name',
      'web',
      '-p',
      `${port}:80`,
      IMAGE,
      'sh',
      '-c',
      'mkdir /www && echo hello-rootless > /www/index.html && exec httpd -f -p 80 -h /www',
    ]);
    assert.is(d.code, 0, d.stderr);
    try {
      assert.is(await httpGet('127.0.0.1', port, '/index.html'), 'hello-rootless\n');
      assert.is((await cli(['port', 'web'])).stdout, `80/tcp -> 0.0.0.0:${port}\n`);
      const server = http.createServer((_, res) => res.end('host says hi\n'));
      const host = hostAddress();
      await new Promise<void>((r) => server.listen(0, host, r));
      const out = await cli([
        'exec',
        'web',
        'wget',
        '-qO-',
        `http://${host}:${(server.address() as AddressInfo).port}/`,
      ]);
      server.close();
      assert.is(out.stdout, 'host says hi\n', out.stderr);
      assert.match((await cli(['exec', 'web', 'cat', '/etc/resolv.conf'])).stdout, 'nameserver 10.0.2.3');
    } finally {
      assert.is((await cli(['rm', '-f', 'web'])).code, 0);
    }
    await slirpGone();
  },
);

R(
  'a service container reached by host.containers.internal; --add-host host-gateway, --dns, --dns-search; -p on IPv6 loopback too',
  async () => {
    const port = await freePort();
    const svc = await cli([
      'run',
      '-d',
      '--name',
      'svc',
      '-p',
      `${port}:80`,
      IMAGE,
      'sh',
      '-c',
      'mkdir /www && echo service > /www/index.html && exec httpd -f -p 80 -h /www',
    ]);
    assert.is(svc.code, 0, svc.stderr);
    try {
      assert.is(await httpGet('127.0.0.1', port, '/index.html'), 'service\n');
      assert.is(await httpGet('::1', port, '/index.html'), 'service\n');
      const job = await cli([
        'run',
        '--rm',
        '--add-host',
        'host.docker.internal:host-gateway',
        '--add-host',
        'db:10.1.2.3',
        '--dns',
        '10.0.2.3',
        '--dns-search',
        'ci.example',
        IMAGE,
        'sh',
        '-c',
        `wget -qO- http://host.containers.internal:${port}/; wget -qO- http://host.docker.internal:${port}/; grep -w db /etc/hosts; grep -v '^#' /etc/resolv.conf`,
      ]);
      assert.is(job.stdout, `service\nservice\n10.1.2.3\tdb\nsearch ci.example\nnameserver 10.0.2.3\n`, job.stderr);
      const bad = await cli(['run', '--rm', '--add-host', 'db:not-an-ip', IMAGE, 'true']);
      assert.is(bad.code, 125);
      assert.match(bad.stderr, 'invalid IP address in add-host: "not-an-ip"');
    } finally {
      assert.is((await cli(['rm', '-f', 'svc'])).code, 0);
    }
    await slirpGone();
    await eventually('the IPv6 forwarder to be gone', async () => !spawnOk('pgrep', ['-u', String(uid), 'socat']));
  },
);

R('build: RUN over slirp4netns, owners and deletions in the layers as for root, the cache on a rebuild', async () => {
  const ctx = path.join(home, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(
    path.join(ctx, 'Dockerfile'),
    [
      `FROM ${IMAGE}`,
      'WORKDIR /app',
      'COPY a.txt ./',
      'RUN chown 1000:1000 /app/a.txt && rm /home/app/hello.txt && cat /etc/resolv.conf > /app/resolv',
      'CMD ["cat", "/app/a.txt"]',
    ].join('\n'),
  );
  writeFileSync(path.join(ctx, 'a.txt'), 'built rootless\n');
  execFileSync('chown', ['-R', `${uid}:${gid}`, ctx]);
  const b = await cli(['build', '-t', 'rl-built', ctx]);
  assert.is(b.code, 0, b.stderr + b.stdout);
  const r = await cli([
    'run',
    '--rm',
    '--network',
    'none',
    'rl-built',
    'sh',
    '-c',
    'cat /app/a.txt; stat -c %u /app/a.txt; ls /home/app | wc -l; cat /app/resolv',
  ]);
  assert.is(r.stdout, 'built rootless\n1000\n0\nnameserver 10.0.2.3\n', r.stderr);
  // The RUN layer as the registry would get it: uid 1000 (not a subordinate id) and a whiteout.
  const digest = JSON.parse(
    (await cli(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'rl-built'])).stdout,
  ) as string[];
  const images = JSON.parse(readFileSync(path.join(root, 'images.json'), 'utf8')) as {
    images: Record<string, { layers: { digest: string; diffId: string }[] }>;
  };
  const layer = Object.values(images.images)
    .flatMap((i) => i.layers)
    .find((l) => l.diffId === digest[digest.length - 1]);
  const listing = execFileSync(
    'tar',
    ['--numeric-owner', '-tvzf', path.join(root, 'blobs', 'sha256', (layer?.digest ?? '').slice(7))],
    { encoding: 'utf8' },
  );
  assert.match(listing, /1000\/1000 .* app\/a\.txt/);
  assert.match(listing, /home\/app\/\.wh\.hello\.txt/);
  const again = await cli(['build', '-t', 'rl-built', ctx]);
  assert.is(again.stdout.split('\n').filter((l) => l === ' ---> Using cache').length, 4);
});

R('a build whose CLI is SIGKILLed stops: no RUN process, slirp4netns, mount or runtime state is left', async () => {
  const ctx = path.join(home, 'ctx-killed');
  rmSync(ctx, { recursive: true, force: true });
  userFiles(ctx, { Dockerfile: `FROM ${IMAGE}\nRUN echo started; exec sleep 37\n` });
  const child = execa(BIN, ['--root', root, 'build', '--no-cache', ctx], {
    reject: false,
    uid,
    gid,
    cwd: home,
    extendEnv: false,
    env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const sleeping = () => spawnOk('pgrep', ['-u', String(uid), '-f', '^sleep 37']);
  await eventually('the RUN step to be running', async () => sleeping());
  child.kill('SIGKILL');
  await eventually('the RUN process to be gone', async () => !sleeping(), 30_000);
  await child; // the build inside the namespace has ended too (it holds the output pipes)
  await slirpGone();
  await eventually(
    'no step mount left in the namespace',
    async () => !readFileSync(`/proc/${pausePid()}/mountinfo`, 'utf8').includes(path.join(root, 'tmp')),
  );
  const runc = readdirSync(`/tmp/tsrun-${uid}`).flatMap((h) =>
    existsSync(`/tmp/tsrun-${uid}/${h}/runc`) ? readdirSync(`/tmp/tsrun-${uid}/${h}/runc`) : [],
  );
  assert.equal(runc, [], 'no runtime state');
});

R('a SIGKILLed monitor: system prune removes the container and its slirp4netns', async () => {
  const port = await freePort();
  assert.is((await cli(['run', '-d', '--name', 'orphan', '-p', `${port}:80`, IMAGE, 'sleep', '60'])).code, 0);
  execFileSync('pkill', ['-KILL', '-u', String(uid), 'tsrun-monitor']);
  const pr = await cli(['system', 'prune', '-f']);
  assert.is(pr.code, 0, pr.stderr);
  assert.is((await cli(['ps', '-aq'])).stdout, '');
  await slirpGone();
  assert.equal(
    readdirSync(path.join(`/tmp/tsrun-${uid}`))
      .filter((n) => n !== 'pause.pid' && n !== 'pause.lock' && n !== 'storage.json')
      .flatMap((d) => {
        const slirp = path.join(`/tmp/tsrun-${uid}`, d, 'slirp');
        return existsSync(slirp) ? readdirSync(slirp) : [];
      }),
    [],
  );
});

R(
  'a CI job from its checkout: relative context, -f, cp, --env-file and TSRUN_ROOT; -h/--help/--version in container commands',
  async () => {
    const proj = path.join(home, 'proj');
    rmSync(proj, { recursive: true, force: true });
    userFiles(proj, {
      'docker/Dockerfile': `FROM ${IMAGE}\nCOPY app.txt /app/\nCMD ["cat", "/app/app.txt"]\n`,
      'app.txt': 'from the checkout\n',
      // Node 20 reads `--env-file` anywhere in argv, and applies a NODE_OPTIONS line: neither may reach tsrun's Node.
      'ci.env': 'NODE_OPTIONS=--require ./not-there.js\nFROM_FILE=1\n',
      'app.conf': 'setting=1\n',
    });
    const b = await cli(['build', '-q', '-t', 'ci-built', '-f', 'docker/Dockerfile', '.'], { cwd: proj });
    assert.is(b.code, 0, b.stderr);
    const env = { NODE_OPTIONS: '--require ./caller-only.js' };
    const r = await cli(
      [
        'run',
        '--rm',
        '--network',
        'none',
        '--env-file',
        'ci.env',
        '-e',
        'NODE_OPTIONS',
        '-v',
        `${proj}/app.conf:/etc/app.conf:ro`,
        'ci-built',
        'sh',
        '-c',
        'cat /app/app.txt /etc/app.conf; echo "$NODE_OPTIONS $FROM_FILE"; echo -h --help --version',
      ],
      { cwd: proj, env },
    );
    assert.is(r.stdout, 'from the checkout\nsetting=1\n--require ./caller-only.js 1\n-h --help --version\n', r.stderr);
    const missing = await cli(['run', '--rm', '--network', 'none', '--env-file', 'missing.env', IMAGE, 'true'], {
      cwd: proj,
    });
    assert.is(missing.code, 125);
    assert.match(missing.stderr, 'reading env file missing.env');
    assert.is(
      (await cli(['run', '-d', '--name', 'ci', '--network', 'none', IMAGE, 'sleep', '60'], { cwd: proj })).code,
      0,
    );
    try {
      const e = await cli(['exec', 'ci', 'echo', '--version', '-h'], { cwd: proj });
      assert.is(e.stdout, '--version -h\n', e.stderr);
      mkdirSync(path.join(proj, 'out'));
      chownSync(path.join(proj, 'out'), uid, gid);
      const cp = await cli(['cp', 'ci:/home/app/hello.txt', 'out/hello.txt'], { cwd: proj });
      assert.is(cp.code, 0, cp.stderr);
      assert.is(readFileSync(path.join(proj, 'out', 'hello.txt'), 'utf8'), 'hello from the image\n');
      assert.is((await cli(['cp', 'app.txt', 'ci:/tmp/'], { cwd: proj })).code, 0);
      assert.is((await cli(['exec', 'ci', 'cat', '/tmp/app.txt'])).stdout, 'from the checkout\n');
    } finally {
      await cli(['rm', '-f', 'ci']);
    }
    // tsrun's own help and version stay outside the namespace and still work.
    assert.match((await cli(['run', '--help'], { cwd: proj })).stdout, '--hostname');
    assert.match((await cli(['--version'], { cwd: proj })).stdout, /^\d+\.\d+/);
    // A CI cache directory in the checkout.
    const pulled = await cli(['pull', '-q', IMAGE], { cwd: proj, root: null, env: { TSRUN_ROOT: '.cache/tsrun' } });
    assert.is(pulled.code, 0, pulled.stderr);
    assert.ok(existsSync(path.join(proj, '.cache', 'tsrun', 'images.json')));
    assert.match(
      (await cli(['info'], { cwd: proj, root: null, env: { TSRUN_ROOT: '.cache/tsrun' } })).stdout,
      `Root Dir: ${proj}/.cache/tsrun\n`,
    );
  },
);

R('as root too: --env-file and a single-file bind from a relative checkout', async () => {
  const proj = path.join(tmp, 'root-proj');
  userFiles(
    proj,
    { 'ci.env': 'NODE_OPTIONS=--require ./not-there.js\n', 'app.conf': 'root setting\n' },
    { uid: 0, gid: 0 },
  );
  const me = { uid: 0, gid: 0, home: tmp };
  const r = await cli(
    [
      'run',
      '--rm',
      '--network',
      'none',
      '--env-file',
      'ci.env',
      '-v',
      `${proj}/app.conf:/app.conf:ro`,
      IMAGE,
      'sh',
      '-c',
      'cat /app.conf; echo "$NODE_OPTIONS"',
    ],
    { as: me, cwd: proj },
  );
  assert.is(r.stdout, 'root setting\n--require ./not-there.js\n', r.stderr);
  assert.is(lstatSync(path.join(proj, 'app.conf')).isFile(), true);
  await cli(['rmi', '-f', IMAGE], { as: me });
});

R(
  'XDG_RUNTIME_DIR=/run/user/UID: attached run, run -it, start -a, exec -it (socket paths over 107 bytes)',
  async () => {
    const xdg = `/run/user/${uid}`;
    rmSync('/run/user', { recursive: true, force: true });
    mkdirSync('/run/user', { mode: 0o755 });
    mkdirSync(xdg, { mode: 0o700 });
    chownSync(xdg, uid, gid);
    const env = { XDG_RUNTIME_DIR: xdg };
    const viaScript = (args: string[]) =>
      execa('script', ['-qec', [BIN, '--root', root, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], {
        reject: false,
        uid,
        gid,
        cwd: home,
        extendEnv: false,
        env: { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        timeout: 60_000,
      });
    try {
      const r = await cli(['run', '--rm', '--network', 'none', IMAGE, 'echo', 'attached'], { env });
      assert.is(r.stdout, 'attached\n', r.stderr);
      assert.is(
        (await cli(['create', '--name', 'sa', '--network', 'none', IMAGE, 'echo', 'started'], { env })).code,
        0,
      );
      const s = await cli(['start', '-a', 'sa'], { env });
      assert.is(s.stdout, 'started\n', s.stderr);
      const it = await viaScript([
        'run',
        '--rm',
        '-it',
        '--network',
        'none',
        IMAGE,
        'sh',
        '-c',
        'test -t 0 && echo tty-run',
      ]);
      assert.match(String(it.stdout), 'tty-run', String(it.stderr));
      assert.is((await cli(['run', '-d', '--name', 'xt', '--network', 'none', IMAGE, 'sleep', '60'], { env })).code, 0);
      const ex = await viaScript(['exec', '-it', 'xt', 'sh', '-c', 'test -t 0 && echo tty-exec']);
      assert.match(String(ex.stdout), 'tty-exec', String(ex.stderr));
    } finally {
      await cli(['rm', '-f', 'sa', 'xt'], { env });
      try {
        process.kill(Number(readFileSync(`${xdg}/tsrun/pause.pid`, 'utf8').trim()), 'SIGKILL');
      } catch {
        /* none or gone */
      }
      rmSync('/run/user', { recursive: true, force: true });
    }
  },
);

R('a container keeps the storage driver that made its root when the namespace later uses another', async () => {
  const env = { TSRUN_STORAGE_DRIVER: 'copy' };
  try {
    const made = await cli([
      'run',
      '--name',
      'made',
      '--network',
      'none',
      IMAGE,
      'sh',
      '-c',
      'cat /kept 2>/dev/null || echo missing; echo kept > /kept',
    ]);
    assert.is(made.stdout, 'missing\n', made.stderr);
    const driver = (await cli(['inspect', '-f', '{{.GraphDriver.Name}}', 'made'])).stdout.trim();
    assert.match(driver, /^(overlay-userxattr|fuse-overlayfs)$/);
    // A new namespace that uses copies (as where the kernel's overlay went away, or by choice).
    const pause = pausePid();
    process.kill(pause, 'SIGKILL');
    await eventually(
      'the pause process gone',
      async () =>
        !existsSync(`/proc/${pause}/status`) || /State:\s+Z/.test(readFileSync(`/proc/${pause}/status`, 'utf8')),
    );
    assert.match((await cli(['info'], { env })).stdout, 'that namespace has ended: the next command probes again');
    assert.match((await cli(['ps', '-a'], { env })).stdout, / made\n/); // starts the namespace
    assert.match((await cli(['info'], { env })).stdout, 'Storage Driver: copy (');
    const again = await cli(['start', '-a', 'made'], { env });
    assert.is(again.stdout, 'kept\n', again.stderr);
    assert.is((await cli(['inspect', '-f', '{{.GraphDriver.Name}}', 'made'], { env })).stdout.trim(), driver);
  } finally {
    await cli(['rm', '-f', 'made'], { env });
    // The tests after this one get the probed driver again.
    try {
      process.kill(pausePid(), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

for (const [driver, name, range] of [
  ['fuse-overlayfs', 'tsrun-fuse', '500000-565535'],
  ['copy', 'tsrun-copy', '600000-665535'],
] as const) {
  R(
    `storage driver ${driver} (chosen by TSRUN_STORAGE_DRIVER, as where the kernel's overlay is missing): pull, run, build with deletions and opaque directories`,
    async () => {
      const fu = ensureUser(name, true, range);
      const env = { TSRUN_STORAGE_DRIVER: driver };
      try {
        assert.is((await cli(['pull', '-q', IMAGE], { as: fu, env })).code, 0);
        assert.match((await cli(['info'], { as: fu, env })).stdout, `Storage Driver: ${driver} (`);
        const r = await cli(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'stat -c %u /home/app/hello.txt'], {
          as: fu,
          env,
        });
        assert.is(r.stdout, '1000\n', r.stderr);
        const ctx = path.join(fu.home, 'ctx');
        mkdirSync(ctx, { recursive: true });
        writeFileSync(
          path.join(ctx, 'Dockerfile'),
          `FROM ${IMAGE}\nRUN rm /tmp -rf && mkdir -p /tmp/new && rm -rf /home && mkdir /home && echo fresh > /home/only\n`,
        );
        execFileSync('chown', ['-R', `${fu.uid}:${fu.gid}`, ctx]);
        const b = await cli(['build', '-t', 'stored', ctx], { as: fu, env });
        assert.is(b.code, 0, b.stderr + b.stdout);
        // /home was replaced (an opaque directory): its old app/ must not show through.
        const look = await cli(['run', '--rm', '--network', 'none', 'stored', 'sh', '-c', 'ls /home; ls /tmp'], {
          as: fu,
          env,
        });
        assert.is(look.stdout, 'only\nnew\n', look.stderr);
        // A detached container keeps its changes across stop and start.
        assert.is(
          (
            await cli(
              [
                'run',
                '-d',
                '--name',
                'keep',
                '--network',
                'none',
                'stored',
                'sh',
                '-c',
                'echo kept >> /home/only; sleep 60',
              ],
              { as: fu, env },
            )
          ).code,
          0,
        );
        assert.is((await cli(['stop', '-t', '0', 'keep'], { as: fu, env })).code, 0);
        assert.is((await cli(['start', 'keep'], { as: fu, env })).code, 0);
        assert.is((await cli(['exec', 'keep', 'cat', '/home/only'], { as: fu, env })).stdout, 'fresh\nkept\nkept\n');
        assert.is((await cli(['rm', '-f', 'keep'], { as: fu, env })).code, 0);
        // Each unmount ends its fuse-overlayfs daemon (which may take a moment to exit).
        await eventually(
          'no fuse-overlayfs left running',
          async () => !spawnOk('pgrep', ['-u', String(fu.uid), 'fuse-overlayfs']),
        );
      } finally {
        const pid = Number(readFileSync(`/tmp/tsrun-${fu.uid}/pause.pid`, 'utf8').trim());
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        rmSync(`/tmp/tsrun-${fu.uid}`, { recursive: true, force: true });
        rmSync(path.join(fu.home, '.local'), { recursive: true, force: true });
      }
    },
  );
}

R('what cannot work says what is missing and how to fix it', async () => {
  const mode = lstatSync('/dev/net/tun').mode & 0o777;
  chmodSync('/dev/net/tun', 0o600);
  try {
    const net = await cli(['run', '--rm', IMAGE, 'true']);
    assert.is(net.code, 125);
    assert.match(net.stderr, 'rootless networking needs /dev/net/tun, which you cannot use (mode 0600)');
    assert.match(net.stderr, 'chmod 0666 /dev/net/tun');
    assert.is((await cli(['run', '--rm', '--network', 'none', IMAGE, 'true'])).code, 0, 'none still works');
  } finally {
    chmodSync('/dev/net/tun', mode);
  }
  const mem = await cli(['run', '--rm', '--network', 'none', '-m', '64m', IMAGE, 'true']);
  assert.is(mem.code, 125);
  assert.match(mem.stderr, 'need a cgroup v2 hierarchy delegated to you');
  assert.is((await cli(['ps', '-aq'])).stdout, '', 'the refused run left no container');
  const info = await cli(['info']);
  assert.is(info.code, 0, 'every required item is there');
});

R(
  'a user without subordinate ids: a single-id namespace with a warning; root-owned images run, others fail clearly; info fails',
  async () => {
    const nosub = ensureUser(NOSUB, false);
    const rootOnly = `${reg.host}/rl/rootonly:1`;
    const bin = readFileSync('/bin/busybox');
    await pushImage(reg, 'rl/rootonly', '1', {
      layers: [
        layerBlob(
          makeTar([
            { name: 'bin/', type: 'dir' },
            { name: 'bin/busybox', content: bin, mode: 0o755 },
            { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
            { name: 'dev/', type: 'dir' },
            { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
          ]),
          'none',
        ),
      ],
      config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
    });
    try {
      const r = await cli(
        ['run', '--rm', '--network', 'none', rootOnly, 'sh', '-c', 'echo single; cat /proc/self/uid_map | wc -l'],
        { as: nosub },
      );
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout, 'single\n1\n');
      assert.match(
        r.stderr,
        `WARN: user ${NOSUB} has no subordinate uid range in /etc/subuid: using a single-id user namespace`,
      );
      assert.not.match(r.stderr, 'device node', 'a device under /dev is no news: the runtime makes its own /dev');
      // The suggested range overlaps no one's.
      const fix = /usermod --add-subuids (\d+)-(\d+) --add-subgids \1-\2 /.exec(r.stderr);
      assert.ok(fix, r.stderr);
      const [lo, hi] = [Number(fix?.[1]), Number(fix?.[2])];
      assert.is(hi - lo + 1, 65536);
      for (const f of ['/etc/subuid', '/etc/subgid']) {
        for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
          const [, a, n] = line.split(':').map(Number) as [number, number, number];
          assert.ok(hi < a || lo >= a + n, `${lo}-${hi} overlaps ${line} in ${f}`);
        }
      }
      assert.is((await cli(['images', '-q'], { as: nosub })).code, 0);
      const other = await cli(['pull', IMAGE], { as: nosub });
      assert.is(other.code, 1);
      assert.match(other.stderr, 'is owned by 1000:1000, an id this user namespace does not map');
      const info = await cli(['info'], { as: nosub });
      assert.is(info.code, 1, 'a CI pre-flight step fails on it');
      assert.match(info.stdout, /MISSING\s+subordinate uids/);
    } finally {
      const pid = Number(readFileSync(`/tmp/tsrun-${nosub.uid}/pause.pid`, 'utf8').trim());
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      rmSync(`/tmp/tsrun-${nosub.uid}`, { recursive: true, force: true });
      rmSync(path.join(nosub.home, 'tsrun-store'), { recursive: true, force: true });
    }
  },
);

R('a /tmp/tsrun-UID made by someone else is refused, saying what to do', async () => {
  const victim = ensureUser(NOSUB, false);
  const squat = `/tmp/tsrun-${victim.uid}`;
  rmSync(squat, { recursive: true, force: true });
  mkdirSync(squat);
  chmodSync(squat, 0o1777);
  chownSync(squat, uid, gid); // the rootless test user took the name first
  try {
    const r = await cli(['ps'], { as: victim });
    assert.is(r.code, 1);
    assert.match(
      r.stderr,
      `rootless mode: ${squat} belongs to uid ${uid} (mode 1777), not to you (uid ${victim.uid}) with mode 0700`,
    );
    assert.match(r.stderr, `hint: as root: rm -rf ${squat}`);
    assert.equal(readdirSync(squat), [], 'nothing was written into it');
    // With a runtime directory of the user's own, it works.
    const xdg = path.join(victim.home, 'xdg');
    mkdirSync(xdg, { recursive: true, mode: 0o700 });
    chownSync(xdg, victim.uid, victim.gid);
    const ok = await cli(['ps', '-q'], { as: victim, env: { XDG_RUNTIME_DIR: xdg } });
    assert.is(ok.code, 0, ok.stderr);
    assert.is(lstatSync(`${xdg}/tsrun`).mode & 0o777, 0o700);
    try {
      process.kill(Number(readFileSync(`${xdg}/tsrun/pause.pid`, 'utf8').trim()), 'SIGKILL');
    } catch {
      /* gone */
    }
  } finally {
    rmSync(squat, { recursive: true, force: true });
    rmSync(path.join(victim.home, 'xdg'), { recursive: true, force: true });
    rmSync(path.join(victim.home, 'tsrun-store'), { recursive: true, force: true });
  }
});

R.run();
