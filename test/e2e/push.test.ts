/**
 * End to end: `tsrun push` against real registries — a Docker-Hub-style token registry (login,
 * denied without it, cross-repository mounts, blobs skipped when present, the manifest's digest
 * kept) and an anonymous one behind a recording proxy (monolithic and chunked uploads seen on the
 * wire). Every pushed image is pulled back into a fresh store and run, and read by skopeo.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { runDir } from './containers.js';
import { bulkLayer, busyboxLayer } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';

const P = suite('e2e push');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-push-'));
const HOME = path.join(tmp, 'home');
const root = path.join(tmp, 'root');
let hub: TestRegistry;
let plain: TestRegistry;
let proxy: { host: string; log: string[]; failNextPatch(): void; stop(): Promise<void> };
let manifestDigest = '';

/** A loopback HTTP proxy in front of a registry that records "METHOD path [Content-Range]". */
async function recordingProxy(target: TestRegistry): Promise<typeof proxy> {
  const log: string[] = [];
  let failPatch = false;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (failPatch && req.method === 'PATCH') {
      // A registry hiccup in the middle of a chunked upload: the client must start the blob over.
      failPatch = false;
      log.push(`PATCH ${u.pathname} -> 503`);
      req.resume();
      res
        .writeHead(503, { 'Content-Type': 'application/json' })
        .end('{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}');
      return;
    }
    log.push(
      `${req.method} ${u.pathname}${u.searchParams.has('digest') ? '?digest' : ''}${u.searchParams.has('mount') ? '?mount' : ''}${req.headers['content-range'] ? ` ${req.headers['content-range']}` : ''}`,
    );
    const up = http.request(`${target.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    failNextPatch: () => {
      failPatch = true;
    },
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

const cli = (args: string[], o: { root?: string; input?: string; env?: Record<string, string> } = {}) =>
  tsrun(args, { root: o.root ?? root, input: o.input, env: { HOME, ...o.env } });

P.before(async () => {
  hub = await startRegistry({ auth: 'token' });
  plain = await startRegistry({ auth: 'anonymous' });
  proxy = await recordingProxy(plain);
  const pushed = await pushImage(hub, 'public/busybox', '1', {
    layers: [busyboxLayer(), bulkLayer(3, 2)],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  manifestDigest = pushed.manifestDigest;
  const pull = await cli(['pull', '-q', `${hub.host}/public/busybox:1`]);
  assert.is(pull.code, 0, pull.stderr);
});
P.after(async () => {
  await proxy?.stop();
  await hub?.stop();
  await plain?.stop();
  for (const r of [root, path.join(tmp, 'back')]) rmSync(runDir(r), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

P('push needs a local tag, and credentials where the registry wants them', async () => {
  const missing = await cli(['push', `${hub.host}/alice/nothing:1`]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, `An image does not exist locally with the tag: ${hub.host}/alice/nothing:1`);
  assert.is((await cli(['tag', `${hub.host}/public/busybox:1`, `${hub.host}/alice/app:1`])).code, 0);
  const denied = await cli(['push', `${hub.host}/alice/app:1`]);
  assert.is(denied.code, 1, denied.stdout);
  assert.match(denied.stderr, `tsrun login ${hub.host}`);
  const byDigest = await cli(['push', `${hub.host}/alice/app@${manifestDigest}`]);
  assert.is(byDigest.code, 1);
  assert.match(byDigest.stderr, 'cannot push a digest reference');
});

P(
  'token registry: blobs mounted from the repository the image came from, the manifest digest kept, a second push skips everything',
  async () => {
    const login = await cli(['login', '-u', 'alice', '--password-stdin', hub.host], { input: 'wonderland\n' });
    assert.is(login.code, 0, login.stderr);
    const r = await cli(['push', `${hub.host}/alice/app:1`]);
    assert.is(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.is(lines[0], `The push refers to repository [${hub.host}/alice/app]`);
    // The two layers (the config is pushed too, but Docker lists only layers), mounted from public/busybox.
    assert.equal(
      lines.slice(1, 3).map((l) => l.replace(/^[0-9a-f]{12}: /, '')),
      ['Mounted from public/busybox', 'Mounted from public/busybox'],
    );
    assert.match(lines[3] ?? '', new RegExp(`^1: digest: ${manifestDigest} size: \\d+$`));
    const again = await cli(['push', `${hub.host}/alice/app:1`]);
    assert.is(again.code, 0, again.stderr);
    assert.equal(
      again.stdout
        .trim()
        .split('\n')
        .slice(1, 3)
        .map((l) => l.replace(/^[0-9a-f]{12}: /, '')),
      Array(2).fill('Layer already exists'),
    );
    assert.is(again.stdout.split('\n').length, 5, again.stdout);
    // The image now knows its digest in the new repository.
    const inspect = await cli(['image', 'inspect', '-f', '{{json .RepoDigests}}', `${hub.host}/alice/app:1`]);
    assert.match(inspect.stdout, `${hub.host}/alice/app@${manifestDigest}`);
  },
);

P(
  'anonymous registry behind a recording proxy: small blobs in one PUT, a large one in PATCH chunks; pulled back, run, and read by skopeo',
  async () => {
    const target = `${proxy.host}/team/app`;
    assert.is((await cli(['tag', `${hub.host}/public/busybox:1`, `${target}:1`])).code, 0);
    assert.is((await cli(['tag', `${hub.host}/public/busybox:1`, `${target}:2`])).code, 0);
    const r = await cli(['push', '-a', target], { env: { TSRUN_PUSH_CHUNK_SIZE: String(1024 * 1024) } });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /: Pushed\n/);
    assert.match(r.stdout, new RegExp(`^1: digest: ${manifestDigest} `, 'm'));
    assert.match(r.stdout, new RegExp(`^2: digest: ${manifestDigest} `, 'm'));
    const log = proxy.log.join('\n');
    // Requests per upload session, in order (three blobs go up at once, so sessions interleave).
    const sessions = new Map<string, string[]>();
    for (const l of proxy.log) {
      const m = /^(PATCH|PUT) \/v2\/team\/app\/blobs\/uploads\/([0-9a-f-]+)(.*)$/.exec(l);
      if (m) sessions.set(m[2] as string, [...(sessions.get(m[2] as string) ?? []), `${m[1]}${m[3]}`]);
    }
    const shapes = [...sessions.values()].map((v) => v.join(' | '));
    // The 3 MiB layer (two files of 1.5 MiB, incompressible) in 1 MiB PATCHes, then a PUT with the digest…
    assert.ok(
      shapes.some((x) =>
        /^PATCH 0-1048575 \| PATCH 1048576-2097151 \| PATCH 2097152-3145727 \| PATCH 3145728-\d+ \| PUT\?digest$/.test(
          x,
        ),
      ),
      shapes.join('\n'),
    );
    // …and the small config in one PUT carrying the body and the digest.
    assert.ok(shapes.includes('PUT?digest'), shapes.join('\n'));
    assert.match(log, /PUT \/v2\/team\/app\/manifests\/1\n/);
    // The second tag found every blob there already.
    const second = r.stdout.split('The push refers to repository')[2] ?? '';
    assert.equal(
      second
        .trim()
        .split('\n')
        .slice(1, 3)
        .map((l) => l.replace(/^[0-9a-f]{12}: /, '')),
      Array(2).fill('Layer already exists'),
    );

    const back = path.join(tmp, 'back');
    const pulled = await cli(['pull', '-q', `${target}:2`], { root: back });
    assert.is(pulled.code, 0, pulled.stderr);
    const ids = await Promise.all(
      [root, back].map((rt) => cli(['image', 'inspect', '-f', '{{.Id}}', `${target}:2`], { root: rt })),
    );
    assert.is(ids[0]?.stdout, ids[1]?.stdout);
    const run = await cli(['run', '--rm', '--network', 'none', `${target}:2`, 'sh', '-c', 'ls /bulk | wc -l'], {
      root: back,
    });
    assert.is(run.stdout.trim(), '2', run.stderr);
    const sk = await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${target}:1`], { reject: false });
    assert.is(sk.exitCode, 0, String(sk.stderr));
    assert.is((JSON.parse(String(sk.stdout)) as { Digest: string }).Digest, manifestDigest);
    const copy = await execa(
      'skopeo',
      ['copy', '--src-tls-verify=false', `docker://${target}:1`, `oci:${path.join(tmp, 'oci')}:x`],
      { reject: false },
    );
    assert.is(copy.exitCode, 0, String(copy.stderr));
  },
);

P(
  'a chunk the registry fails is not fatal: the upload goes on in the same session from where the registry stands',
  async () => {
    // An image none of whose blobs the anonymous registry has yet (so nothing can be mounted).
    await pushImage(hub, 'public/fresh', '1', { layers: [bulkLayer(2, 1)], config: { config: { Cmd: ['sh'] } } });
    assert.is((await cli(['pull', '-q', `${hub.host}/public/fresh:1`])).code, 0);
    const target = `${proxy.host}/team/retry`;
    assert.is((await cli(['tag', `${hub.host}/public/fresh:1`, `${target}:1`])).code, 0);
    const before = proxy.log.length;
    proxy.failNextPatch();
    const r = await cli(['push', `${target}:1`], { env: { TSRUN_PUSH_CHUNK_SIZE: String(1024 * 1024) } });
    assert.is(r.code, 0, r.stderr);
    const log = proxy.log.slice(before);
    assert.ok(
      log.some((l) => l.endsWith('-> 503')),
      log.join('\n'),
    );
    // One upload session per blob (a layer and the config): the failed chunk was resumed after
    // asking the registry for the session's status (GET), not started over.
    assert.is(log.filter((l) => l.startsWith('POST /v2/team/retry/blobs/uploads/')).length, 2, log.join('\n'));
    assert.ok(
      log.some((l) => l.startsWith('GET /v2/team/retry/blobs/uploads/')),
      log.join('\n'),
    );
    const sk = await execa(
      'skopeo',
      ['copy', '--src-tls-verify=false', `docker://${target}:1`, `oci:${path.join(tmp, 'oci2')}:x`],
      { reject: false },
    );
    assert.is(sk.exitCode, 0, String(sk.stderr));
  },
);

P.run();
