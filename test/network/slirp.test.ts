/**
 * network/slirp.ts's contract, with a stand-in for slirp4netns first on PATH (a script that
 * writes its ready byte to fd 3 and then reads its exit fd, fd 4, until every writer is gone):
 * - `handReady` hands the ready fd and the lifeline to `onNetns` and resolves without waiting
 *   for slirp4netns; the ready byte arrives on the handed fd; closing the lifeline ends it, and
 *   this process reaps it (no zombie is left); `disconnectSlirp` leaves no file behind;
 * - a slirp4netns that exits before it is ready fails `connectSlirp` with its exit status and
 *   what it wrote to stderr, and leaves nothing behind; `slirpFailure` tells the same after a
 *   `handReady` hand-off.
 * Runs as root (the namespace is a real one: native newNetns).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectSlirp, disconnectSlirp, slirpFailure, type SlirpHandoff } from '../../src/network/slirp.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-slirp-'));
test.after(async () => {
  // (a failed assertion may leave an attachment: its namespace is a mount)
  for (const run of ['run-ok', 'run-fail', 'run-fail-hand']) await disconnectSlirp(ID, path.join(tmp, run));
  rmSync(tmp, { recursive: true, force: true });
});

const ID = 'a'.repeat(64);

function fakeSlirp(name: string, script: string): NodeJS.ProcessEnv {
  const bin = path.join(tmp, name);
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'slirp4netns'), `#!/bin/sh\n${script}\n`);
  chmodSync(path.join(bin, 'slirp4netns'), 0o755);
  return { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
}

/** Alive and not a zombie. */
const live = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};
/** Gone altogether: exited and reaped. */
const gone = (pid: number) => !existsSync(`/proc/${pid}`);

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('handReady: ready fd and lifeline handed over at once; the lifeline ends it; reaped; nothing left', async () => {
  const runDir = path.join(tmp, 'run-ok');
  // (no `exec cat`: tsrun tells slirp4netns by its name in /proc/PID/stat, and cat's would be cat)
  const env = fakeSlirp('ok', 'echo starting >&2\nprintf 1 >&3\nexec 3>&-\ncat <&4 >/dev/null');
  let handoff: SlirpHandoff | undefined;
  const info = await connectSlirp({ id: ID, runDir, ports: [], env, handReady: true, onNetns: (h) => (handoff = h) });
  assert.is(info.ip, '10.0.2.100');
  assert.ok(handoff?.ready !== undefined, 'the ready fd was handed over');
  const record = JSON.parse(readFileSync(path.join(runDir, 'slirp', `${ID}.json`), 'utf8')) as { pid: number };
  assert.is(await slirpFailure(ID, runDir), undefined, 'no failure while it runs');
  const b = Buffer.alloc(1);
  assert.is(readSync(handoff.ready, b), 1);
  assert.is(b.toString(), '1');
  closeSync(handoff.ready);
  assert.ok(live(record.pid), 'slirp4netns runs while its lifeline is open');
  closeSync(handoff.lifeline);
  await until('slirp4netns to exit and be reaped', () => gone(record.pid));
  await disconnectSlirp(ID, runDir);
  assert.equal(readdirSync(path.join(runDir, 'slirp')), []);
});

test('a slirp4netns that exits before it is ready: its status and stderr; nothing left', async () => {
  const env = fakeSlirp('fail', 'echo "tap0 is on fire" >&2\nexit 3');
  const runDir = path.join(tmp, 'run-fail');
  try {
    await connectSlirp({ id: ID, runDir, ports: [], env });
    assert.unreachable('connectSlirp resolved');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_ROOTLESS');
    assert.match((err as Error).message, 'slirp4netns exited (3): tap0 is on fire');
  }
  assert.equal(readdirSync(path.join(runDir, 'slirp')), []);

  // Handed over: the taker finds the ready fd at its end, and asks why.
  const handRun = path.join(tmp, 'run-fail-hand');
  let handoff: SlirpHandoff | undefined;
  await connectSlirp({ id: ID, runDir: handRun, ports: [], env, handReady: true, onNetns: (h) => (handoff = h) });
  assert.ok(handoff?.ready !== undefined);
  assert.is(readSync(handoff.ready, Buffer.alloc(1)), 0, 'end of file, no byte');
  closeSync(handoff.ready);
  closeSync(handoff.lifeline);
  const why = await slirpFailure(ID, handRun);
  assert.match(why?.message ?? '', 'slirp4netns exited (3): tap0 is on fire');
  await disconnectSlirp(ID, handRun);
  assert.equal(readdirSync(path.join(handRun, 'slirp')), []);
});

test.run();
