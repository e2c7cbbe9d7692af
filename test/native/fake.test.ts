/**
 * The native seam with a fake (src/native/index.ts `withNative`): the logic around flock(2) and
 * mount(2) tested without the kernel — a lock held elsewhere is waited for by polling (never by
 * blocking the event loop) and released after `fn`, also when `fn` throws; a mount plan that
 * fails half-way takes back what it mounted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFileLock, withFileLockIfFree, withNative, type Native } from '../../src/native/index.js';
import { mountAll } from '../../src/snapshot/overlay.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-native-fake-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A Native whose every call is recorded; the methods a test needs are overridden. */
function fake(over: Partial<Native>): { n: Native; calls: string[] } {
  const calls: string[] = [];
  const n = new Proxy(over as Native, {
    get: (t, k: string) =>
      (t as unknown as Record<string, unknown>)[k] ??
      (() => {
        throw new Error(`unexpected native call ${k}`);
      }),
  });
  return { n, calls };
}

test('withFileLock polls while the lock is held elsewhere, then releases it, also when fn throws', async () => {
  let busy = 3;
  const { n, calls } = fake({});
  n.flock = (_fd, op, nonblock) => {
    calls.push(`${op}${nonblock ? '-nb' : ''}`);
    if (op !== 'un' && busy-- > 0) return false;
    return true;
  };
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const got = await withNative(n, () => withFileLock(path.join(tmp, 'a.lock'), 'ex', async () => 'done'));
  clearInterval(timer);
  assert.is(got, 'done');
  assert.equal(calls, ['ex-nb', 'ex-nb', 'ex-nb', 'ex-nb', 'un']);
  assert.ok(ticks > 0, 'the event loop ran while waiting');
  calls.length = 0;
  busy = 0;
  await withNative(n, () =>
    withFileLock(path.join(tmp, 'a.lock'), 'sh', async () => {
      throw new Error('boom');
    }),
  ).catch(() => undefined);
  assert.equal(calls, ['sh-nb', 'un'], 'released after a failure');
});

test('withFileLockIfFree never waits: fn does not run when the lock is held', async () => {
  const { n } = fake({ flock: () => false });
  let ran = false;
  const r = await withNative(n, () =>
    withFileLockIfFree(path.join(tmp, 'b.lock'), 'ex', async () => {
      ran = true;
    }),
  );
  assert.equal(r, { held: false });
  assert.not.ok(ran);
});

test('mountAll takes back what it mounted when a later mount fails', async () => {
  const { n, calls } = fake({});
  n.mount = (source, target) => {
    calls.push(`mount ${source} ${target}`);
    if (target.endsWith('/second')) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
  };
  n.umount = (target) => {
    calls.push(`umount ${target}`);
  };
  const m = (name: string) => ({
    type: 'overlay',
    source: 'overlay',
    target: path.join(tmp, name),
    options: [] as string[],
  });
  const err = await withNative(n, () => mountAll([m('first'), m('second')])).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err, 'the failure is reported');
  assert.equal(calls, [`mount overlay ${tmp}/first`, `mount overlay ${tmp}/second`, `umount ${tmp}/first`]);
});

test.run();
