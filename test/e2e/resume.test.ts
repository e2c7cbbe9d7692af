/**
 * End to end: pulls and pushes that finish on a bad link. A real registry behind a front that cuts, stalls or
 * hides Range support halfway through every blob; the real CLI pulls through it. A resumed blob
 * costs about one blob's worth of bytes (not one and a half), a stall is noticed after
 * TSRUN_STALL_TIMEOUT, and when nothing works the error names the blob and what was tried and
 * leaves no image behind.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { startFlakyFront, type FrontMode } from '../helpers/flaky-front.js';
import { tsrun } from './cli.js';
import { bulkLayer } from './fixtures.js';
import type { LayerBlob } from '../helpers/tar-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-resume-'));
let reg: TestRegistry;
let layer: LayerBlob;
let n = 0;
const freshRoot = () => path.join(tmp, `root${n++}`);

const R = suite('e2e resumable pulls and pushes');
R.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  layer = bulkLayer(6, 2);
  await pushImage(reg, 'e2e/big', '1', { layers: [layer], config: { config: { Cmd: ['sh'] } } });
});
R.after(async () => {
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

async function pullThrough(mode: FrontMode, env: Record<string, string> = {}) {
  const front = await startFlakyFront(reg.host, mode);
  const root = freshRoot();
  const started = Date.now();
  try {
    const r = await tsrun(['pull', `${front.host}/e2e/big:1`], { root, env });
    return { r, root, front, ms: Date.now() - started };
  } finally {
    await front.stop();
  }
}

R('a dropped connection is resumed with a Range request from the byte reached', async () => {
  const { r, root, front } = await pullThrough('drop');
  assert.is(r.code, 0, r.stderr);
  const ranges = front.requests.get(layer.digest) ?? [];
  assert.is(ranges[0], '', 'the first request asks for the whole blob');
  assert.ok(/^bytes=\d+-$/.test(ranges[1] ?? ''), `then a Range request: ${JSON.stringify(ranges)}`);
  const sent = front.sent.get(layer.digest) ?? 0;
  assert.ok(
    sent < layer.blob.length * 1.05,
    `resumed, not started over: ${sent} bytes sent for a ${layer.blob.length}-byte blob`,
  );
  assert.match(r.stdout, 'Resuming at');
  const images = await tsrun(['images', '-q'], { root });
  assert.is(images.stdout.trim().split('\n').length, 1);
});

R('a stalled download is abandoned after TSRUN_STALL_TIMEOUT and resumed', async () => {
  const { r, front, ms } = await pullThrough('stall', { TSRUN_STALL_TIMEOUT: '1' });
  assert.is(r.code, 0, r.stderr);
  assert.ok((front.requests.get(layer.digest) ?? []).length >= 2);
  assert.match(r.stdout, 'ETIMEDOUT');
  assert.ok(ms < 20_000, `took ${ms} ms`);
});

R('a registry that ignores Range: the blob starts over and the digest still holds', async () => {
  const { r, root, front } = await pullThrough('drop-no-range');
  assert.is(r.code, 0, r.stderr);
  const sent = front.sent.get(layer.digest) ?? 0;
  assert.ok(sent > layer.blob.length * 1.4, `the whole blob came again: ${sent}`);
  const check = await tsrun(['image', 'inspect', `${front.host}/e2e/big:1`], { root });
  assert.is(check.code, 0, check.stderr);
});

R('a link that always drops: bounded retries, an error naming the blob, nothing half-written', async () => {
  const { r, root, front } = await pullThrough('always-drop', { TSRUN_BLOB_RESUMES: '2' });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, layer.digest);
  assert.match(r.stderr, '2 resumed requests did not finish it');
  assert.is((front.requests.get(layer.digest) ?? []).length, 3, 'one request and two resumes, and no more');
  const images = await tsrun(['images', '-q'], { root });
  assert.is(images.stdout.trim(), '');
  const blobs = path.join(root, 'blobs', 'sha256');
  assert.not.ok(existsSync(path.join(blobs, layer.digest.slice(7))), 'no layer blob');
  const tmpDir = path.join(root, 'tmp');
  assert.equal(existsSync(tmpDir) ? readdirSync(tmpDir) : [], [], 'no temp file left');
});

async function pushThrough(mode: FrontMode) {
  const root = freshRoot();
  const pulled = await tsrun(['pull', '-q', `${reg.host}/e2e/big:1`], { root });
  assert.is(pulled.code, 0, pulled.stderr);
  const front = await startFlakyFront(reg.host, mode);
  try {
    const target = `${front.host}/e2e/pushed-${mode}:1`;
    assert.is((await tsrun(['tag', `${reg.host}/e2e/big:1`, target], { root })).code, 0);
    const r = await tsrun(['--debug', 'push', target], { root, env: { TSRUN_PUSH_CHUNK_SIZE: String(1024 * 1024) } });
    assert.is(r.code, 0, r.stderr);
    const back = await tsrun(['pull', '-q', `${reg.host}/e2e/pushed-${mode}:1`], { root: freshRoot() });
    assert.is(back.code, 0, back.stderr);
    return { r, uploads: front.uploads };
  } finally {
    await front.stop();
  }
}

R('a push whose chunk is cut before the registry kept any of it resumes in the same session', async () => {
  const { r, uploads } = await pushThrough('drop-upload-early');
  const patches = uploads.filter((u) => u.startsWith('PATCH'));
  assert.is(
    uploads.filter((u) => u === 'POST').length,
    2,
    `one session per blob (layer and config): ${uploads.join(', ')}`,
  );
  assert.ok(uploads.includes('GET'), `asked the registry for the upload status: ${uploads.join(', ')}`);
  assert.is(patches[1], patches[0], 'the cut chunk was sent again from where the registry stood');
  assert.match(r.stderr, 'resuming the upload of');
});

R(
  'a push whose chunk is cut halfway: a registry that cannot resume that session gets the blob in a new one',
  async () => {
    const { uploads } = await pushThrough('drop-upload');
    assert.ok(uploads.includes('GET'), 'asked first');
    assert.is(uploads.filter((u) => u === 'POST').length, 3, `a second session for the layer: ${uploads.join(', ')}`);
  },
);

R.run();
