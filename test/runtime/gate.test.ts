/**
 * The network gate (src/runtime/gate.ts, native-helpers/src/ready.c): the spec's hook is set,
 * replaced and removed without touching other hooks, and the hook program (`tsrun-monitor
 * --network-gate FIFO`, as runc runs it: the container's state on stdin) returns 0 after tsrun's
 * byte, and fails at once when tsrun closes the gate without one — before or after the hook opened
 * the FIFO — so a container whose network failed never runs; without a FIFO at all (a bundle run
 * by hand) it returns 0.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gateHook, openGate, withGateHook } from '../../src/runtime/gate.js';
import { monitorBinary } from '../../src/runtime/monitor.js';
import type { Spec } from '../../src/spec/types.js';

const G = suite('network gate');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-gate-'));
G.after(() => rmSync(dir, { recursive: true, force: true }));

const other = { path: '/usr/bin/other-hook', args: ['other-hook', '--x'] };

G('withGateHook: added beside other createRuntime hooks, replaced, removed; an empty hooks object goes', () => {
  const spec = { hooks: { createRuntime: [other] } } as unknown as Spec;
  withGateHook(spec, gateHook('/run/a'));
  assert.equal(spec.hooks?.createRuntime?.length, 2);
  withGateHook(spec, gateHook('/run/b'));
  assert.equal(
    spec.hooks?.createRuntime?.map((h) => h.args?.[2]),
    [undefined, '/run/b/network-gate'],
  );
  assert.equal(spec.hooks?.createRuntime?.[0], other);
  withGateHook(spec, undefined);
  assert.equal(spec.hooks, { createRuntime: [other] });
  const bare = {} as Spec;
  withGateHook(bare, gateHook('/run/a'));
  assert.is(bare.hooks?.createRuntime?.[0]?.path, monitorBinary());
  assert.ok((bare.hooks?.createRuntime?.[0]?.timeout ?? 0) > 0);
  withGateHook(bare, undefined);
  assert.not.ok('hooks' in bare);
});

/** Run the hook as runc does (state JSON on stdin); resolves with its status, stderr and time. */
function hook(fifo: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  const p = spawn(monitorBinary(), ['--network-gate', fifo], { stdio: ['pipe', 'ignore', 'pipe'] });
  p.stdin.end('{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/"}');
  let stderr = '';
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, stderr, ms: Date.now() - t0 })));
}

G('the hook returns 0 once the gate says ready, written before or after it opened the FIFO', async () => {
  for (const early of [true, false]) {
    const state = mkdtempSync(path.join(dir, 's-'));
    const gate = openGate(state);
    if (early) gate.ready();
    const waiting = hook(gate.fifo);
    if (!early) setTimeout(() => gate.ready(), 150);
    const r = await waiting;
    gate.close();
    assert.is(r.code, 0, r.stderr);
    if (!early) assert.ok(r.ms >= 140, `returned after ${r.ms} ms, before the byte`);
  }
});

G('the hook fails at once when the gate closes without a byte, and when it was closed before it ran', async () => {
  const state = mkdtempSync(path.join(dir, 's-'));
  const gate = openGate(state);
  const waiting = hook(gate.fifo);
  setTimeout(() => gate.close(), 150);
  const r = await waiting;
  assert.is(r.code, 1);
  assert.match(r.stderr, /network was not set up/);
  // Closed before the hook ran (tsrun died or gave up): no wait for a writer that never comes.
  const late = await hook(gate.fifo);
  assert.is(late.code, 1);
  assert.ok(late.ms < 5000, `${late.ms} ms`);
  // A second gate for the same state dir replaces the FIFO.
  const again = openGate(state);
  assert.ok(existsSync(again.fifo));
  again.ready();
  assert.is((await hook(again.fifo)).code, 0);
  again.close();
});

G('no FIFO (the bundle run by hand, as --explain shows it): the hook lets the container run', async () => {
  const r = await hook(path.join(dir, 'no-such-state', 'network-gate'));
  assert.is(r.code, 0, r.stderr);
});

G.run();
