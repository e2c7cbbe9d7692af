/**
 * End to end: `tsrun build` with the real CLI, real runc and a real registry, on the getting-
 * started tutorial's Dockerfile (word for word: `FROM node:17-alpine`, served by a Docker-Hub-
 * style token registry configured as docker.io's mirror, holding a Node image made from this
 * machine's node and npm). Then: the app runs with -p and answers; the cache by image ids (an
 * unchanged rebuild, one changed file, --no-cache and reproducible COPY layers); a multi-stage
 * build with COPY --from and --target; failures that leave nothing; and a push to the token
 * registry that pulls back and runs in tsrun and in podman, and reads in skopeo.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import path from 'node:path';
import { spawnTsrun, tsrun } from './cli.js';
import { eventually, leftovers, runDir } from './containers.js';
import { busyboxLayer, dockerHubMirror, nodeLayer, writeTutorialApp } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { freePort, hostAddress, httpGet } from '../helpers/net.js';
import { makeTar } from '../helpers/tar-writer.js';

const B = suite('e2e build');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-build-'));
const root = path.join(tmp, 'root');
const HOME = path.join(tmp, 'home');
const app = path.join(tmp, 'app');
let hub: TestRegistry;
let conf = '';

const cli = (args: string[], o: { root?: string; input?: string; env?: Record<string, string> } = {}) =>
  tsrun(args, { root: o.root ?? root, input: o.input, env: { HOME, CONTAINERS_REGISTRIES_CONF: conf, ...o.env } });

/** The " ---> …" lines of a build's output, in order. */
const arrows = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith(' ---> '))
    .map((l) => l.slice(6));
const imageId = async (ref: string, r = root) =>
  (await cli(['image', 'inspect', '-f', '{{.Id}}', ref], { root: r })).stdout.trim();
const layersOf = async (ref: string) =>
  JSON.parse((await cli(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', ref])).stdout) as string[];

B.before(async () => {
  hub = await startRegistry({ auth: 'token' });
  await pushImage(hub, 'library/node', '17-alpine', {
    layers: [busyboxLayer(), nodeLayer()],
    config: { config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['node'] } },
  });
  conf = path.join(tmp, 'registries.conf');
  writeFileSync(conf, dockerHubMirror(hub.host));
  writeTutorialApp(app, 'hello from the tutorial\n');
});
B.after(async () => {
  await hub?.stop();
  for (const r of [root, path.join(tmp, 'back')]) rmSync(runDir(r), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

B('the tutorial: build -t, then run --rm -p 3000:3000 answers; .dockerignore kept the secret out', async () => {
  const r = await cli(['build', '-t', 'getting-started', app]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^Step 1\/7 : FROM node:17-alpine$/m);
  assert.match(r.stdout, /^Step 4\/7 : RUN npm install$/m);
  assert.match(r.stdout, /^ ---> Running in [0-9a-f]{12}$/m);
  assert.match(r.stdout, /^Successfully tagged getting-started:latest$/m);
  const id = await imageId('getting-started');
  assert.match(r.stdout, `Successfully built ${id.slice(7, 19)}`);
  const cfg = JSON.parse(
    (await cli(['image', 'inspect', '-f', '{{json .Config}}', 'getting-started'])).stdout,
  ) as Record<string, unknown>;
  assert.equal(
    [cfg.Cmd, cfg.WorkingDir, Object.keys(cfg.ExposedPorts as object)],
    [['npm', 'start'], '/app', ['3000/tcp']],
  );
  // history: the six steps newest first (then the base's two), sizes only where a layer was made.
  const history = (await cli(['history', '--no-trunc', 'getting-started'])).stdout
    .split('\n')
    .slice(1, 7)
    .map((l) => l.split(/\s{3,}/));
  assert.equal(
    history.map((h) => h[0] === '<missing>'),
    [false, true, true, true, true, true],
  );
  assert.equal(
    history.map((h) => h[2]?.split(' ')[0]),
    ['CMD', 'EXPOSE', 'COPY', 'RUN', 'COPY', 'WORKDIR'],
  );
  assert.is(history[3]?.[2], 'RUN /bin/sh -c npm install');
  assert.equal(
    history.map((h) => h[3] === '0B'),
    [true, true, false, false, false, true],
  );

  const port = await freePort();
  const run = await cli(['run', '-d', '--rm', '--name', 'tut', '-p', `${port}:3000`, 'getting-started']);
  assert.is(run.code, 0, run.stderr);
  try {
    assert.is(await httpGet('127.0.0.1', port), 'hello from the tutorial\n');
    const ls = await cli(['exec', 'tut', 'ls', '-a', '/app']);
    assert.equal(ls.stdout.split('\n').filter(Boolean).sort(), [
      '.',
      '..',
      '.dockerignore',
      'Dockerfile',
      'package-lock.json',
      'package.json',
      'src',
    ]);
  } finally {
    await cli(['stop', '-t', '1', 'tut']);
  }
  assert.equal(await leftovers(root), []);
});

B('cache: an unchanged rebuild reuses every step (same id); one changed file rebuilds from its COPY on', async () => {
  const first = await imageId('getting-started');
  const again = await cli(['build', '-t', 'getting-started', app]);
  assert.is(again.code, 0, again.stderr);
  assert.is(arrows(again.stdout).filter((a) => a === 'Using cache').length, 6);
  assert.not.match(again.stdout, 'Running in');
  assert.is(await imageId('getting-started'), first);

  writeFileSync(path.join(app, 'src', 'message.txt'), 'changed\n');
  const changed = await cli(['build', '-t', 'getting-started:2', app]);
  assert.is(changed.code, 0, changed.stderr);
  const steps = changed.stdout.split(/^Step /m).slice(1);
  // WORKDIR, COPY package*.json and RUN npm install come from the cache; COPY . . and after do not.
  assert.equal(
    steps.map((s) => s.includes('Using cache')),
    [false, true, true, true, false, false, false],
  );
  assert.is.not(await imageId('getting-started:2'), first);
  const [a, b] = [await layersOf('getting-started'), await layersOf('getting-started:2')];
  assert.equal(b.slice(0, 5), a.slice(0, 5));
  assert.is.not(b[5], a[5]);

  // --no-cache runs everything again, and the COPY layers come out byte for byte the same.
  const fresh = await cli(['build', '--no-cache', '-t', 'getting-started:3', app]);
  assert.is(fresh.code, 0, fresh.stderr);
  assert.not.match(fresh.stdout, 'Using cache');
  const c = await layersOf('getting-started:3');
  // [busybox, node, WORKDIR, COPY package*.json, RUN, COPY . .]: what does not follow a RUN
  // (whose files carry the time they were made) is reproducible.
  assert.is(c[2], b[2], 'WORKDIR layer reproducible');
  assert.is(c[3], b[3], 'COPY package*.json layer reproducible');
  assert.is.not(c[4], b[4], 'RUN layers carry their times');
  writeFileSync(path.join(app, 'src', 'message.txt'), 'hello from the tutorial\n');
});

B('multi-stage: COPY --from a named stage into scratch; --target stops at a stage', async () => {
  const dir = path.join(tmp, 'multi');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      'ARG BASE=node:17-alpine',
      'FROM ${BASE} AS build',
      'ARG GREETING=hi',
      'RUN mkdir -p /out && echo "$GREETING from the build stage" > /out/artifact && chown 1234:1234 /out/artifact',
      'FROM scratch',
      'COPY --from=build /bin/busybox /bin/',
      'COPY --from=build /out/artifact /srv/',
      'ENTRYPOINT ["/bin/busybox"]',
      'CMD ["cat", "/srv/artifact"]',
    ].join('\n'),
  );
  const r = await cli(['build', '--build-arg', 'GREETING=hello', '--build-arg', 'UNUSED=1', '-t', 'multi', dir]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr, 'build-args [UNUSED] were not consumed');
  const run = await cli(['run', '--rm', '--network', 'none', 'multi']);
  assert.is(run.stdout, 'hello from the build stage\n', run.stderr);
  const owner = await cli(['run', '--rm', '--network', 'none', 'multi', 'stat', '-c', '%u', '/srv/artifact']);
  assert.is(owner.stdout.trim(), '1234', 'COPY --from keeps the owner');
  assert.is((await layersOf('multi')).length, 2);

  const t = await cli(['build', '--target', 'build', '-t', 'multi:build', dir]);
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stdout, /^Step 3\/3 : RUN /m);
  const cat = await cli(['run', '--rm', '--network', 'none', 'multi:build', 'cat', '/out/artifact']);
  assert.is(cat.stdout, 'hi from the build stage\n');
});

B(
  'the rest of the instruction set: ADD extracts tars (gzip, xz, bzip2; not a compressed non-tar) and fetches URLs, --chown/--chmod, USER for RUN, exec form, SHELL, RUN and COPY heredocs, a host server reached over the bridge, metadata recorded; -f outside the context and -f -',
  async () => {
    const dir = path.join(tmp, 'full');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'bundle.tar.gz'),
      gzipSync(
        makeTar([
          { name: 'dir/', type: 'dir' },
          { name: 'dir/a.txt', content: 'from the tarball\n' },
        ]),
      ),
    );
    writeFileSync(path.join(dir, 'notes.txt'), 'notes\n');
    const inner = makeTar([
      { name: 'xz/', type: 'dir' },
      { name: 'xz/b.txt', content: 'from xz\n' },
    ]);
    writeFileSync(path.join(dir, 'more.tar.xz'), execFileSync('xz', ['-c'], { input: inner }));
    writeFileSync(
      path.join(dir, 'more.tar.bz2'),
      execFileSync('bzip2', ['-c'], { input: makeTar([{ name: 'bz/c.txt', content: 'from bzip2\n' }]) }),
    );
    writeFileSync(path.join(dir, 'plain.gz'), gzipSync('not a tar\n'));
    writeFileSync(path.join(dir, 'config.json'), '{}\n');
    const server = http.createServer((req, res) => {
      if (req.url === '/files/data.txt')
        res.writeHead(200, { 'Last-Modified': 'Tue, 14 Nov 2023 22:13:20 GMT' }).end('downloaded\n');
      else res.end('fetched from the host\n');
    });
    const host = hostAddress();
    await new Promise<void>((r) => server.listen(0, host, r));
    const port = (server.address() as AddressInfo).port;
    const dockerfile = path.join(tmp, 'elsewhere', 'Build.dockerfile');
    mkdirSync(path.dirname(dockerfile), { recursive: true });
    writeFileSync(
      dockerfile,
      [
        'FROM node:17-alpine',
        'LABEL org.example.team="platform" version=1',
        'ARG APPDIR=/srv/app',
        'ENV APPDIR=${APPDIR} GREETING="hello there"',
        'WORKDIR $APPDIR',
        'ADD bundle.tar.gz ./',
        'ADD notes.txt ./notes/',
        'ADD more.tar.xz more.tar.bz2 plain.gz ./',
        `ADD http://${host}:${port}/files/data.txt /h/`,
        'COPY --chown=app:app --chmod=640 config.json ${APPDIR}/config.json',
        'USER app',
        'RUN ["sh", "-c", "id -u > /tmp/whoami"]',
        'USER root',
        'SHELL ["/bin/sh", "-ec"]',
        `RUN wget -qO fetched.txt http://${host}:${port}/`,
        'RUN <<EOF',
        'mkdir -p /h',
        'echo "heredoc in $APPDIR" > /h/x',
        'EOF',
        'RUN cat <<EOF > /h/y',
        'piped $GREETING',
        'EOF',
        'COPY <<EOF /h/conf.txt',
        'dir=$APPDIR "quoted"',
        'EOF',
        "COPY <<'RAW' /h/raw.txt",
        'kept $APPDIR',
        'RAW',
        'VOLUME /data',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=30s CMD wget -q localhost:3000 || exit 1',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        'CMD ["cat $APPDIR/fetched.txt"]',
      ].join('\n'),
    );
    try {
      const r = await cli(['build', '-f', dockerfile, '-t', 'full', dir]);
      assert.is(r.code, 0, r.stderr + r.stdout);
    } finally {
      server.close();
    }
    const run = await cli(['run', '--rm', '--network', 'none', 'full']);
    assert.is(run.stdout, 'fetched from the host\n', run.stderr);
    const look = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      'full',
      'cat dir/a.txt notes/notes.txt /tmp/whoami; stat -c "%u:%g %a" config.json; echo $GREETING; cat /h/x /h/y /h/conf.txt /h/raw.txt xz/b.txt bz/c.txt /h/data.txt; stat -c "%a %Y" /h/data.txt; zcat plain.gz',
    ]);
    assert.is(
      look.stdout,
      'from the tarball\nnotes\n1000\n1000:1000 640\nhello there\nheredoc in /srv/app\npiped hello there\ndir=/srv/app "quoted"\nkept $APPDIR\nfrom xz\nfrom bzip2\ndownloaded\n600 1700000000\nnot a tar\n',
      look.stderr,
    );
    const cfg = JSON.parse((await cli(['image', 'inspect', '-f', '{{json .Config}}', 'full'])).stdout) as Record<
      string,
      unknown
    >;
    assert.equal(cfg.Labels, { 'org.example.team': 'platform', version: '1' });
    assert.is(cfg.StopSignal, 'SIGINT');
    assert.equal(cfg.Volumes, { '/data': {} });
    assert.equal(cfg.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost:3000 || exit 1'], Interval: 30e9 });
    assert.equal(
      [cfg.Entrypoint, cfg.Cmd, cfg.WorkingDir, cfg.User],
      [['/bin/sh', '-c'], ['cat $APPDIR/fetched.txt'], '/srv/app', 'root'],
    );

    const stdin = await cli(['build', '-q', '-f', '-', dir], {
      input: 'FROM node:17-alpine\nRUN echo from stdin > /stdin.txt\n',
    });
    assert.is(stdin.code, 0, stdin.stderr);
    assert.match(stdin.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const cat = await cli(['run', '--rm', '--network', 'none', stdin.stdout.trim(), 'cat', '/stdin.txt']);
    assert.is(cat.stdout, 'from stdin\n');
  },
);

B(
  "ONBUILD: triggers recorded in a base run in the child build (in the child's context), then are cleared",
  async () => {
    const base = path.join(tmp, 'onbase');
    const child = path.join(tmp, 'onchild');
    mkdirSync(base, { recursive: true });
    mkdirSync(child, { recursive: true });
    writeFileSync(
      path.join(base, 'Dockerfile'),
      'FROM node:17-alpine\nONBUILD COPY trigger.txt /t/\nONBUILD RUN cat /t/trigger.txt > /t/ran\n',
    );
    const b = await cli(['build', '-t', 'onbase', base]);
    assert.is(b.code, 0, b.stderr + b.stdout);
    assert.equal(JSON.parse((await cli(['image', 'inspect', '-f', '{{json .Config.OnBuild}}', 'onbase'])).stdout), [
      'COPY trigger.txt /t/',
      'RUN cat /t/trigger.txt > /t/ran',
    ]);
    writeFileSync(path.join(child, 'Dockerfile'), 'FROM onbase\nCMD ["cat", "/t/ran"]\n');
    writeFileSync(path.join(child, 'trigger.txt'), 'from the child context\n');
    const c = await cli(['build', '-t', 'onchild', child]);
    assert.is(c.code, 0, c.stderr + c.stdout);
    assert.match(c.stdout, '# Executing 2 build triggers');
    assert.is((await cli(['run', '--rm', '--network', 'none', 'onchild'])).stdout, 'from the child context\n');
    assert.is((await cli(['image', 'inspect', '-f', '{{json .Config.OnBuild}}', 'onchild'])).stdout.trim(), 'null');
    const again = await cli(['build', '-t', 'onchild', child]);
    assert.is(again.stdout.split('\n').filter((l) => l === ' ---> Using cache').length, 3, again.stdout);
  },
);

B(
  'RUN --mount: a cache kept across builds and out of the layers, a secret that leaves no trace, a read-only view of the context, tmpfs',
  async () => {
    const dir = path.join(tmp, 'mounts');
    mkdirSync(path.join(dir, 'src'), { recursive: true });
    writeFileSync(path.join(dir, 'src', 'input.txt'), 'from the context\n');
    writeFileSync(path.join(dir, '.dockerignore'), 'src/ignored.txt\n');
    writeFileSync(path.join(dir, 'src', 'ignored.txt'), 'ignored\n');
    const secret = path.join(tmp, 'token.txt');
    writeFileSync(secret, 's3cret-value');
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      [
        'FROM node:17-alpine',
        'RUN --mount=type=cache,target=/var/cache/app echo "run $(date +%s%N)" >> /var/cache/app/log && wc -l < /var/cache/app/log > /runs',
        'RUN --mount=type=secret,id=token,required cat /run/secrets/token | wc -c > /secret-length',
        'RUN --mount=source=src,target=/mnt/src ls /mnt/src > /seen && cat /mnt/src/input.txt >> /seen && (touch /mnt/src/x 2>/dev/null && echo writable || echo read-only) >> /seen',
        'RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && mount | grep -c " /scratch " > /tmpfs',
        // Two mounts under one new parent: the parent the runtime made must not stay behind either.
        'RUN --mount=type=tmpfs,target=/deep/a --mount=type=tmpfs,target=/deep/b/c true',
      ].join('\n'),
    );
    const build = (extra: string[] = []) =>
      cli(['build', ...extra, '--secret', `id=token,src=${secret}`, '-t', 'mounts', dir]);
    const first = await build();
    assert.is(first.code, 0, first.stderr + first.stdout);
    const second = await build(['--no-cache']);
    assert.is(second.code, 0, second.stderr);
    // Mount points the runtime made for the mounts (and their parents) are not in the layers.
    const out = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      'mounts',
      'sh',
      '-c',
      'cat /runs /secret-length /seen /tmpfs; for p in /var /run /mnt /scratch /deep; do [ -e $p ] && echo "$p left"; done; echo end',
    ]);
    assert.is(out.stdout, '2\n12\ninput.txt\nfrom the context\nread-only\n1\nend\n', out.stderr);
    // The secret is nowhere in the image: not in a layer, the config or the history.
    const images = JSON.parse(readFileSync(path.join(root, 'images.json'), 'utf8')) as {
      tags: Record<string, string>;
      images: Record<string, { layers: { digest: string }[] }>;
    };
    const id = images.tags['docker.io/library/mounts:latest'] as string;
    for (const blob of [id, ...(images.images[id]?.layers ?? []).map((l) => l.digest)]) {
      const bytes = readFileSync(path.join(root, 'blobs', 'sha256', blob.slice(7)));
      const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
      assert.not.ok(text.includes('s3cret-value'), `secret found in ${blob}`);
    }
    // (a cached step does not run, so it needs no secret, as in BuildKit)
    const missing = await cli(['build', '--no-cache', '-t', 'mounts', dir]);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, 'no such secret was given');
    assert.match(missing.stderr, 'tsrun build --secret id=token,src=FILE');
  },
);

B(
  'failures: a failing RUN exits 1 and tags nothing; bad Dockerfiles and missing sources exit 1 (Docker: 125 is only for run/create/start/exec); nothing is left behind',
  async () => {
    const dir = path.join(tmp, 'bad');
    mkdirSync(dir, { recursive: true });
    const build = async (dockerfile: string) => {
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
      return cli(['build', '-t', 'bad', dir]);
    };
    const failing = await build('FROM node:17-alpine\nRUN echo about to fail && exit 3\n');
    assert.is(failing.code, 1);
    assert.match(failing.stdout, 'about to fail');
    assert.match(failing.stderr, "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3");
    const syntax = await build('FROM node:17-alpine\nRUN true\nFLY away\n');
    assert.is(syntax.code, 1);
    assert.match(syntax.stderr, 'Dockerfile:3: unknown instruction: FLY');
    const missing = await build('FROM node:17-alpine\nCOPY nothing-here /x\n');
    assert.is(missing.code, 1);
    assert.match(missing.stderr, '"nothing-here" not found in the build context');
    const escape = await build('FROM node:17-alpine\nCOPY ../app/deploy.secret /x\n');
    assert.is(escape.code, 1);
    assert.is((await cli(['image', 'inspect', 'bad'])).code, 1, 'no image was tagged');
    assert.equal(await leftovers(root), []);
    assert.equal(readdirSync(path.join(root, 'tmp')), []);
  },
);

B('Ctrl-C during a RUN step stops the build (130) and removes its container, mount and network', async () => {
  const dir = path.join(tmp, 'slow');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM node:17-alpine\nRUN echo started && sleep 60\n');
  const child = spawnTsrun(['build', dir], {
    root,
    env: { HOME, CONTAINERS_REGISTRIES_CONF: conf, PATH: process.env.PATH ?? '' },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await eventually('the RUN step to start', async () => out.includes('\nstarted\n'));
  const started = Date.now();
  child.kill('SIGINT');
  const r = await child;
  assert.is(r.exitCode, 130, String(r.stderr));
  assert.ok(Date.now() - started < 10_000, `stopped promptly (${Date.now() - started} ms): ${String(r.stderr)}`);
  assert.match(String(r.stderr), 'build interrupted');
  assert.equal(await leftovers(root), []);
  assert.equal(readdirSync(path.join(root, 'tmp')), []);
});

B(
  'push: the built image goes to a token registry, pulls back and runs in tsrun and podman, and reads in skopeo',
  async () => {
    const target = `${hub.host}/alice/getting-started:1`;
    assert.is((await cli(['tag', 'getting-started', target])).code, 0);
    assert.is((await cli(['login', '-u', 'alice', '--password-stdin', hub.host], { input: 'wonderland\n' })).code, 0);
    const p = await cli(['push', target]);
    assert.is(p.code, 0, p.stderr);
    // The base came through docker.io's mirror, so nothing can be mounted: all is uploaded (six
    // layers listed; the config goes too, but Docker lists only layers).
    assert.is(p.stdout.split('\n').filter((l) => l.endsWith(': Pushed')).length, 6, p.stdout);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(p.stdout)?.[1];

    const back = path.join(tmp, 'back');
    const login = await cli(['login', '-u', 'alice', '--password-stdin', hub.host], {
      root: back,
      input: 'wonderland\n',
    });
    assert.is(login.code, 0);
    assert.is((await cli(['pull', '-q', target], { root: back })).code, 0);
    assert.is(await imageId(target, back), await imageId('getting-started'));
    const run = await cli(['run', '--rm', '--network', 'none', target, 'cat', '/app/src/message.txt'], { root: back });
    assert.is(run.stdout, 'hello from the tutorial\n', run.stderr);

    const sk = await execa(
      'skopeo',
      ['inspect', '--tls-verify=false', '--creds', 'alice:wonderland', `docker://${target}`],
      { reject: false },
    );
    assert.is(sk.exitCode, 0, String(sk.stderr));
    assert.is((JSON.parse(String(sk.stdout)) as { Digest: string }).Digest, digest);

    const pod = [
      '--root',
      path.join(tmp, 'podman'),
      '--runroot',
      path.join(tmp, 'podman-run'),
      '--storage-driver',
      'overlay',
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--runtime',
      'runc',
    ];
    const pull = await execa('podman', [...pod, 'pull', '--tls-verify=false', '--creds', 'alice:wonderland', target], {
      reject: false,
    });
    assert.is(pull.exitCode, 0, String(pull.stderr));
    const prun = await execa(
      'podman',
      [
        ...pod,
        'run',
        '--rm',
        '--network',
        'none',
        '--ulimit',
        'nofile=1024:20000',
        '--ulimit',
        'nproc=4096:4096',
        target,
        'node',
        '-e',
        "console.log(require('fs').readFileSync('/app/src/message.txt', 'utf8').trim(), process.cwd())",
      ],
      { reject: false },
    );
    assert.is(prun.exitCode, 0, String(prun.stderr));
    assert.is(String(prun.stdout).trim(), 'hello from the tutorial /app');
    await execa('podman', [...pod, 'system', 'reset', '-f'], { reject: false });
  },
);

B.run();
