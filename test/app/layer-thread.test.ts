/**
 * A layer unpacked in a worker thread (app/layer-thread.ts, what `pull` uses for large layers)
 * must give exactly what the main-thread unpacker gives: the same tree (owners, modes, times,
 * xattrs, whiteouts, links), the same diff id, the same warnings, and the same errors (codes,
 * hints, and a hostile layer still writes nothing outside its root).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { unpackInWorker } from '../../src/app/layer-thread.js';
import { TsrunError } from '../../src/errors.js';
import { decompress } from '../../src/layers/compression.js';
import { unpackTar, type UnpackOptions } from '../../src/layers/unpack.js';
import { native } from '../../src/native/index.js';
import { fingerprintOf } from '../../src/store/verify.js';
import { makeTar, type TarEntrySpec } from '../helpers/tar-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-layer-thread-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const ROOT: UnpackOptions = { preserveOwnership: true, overlayXattrPrefix: 'trusted.overlay.', canMknod: true };

function fresh(): { dest: string; sentinel: string } {
  const base = path.join(tmp, `case${n++}`);
  const dest = path.join(base, 'dest');
  const sentinel = path.join(base, 'sentinel');
  mkdirSync(dest, { recursive: true });
  mkdirSync(sentinel);
  return { dest, sentinel };
}

/** The gzip blob as a network-like stream: odd-sized chunks. */
function blobStream(gz: Buffer, size = 4093): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < gz.length; i += size) parts.push(gz.subarray(i, i + size));
  return Readable.from(parts);
}

async function both(entries: TarEntrySpec[], opts = ROOT) {
  const tar = makeTar(entries);
  const gz = gzipSync(tar);
  const main = { ...fresh(), warnings: [] as string[], result: undefined as any, error: undefined as any };
  const thread = { ...fresh(), warnings: [] as string[], result: undefined as any, error: undefined as any };
  try {
    main.result = await unpackTar(decompress(blobStream(gz), 'gzip'), main.dest, {
      ...opts,
      onWarning: (w) => main.warnings.push(w),
    });
  } catch (err) {
    main.error = err;
  }
  try {
    thread.result = await unpackInWorker(blobStream(gz), 'gzip', thread.dest, {
      ...opts,
      onWarning: (w) => thread.warnings.push(w),
    }).result;
  } catch (err) {
    thread.error = err;
  }
  return { tar, main, thread };
}

/** Every entry's type, mode, owner, size, mtime, link target, rdev and xattrs, by relative path. */
function tree(root: string, listed: Set<string>): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const st = lstatSync(abs);
    const xs = native()
      .llistxattr(abs)
      .sort()
      .map((x) => `${x}=${native().lgetxattr(abs, x)?.toString('hex')}`);
    const extra = st.isSymbolicLink() ? readlinkSync(abs) : st.isFile() ? readFileSync(abs, 'hex') : '';
    // Parents the tar does not list and whiteouts get the time of the unpack, not the layer's.
    const mtime = listed.has(rel) ? st.mtimeMs : '';
    out.push(
      `${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.rdev} ${st.nlink} ${mtime} ${extra} ${xs.join(',')}`,
    );
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk('');
  return out;
}

test('the thread makes the tree, diff id, sizes and warnings the main-thread unpacker makes', async () => {
  const cap = Buffer.from('0100000200000080000000000000000000000000', 'hex');
  const entries: TarEntrySpec[] = [
    { name: 'bin/su', content: 'su', mode: 0o4755 },
    { name: 'home/u/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750, mtime: 1600000000 },
    { name: 'home/u/f', content: 'f'.repeat(100_000), uid: 1000, gid: 1000, mode: 0o640, mtime: 1500000000 },
    { name: 'home/big', content: 'b', uid: 3000000, gid: 3000001 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'abs', type: 'symlink', linkname: '/etc/os-release' },
    { name: 'bin/su2', type: 'hardlink', linkname: 'bin/su' },
    { name: 'dev/zero', type: 'char', devmajor: 1, devminor: 5, mode: 0o666 },
    { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    { name: 'bin/ping', content: 'p', xattrs: { 'security.capability': cap, 'user.note': 'hi' } },
    { name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.redirect': '/etc' } },
    { name: 'etc/.wh.gone', content: '' },
    { name: 'var/lib/.wh..wh..opq', content: '' },
    { name: 'var/lib/kept', content: 'k' },
    { name: `deep/${'n'.repeat(150)}`, content: 'long' },
    ...Array.from({ length: 300 }, (_, i) => ({ name: `many/f${i}`, content: `${i}`, mode: 0o600 + (i % 8) })),
  ];
  const { tar, main, thread } = await both(entries);
  assert.is(main.error, undefined, String(main.error));
  assert.is(thread.error, undefined, String(thread.error));
  assert.is(thread.result.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
  for (const k of ['diffId', 'tarSize', 'unpackedSize', 'entries'])
    assert.is(thread.result[k], main.result[k], `${k} is the same`);
  const listed = new Set(entries.map((e) => e.name.replace(/\/$/, '')));
  assert.equal(tree(thread.dest, listed), tree(main.dest, listed));
  assert.equal(thread.warnings, main.warnings);
  assert.match(thread.warnings.join(), 'trusted.overlay.redirect', 'the warning crossed the thread');
  // The fingerprint the thread made is the one the store computes for the finished tree.
  assert.equal(thread.result.fingerprint, await fingerprintOf(thread.dest));
  assert.equal(thread.result.fingerprint, await fingerprintOf(main.dest));
});

test('a hostile layer fails in the thread as on the main thread: same code and hint, nothing written outside', async () => {
  const { main, thread } = await both([
    { name: 'x', type: 'symlink', linkname: '../sentinel' },
    { name: 'x/owned', content: 'pwned' },
  ]);
  assert.ok(main.error instanceof TsrunError);
  assert.ok(thread.error instanceof TsrunError, `a TsrunError, not ${thread.error}`);
  assert.is(thread.error.code, 'ERR_UNSAFE_LAYER');
  assert.is(thread.error.message, main.error.message);
  assert.is(thread.error.hint, main.error.hint);
  assert.equal(readdirSync(thread.sentinel), []);
});

test('a corrupt blob fails in the thread with the decompressor error the main thread gets', async () => {
  const gz = gzipSync(makeTar([{ name: 'f', content: randomBytes(50_000) }]));
  const bad = Buffer.from(gz);
  bad.fill(0x55, 40, 200);
  const mainDest = fresh().dest;
  const threadDest = fresh().dest;
  const mainErr = await unpackTar(decompress(blobStream(bad), 'gzip'), mainDest, ROOT).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  const threadErr = await unpackInWorker(blobStream(bad), 'gzip', threadDest, ROOT).result.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  assert.ok(mainErr && threadErr);
  assert.is(threadErr.code, mainErr.code);
  assert.is(threadErr.message, mainErr.message);
});

test('an error of the source stops the thread and is the result', async () => {
  const { dest } = fresh();
  const gz = gzipSync(makeTar(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, content: 'y'.repeat(10_000) }))));
  const source = new PassThrough();
  const t = unpackInWorker(source, 'gzip', dest, ROOT);
  source.write(gz.subarray(0, 2000));
  setTimeout(() => source.destroy(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })), 50);
  const err = await t.result.then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  assert.is(err?.code, 'ECONNRESET');
  // The thread has exited: the caller may remove the directory, and nothing appears in it after.
  rmSync(dest, { recursive: true, force: true });
  await new Promise((r) => setTimeout(r, 100));
  assert.not.ok(readdirSync(path.dirname(dest)).includes('dest'));
});

test('layers share the workers: five at once each get their own tree, diff id and fingerprint', async () => {
  const tars = Array.from({ length: 5 }, (_, k) =>
    makeTar(
      Array.from({ length: 40 + k }, (_, i) => ({ name: `l${k}/d${i % 7}/f${i}`, content: `${k}:${i}`.repeat(i) })),
    ),
  );
  const dests = tars.map(() => fresh().dest);
  const results = await Promise.all(
    tars.map((tar, k) => unpackInWorker(blobStream(gzipSync(tar), 1000), 'gzip', dests[k] as string, ROOT).result),
  );
  for (const [k, r] of results.entries()) {
    assert.is(
      r.diffId,
      `sha256:${createHash('sha256')
        .update(tars[k] as Buffer)
        .digest('hex')}`,
    );
    assert.is(r.entries, 40 + k);
    assert.equal(r.fingerprint, await fingerprintOf(dests[k] as string));
    assert.equal(readdirSync(dests[k] as string), [`l${k}`]);
  }
});

test('stopping one layer leaves the others in the same worker unharmed', async () => {
  const big = (k: number) =>
    gzipSync(makeTar(Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, content: randomBytes(2000 + k) }))));
  // More layers than workers (at most one per core, ≤ 3): two of them share one.
  const blobs = [big(0), big(1), big(2), big(3)];
  const sources = blobs.map(() => new PassThrough());
  const dests = blobs.map(() => fresh().dest);
  const runs = blobs.map((_, k) => unpackInWorker(sources[k] as PassThrough, 'gzip', dests[k] as string, ROOT));
  for (const [k, b] of blobs.entries()) (sources[k] as PassThrough).write(b.subarray(0, 5000));
  runs[1]?.abort(new Error('ingest file failed'));
  for (const [k, b] of blobs.entries()) (sources[k] as PassThrough).end(b.subarray(5000));
  const settled = await Promise.allSettled(runs.map((r) => r.result));
  assert.is(settled[1]?.status, 'rejected');
  assert.is((settled[1] as PromiseRejectedResult).reason.message, 'ingest file failed');
  for (const k of [0, 2, 3]) {
    assert.is(settled[k]?.status, 'fulfilled', String((settled[k] as PromiseRejectedResult).reason));
    assert.is(readdirSync(dests[k] as string).length, 200);
  }
  // The stopped layer's directory is the caller's again: removable, and nothing is written after.
  rmSync(dests[1] as string, { recursive: true, force: true });
  await new Promise((r) => setTimeout(r, 100));
  assert.not.ok(readdirSync(path.dirname(dests[1] as string)).includes('dest'));
});

test.run();
