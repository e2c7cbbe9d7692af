/**
 * End to end: `tsrun search`.
 * - Docker Hub is not reachable here, so its search API (`GET /v1/search?q=&n=`) is played by a
 *   small local HTTP server answering with the JSON shape Docker Hub answers with, pointed to by
 *   TSRUN_SEARCH_INDEX_URL; what tsrun asks it (query, n) is checked as well as what it prints.
 * - `REGISTRY/TERM` and `--list-tags` run against the real docker-registry on loopback with
 *   Docker-Hub-style token auth: a catalog of more than 100 repositories (the match is on the
 *   second page) and a repository with 150 tags (listed 100 a page, following `Link`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { busyboxLayer } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushAuthorization, pushImage, putManifest } from '../helpers/push.js';

async function inBatches<T>(items: T[], fn: (x: T) => Promise<unknown>, size = 16): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

let reg: TestRegistry;
let hub: http.Server;
let hubUrl = '';
const asked: URL[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-search-'));
const root = path.join(tmp, 'root');
const home = path.join(tmp, 'home');
const TAGS = Array.from({ length: 150 }, (_, i) => `v${String(i).padStart(3, '0')}`);

const HUB_RESULTS = [
  {
    star_count: 13412,
    is_official: true,
    name: 'node',
    is_automated: false,
    description: 'Node.js is a JavaScript-based platform for server-side and networking applications.',
  },
  {
    star_count: 582,
    is_official: false,
    name: 'mhart/alpine-node',
    is_automated: false,
    description: 'Minimal Node.js built on Alpine Linux',
  },
  {
    star_count: 2,
    is_official: false,
    name: 'someone/node-tools',
    is_automated: true,
    description: 'line one\nline two',
  },
];

const S = suite('e2e search');

S.before(async () => {
  hub = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    asked.push(url);
    if (url.pathname !== '/v1/search') {
      res.writeHead(404).end();
      return;
    }
    const q = url.searchParams.get('q') ?? '';
    const n = Number(url.searchParams.get('n') ?? 25);
    const results = HUB_RESULTS.filter((r) => r.name.includes(q)).slice(0, n);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ num_pages: 1, num_results: results.length, page_size: n, page: 1, query: q, results }));
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;

  reg = await startRegistry({ auth: 'token' });
  const bb = busyboxLayer();
  const pushed = await pushImage(reg, 'e2e/many', TAGS[0] as string, {
    layers: [bb],
    config: { config: { Cmd: ['sh'] } },
  });
  const auth = await pushAuthorization(reg, 'e2e/many');
  await inBatches(TAGS.slice(1), (t) => putManifest(reg, 'e2e/many', t, pushed.manifest, pushed.mediaType, auth));
  // 105 repositories sort before the one the test looks for: it is on the catalog's second page.
  const repos = [...Array.from({ length: 105 }, (_, i) => `aaa/r${String(i).padStart(3, '0')}`), 'zzz/needle-app'];
  await inBatches(repos, (r) => pushImage(reg, r, '1', { layers: [bb], config: { config: {} } }));
  const login = await tsrun(['login', '-u', 'alice', '--password-stdin', reg.host], {
    root,
    env: { HOME: home },
    input: 'wonderland',
  });
  assert.is(login.code, 0, login.stderr);
});
S.after(async () => {
  await new Promise((r) => hub?.close(r));
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const cli = (args: string[]) => tsrun(args, { root, env: { HOME: home, TSRUN_SEARCH_INDEX_URL: hubUrl } });

S("search TERM asks Docker Hub's search API and prints Docker's columns", async () => {
  const r = await cli(['search', 'node']);
  assert.is(r.code, 0, r.stderr);
  const q = asked.at(-1) as URL;
  assert.is(q.searchParams.get('q'), 'node');
  assert.is(q.searchParams.get('n'), '25');
  const lines = r.stdout.split('\n');
  assert.match(lines[0] as string, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL$/);
  assert.match(lines[1] as string, /^node\s+Node\.js is a JavaScript-based platform for s…\s+13412\s+\[OK\]$/);
  assert.match(lines[2] as string, /^mhart\/alpine-node\s+Minimal Node\.js built on Alpine Linux\s+582\s*$/);
  assert.match(lines[3] as string, /^someone\/node-tools\s+line one line two\s+2\s*$/);

  const full = await cli(['search', '--no-trunc', '--limit', '2', 'node']);
  assert.is(asked.at(-1)?.searchParams.get('n'), '2');
  assert.ok(full.stdout.includes('networking applications.'), full.stdout);
  assert.is(full.stdout.trim().split('\n').length, 3);
});

S('search --filter and --format: Docker filters and field names', async () => {
  const official = await cli(['search', '--filter', 'is-official=true', '--format', '{{.Name}}', 'node']);
  assert.is(official.stdout, 'node\n');
  const stars = await cli([
    'search',
    '-f',
    'stars=3',
    '-f',
    'stars=600',
    '--format',
    '{{.Name}} {{.StarCount}}',
    'node',
  ]);
  assert.is(stars.stdout, 'node 13412\n', 'the largest stars= wins');
  const json = await cli(['search', '--format', 'json', '--limit', '1', 'node']);
  assert.equal(JSON.parse(json.stdout), {
    Name: 'node',
    Description: 'Node.js is a JavaScript-based platform for s…',
    StarCount: '13412',
    IsOfficial: '[OK]',
    IsAutomated: '',
  });
  const bad = await cli(['search', '--filter', 'stars=many', 'node']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /invalid filter 'stars=many'/);
  const unknown = await cli(['search', '--filter', 'color=red', 'node']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /invalid filter 'color'/);
  const limit = await cli(['search', '--limit', '101', 'node']);
  assert.is(limit.code, 1);
  assert.match(limit.stderr, /limit 101 is outside the range of \[1, 100\]/);
});

S('REGISTRY/TERM searches the registry catalog, across pages, with a token', async () => {
  const r = await cli(['search', `${reg.host}/needle`]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2, r.stdout);
  assert.match(lines[1] as string, new RegExp(`^${reg.host}/zzz/needle-app\\s+0\\s*$`));
  const some = await cli(['search', '--limit', '3', '--format', '{{.Name}}', `${reg.host}/aaa/r`]);
  assert.is(some.stdout, ['aaa/r000', 'aaa/r001', 'aaa/r002'].map((n) => `${reg.host}/${n}\n`).join(''));
  // Without login the catalog is refused: the registry's answer, with the login hint.
  const anon = await tsrun(['search', `${reg.host}/needle`], { root, env: { HOME: path.join(tmp, 'nobody') } });
  assert.is(anon.code, 1);
  assert.match(anon.stderr, /searching the catalog of 127\.0\.0\.1:\d+/);
});

S('search --list-tags lists every tag, following Link pages of 100', async () => {
  const r = await cli(['search', '--list-tags', `${reg.host}/e2e/many`]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0] as string, /^NAME\s+TAG$/);
  assert.equal(
    lines.slice(1).map((l) => l.split(/\s+/)[1]),
    TAGS,
  );
  assert.ok(lines.slice(1).every((l) => l.startsWith(`${reg.host}/e2e/many `)));
  const few = await cli(['search', '--list-tags', '--limit', '2', '--format', '{{.Tag}}', `${reg.host}/e2e/many`]);
  assert.is(few.stdout, 'v000\nv001\n');
  const tagged = await cli(['search', '--list-tags', `${reg.host}/e2e/many:v001`]);
  assert.is(tagged.code, 1);
  assert.match(tagged.stderr, /must not have a tag/);
});

S.run();
