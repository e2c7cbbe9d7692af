/**
 * The addon's pipe(), spawnDaemon's `keep` fds and reap's `nohang` (native-helpers/src/spawn.c),
 * as network/slirp.ts uses them for slirp4netns: a pipe whose ends are close-on-exec, its read
 * end given to a program as fd 4 (and another as fd 5) and nothing else; a child that still runs
 * reaps as -1 without blocking, and once it has exited as its wait status.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-spawn-keep-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Flags of `fd` in this process, from /proc (FD_CLOEXEC is 02000000 in `flags:`, octal). */
const cloexec = (fd: number) =>
  (parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8) & 0o2000000) !== 0;

async function reapWithin(pid: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    const st = native().reap(pid, true);
    if (st !== -1 || Date.now() > end) return st;
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('pipe(): two fds, read and write ends of one pipe, both close-on-exec', () => {
  const [r, w] = native().pipe();
  try {
    assert.ok(fstatSync(r).isFIFO() && fstatSync(w).isFIFO());
    assert.ok(cloexec(r) && cloexec(w));
    writeSync(w, 'x');
    const b = Buffer.alloc(1);
    assert.is(readSync(r, b), 1);
    assert.is(b.toString(), 'x');
  } finally {
    closeSync(r);
    closeSync(w);
  }
});

test("spawnDaemon(keep[]): fds 4 and 5 are copies of the caller's, a negative slot stays closed", async () => {
  const [r4, w4] = native().pipe();
  const [r5, w5] = native().pipe();
  const errFd = openSync(path.join(tmp, 'err'), 'w');
  let s: { pid: number; syncFd: number };
  try {
    // fd 4: the read end of one pipe (what it reads names it), fd 5: the write end of another,
    // fd 6: asked to stay closed.
    s = native().spawnDaemon(
      '/bin/sh',
      ['sh', '-c', 'read x <&4; echo "got $x" >&5; [ -e /proc/self/fd/6 ] && echo six >&5; ls /proc/self/fd >&5'],
      errFd,
      [r4, w5, -1],
    );
  } finally {
    closeSync(errFd);
    closeSync(r4);
    closeSync(w5);
  }
  writeSync(w4, 'four\n');
  closeSync(w4);
  assert.is((await reapWithin(s.pid, 10_000)) >> 8, 0);
  closeSync(s.syncFd);
  const out = readFileSync(r5, 'utf8');
  closeSync(r5);
  const [first, ...fds] = out.trim().split('\n');
  assert.is(first, 'got four');
  // (ls's own directory fd is its 3rd, reading /proc/self/fd: any number above 5 that is not 6)
  assert.ok(fds.map(Number).includes(4) && fds.map(Number).includes(5), out);
  assert.not.match(out, /^six$/m);
});

test('reap(pid, true): -1 while the child runs, its wait status once it has exited', async () => {
  const [r, w] = native().pipe();
  const errFd = openSync('/dev/null', 'w');
  let s: { pid: number; syncFd: number };
  try {
    s = native().spawnDaemon('/bin/sh', ['sh', '-c', 'read x <&4; exit 7'], errFd, r);
  } finally {
    closeSync(errFd);
    closeSync(r);
  }
  closeSync(s.syncFd);
  assert.is(native().reap(s.pid, true), -1, 'still waiting on its fd 4');
  closeSync(w); // end of file: `read` returns and the program exits
  assert.is((await reapWithin(s.pid, 10_000)) >> 8, 7);
  assert.throws(() => native().reap(s.pid, true), /ECHILD/);
});

test.run();
