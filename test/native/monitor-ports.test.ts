/**
 * tsrun-monitor's held ports (native-helpers/src/monitor.c, Life 2), with a fake runtime: a
 * published TCP port is held from the monitor's start, so no other program can take it, and a
 * connection that reaches the held socket (made before the container's DNAT rule exists; the
 * network set-up runs beside `runtime create`) is reset at once, during the create and after it.
 * Seen under load: the quick start's `curl` retry loop connected in that window and hung for good
 * in the socket's backlog.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorBinary } from '../../src/runtime/monitor.js';
import { freePort } from '../helpers/net.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-monitor-ports-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A runtime whose `create` takes 1.5 s, then leaves a `sleep` as the container's init. */
const FAKE_RUNTIME = `#!/bin/sh
pidfile=
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done
sleep 1.5
sleep 30 >/dev/null 2>&1 &
echo $! > "$pidfile"
`;

/** Connect and say how the connection ended, and after how long: it must not hang. */
function tryConnect(port: number): Promise<{ outcome: string; ms: number }> {
  const t = Date.now();
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (outcome: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ outcome, ms: Date.now() - t });
    };
    const timer = setTimeout(() => done('hung'), 3000);
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
    s.on('end', () => done('end'));
  });
}

test('a connection to a held port is reset at once, during the create and after it; the port stays held', async () => {
  const runtime = path.join(tmp, 'runtime');
  writeFileSync(runtime, FAKE_RUNTIME);
  chmodSync(runtime, 0o755);
  const state = path.join(tmp, 'state');
  mkdirSync(state);
  const port = await freePort();
  const m = spawn(
    monitorBinary(),
    [
      '--id',
      'held-ports-test',
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
      '--publish',
      `tcp:127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
  );
  let sync = '';
  (m.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (sync += c.toString()));
  try {
    await new Promise((r) => setTimeout(r, 400));
    // During the fake create: the port is held, and a connection to it is refused, not kept.
    const taken = await new Promise<string>((resolve) => {
      const srv = net.createServer();
      srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve('bound')));
    });
    assert.is(taken, 'EADDRINUSE');
    assert.is(sync, '', 'the fake create is still running');
    const during = await tryConnect(port);
    assert.is(during.outcome, 'ECONNRESET', JSON.stringify(during));
    assert.ok(during.ms < 1000, JSON.stringify(during));
    // After it: the monitor's main loop refuses too.
    const end = Date.now() + 5000;
    while (!sync.includes('\n') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.match(sync, /^ok \d+\n/);
    const after = await tryConnect(port);
    assert.is(after.outcome, 'ECONNRESET', JSON.stringify(after));
  } finally {
    const pid = Number(/^ok (\d+)/.exec(sync)?.[1] ?? 0);
    if (pid > 0) process.kill(pid, 'SIGKILL');
    await new Promise((r) => (m.exitCode !== null ? r(null) : m.once('exit', r)));
  }
  assert.not.match(readFileSync(path.join(state, 'exit'), 'utf8'), /"exitCode":0\b/);
});

test.run();
