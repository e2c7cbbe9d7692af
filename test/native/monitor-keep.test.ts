/**
 * The fd 4 a caller gives tsrun-monitor (native-helpers/src/monitor.c, its contract; rootless,
 * slirp4netns's `--exit-fd` peer, network/slirp.ts): the monitor holds it for its whole life, so
 * the program on the other end (here a stand-in for slirp4netns: `cat` reading until end of file)
 * lives on after the caller closed its own copy, and ends once the monitor exits; the runtime the
 * monitor runs never gets it (a fake runtime records whether its fd 4 is open).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorBinary } from '../../src/runtime/monitor.js';
import { exitedWithin } from '../helpers/process.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-monitor-keep-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A runtime whose `create` notes an open fd 4 (in the state dir, its cwd) and leaves a `sleep` as init. */
const FAKE_RUNTIME = `#!/bin/sh
[ -e /proc/$$/fd/4 ] && echo open > fd4
pidfile=
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done
sleep 30 >/dev/null 2>&1 &
echo $! > "$pidfile"
`;

async function keepFdCase(keep: boolean): Promise<void> {
  const runtime = path.join(tmp, 'runtime');
  writeFileSync(runtime, FAKE_RUNTIME);
  chmodSync(runtime, 0o755);
  const state = path.join(tmp, keep ? 'state-keep' : 'state');
  mkdirSync(state);
  // The stand-in for slirp4netns: it reads its fd 4 until every copy of the other end is closed.
  const peer = spawn('sh', ['-c', 'exec cat <&4 >/dev/null'], {
    stdio: ['ignore', 'ignore', 'ignore', 'ignore', 'pipe'],
  });
  const lifeline = peer.stdio[4] as Socket;
  const m = spawn(
    monitorBinary(),
    [
      '--id',
      'keep-fd-test',
      '--bundle',
      tmp,
      '--state',
      state,
      '--runtime',
      runtime,
      '--runtime-root',
      path.join(tmp, 'rr'),
      '--log',
      path.join(tmp, 'ctr.log'),
      ...(keep ? ['--keep-fd4'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit', 'pipe', lifeline] },
  );
  lifeline.destroy();
  let sync = '';
  (m.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (sync += c.toString()));
  try {
    const end = Date.now() + 10_000;
    while (!sync.includes('\n') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.match(sync, /^ok \d+\n/);
    const pid = Number(/^ok (\d+)/.exec(sync)?.[1]);
    if (!keep) {
      // Not asked to keep it: an inherited fd 4 is closed like any other stray descriptor.
      assert.ok(await exitedWithin(peer, 5_000), 'the peer ends: the monitor did not keep fd 4');
      process.kill(pid, 'SIGKILL');
      assert.ok(await exitedWithin(m, 10_000), 'the monitor exits after the container');
      return;
    }
    assert.not.ok(await exitedWithin(peer, 500), 'the peer lives while the monitor does');
    assert.not.ok(existsSync(path.join(state, 'fd4')), 'the runtime got no fd 4');
    process.kill(pid, 'SIGKILL');
    assert.ok(await exitedWithin(m, 10_000), 'the monitor exits after the container');
    assert.ok(await exitedWithin(peer, 5_000), 'the peer ends once the monitor is gone');
  } finally {
    if (!(await exitedWithin(m, 0))) m.kill('SIGKILL');
    if (!(await exitedWithin(peer, 0))) peer.kill('SIGKILL');
  }
}

test('--keep-fd4: the monitor holds fd 4 until it exits and gives it to no child', () => keepFdCase(true));
test('without --keep-fd4 an inherited fd 4 is not held', () => keepFdCase(false));

test.run();
