/**
 * tsrun-monitor --ready-fd5 (native-helpers/src/ready.c; rootless, slirp4netns's ready fd,
 * network/slirp.ts): with --start the runtime (here a fake one that notes each run in the state
 * dir, its cwd) runs only once a byte arrives on fd 5, so the container's process never starts
 * before its network is up; if the pipe ends without a byte the monitor reports "err ..." and the
 * runtime never runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { monitorBinary } from '../../src/runtime/monitor.js';
import { exitedWithin } from '../helpers/process.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-monitor-ready-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** `run` notes itself and leaves a `sleep` as the container's init; `delete` does nothing. */
const FAKE_RUNTIME = `#!/bin/sh
case " $* " in *" delete "*) exit 0;; esac
echo "$@" >> ran
pidfile=
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done
sleep 30 >/dev/null 2>&1 &
echo $! > "$pidfile"
`;

/** A monitor with --start --ready-fd5, fd 5 the read end of a pipe whose write end is returned. */
function startMonitor(name: string): { m: ChildProcess; ready: number; state: string; sync: () => string } {
  const runtime = path.join(tmp, 'runtime');
  writeFileSync(runtime, FAKE_RUNTIME);
  chmodSync(runtime, 0o755);
  const state = path.join(tmp, name);
  mkdirSync(state);
  const [r, w] = native().pipe();
  const m = spawn(
    monitorBinary(),
    [
      ...['--id', name, '--bundle', tmp, '--state', state, '--runtime', runtime],
      ...['--runtime-root', path.join(tmp, 'rr'), '--log', path.join(tmp, `${name}.log`)],
      '--start',
      '--ready-fd5',
    ],
    { stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'ignore', r] },
  );
  closeSync(r);
  let text = '';
  (m.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (text += c.toString()));
  return { m, ready: w, state, sync: () => text };
}

async function lineWithin(sync: () => string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  while (!sync().includes('\n') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return sync();
}

test('--ready-fd5: the runtime runs only once fd 5 yields a byte', async () => {
  const { m, ready, state, sync } = startMonitor('ready');
  let readyOpen = true;
  try {
    assert.is(await lineWithin(sync, 400), '', 'no report while the network is not up');
    assert.not.ok(existsSync(path.join(state, 'ran')), 'the runtime has not run');
    writeSync(ready, '1');
    closeSync(ready);
    readyOpen = false;
    const line = await lineWithin(sync, 10_000);
    assert.match(line, /^ok \d+\n/);
    assert.ok(existsSync(path.join(state, 'ran')), 'the runtime ran');
    process.kill(Number(/^ok (\d+)/.exec(line)?.[1]), 'SIGKILL');
    assert.ok(await exitedWithin(m, 10_000), 'the monitor exits after the container');
  } finally {
    if (readyOpen) closeSync(ready);
    if (!(await exitedWithin(m, 0))) m.kill('SIGKILL');
  }
});

test('--ready-fd5: fd 5 ending without a byte is an error, and nothing runs', async () => {
  const { m, ready, state, sync } = startMonitor('not-ready');
  try {
    closeSync(ready);
    assert.match(await lineWithin(sync, 10_000), /^err the network did not come up/);
    assert.ok(await exitedWithin(m, 10_000), 'the monitor exits');
    assert.is(m.exitCode, 1);
    assert.not.ok(existsSync(path.join(state, 'ran')), 'the runtime never ran');
  } finally {
    if (!(await exitedWithin(m, 0))) m.kill('SIGKILL');
  }
});

test.run();
