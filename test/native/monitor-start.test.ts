/**
 * tsrun-monitor started as `run` starts it (src/runtime/monitor.ts: posix_spawn from the addon,
 * --daemon, --start, --wait-attach), with a fake runtime that logs what it is asked: one runtime
 * call creates and starts the container, the attached caller sees its very first byte, and the
 * runtime's container is deleted before the exit is recorded (native-helpers/src/monitor.c,
 * Life 6); with --foreground the runtime's own status is the exit, and nothing is deleted after.
 * Also the addon's spawnDaemon itself: fd 3 and no other descriptor reach the program.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { attach, spawnMonitor, type Attachment } from '../../src/runtime/monitor.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-monitor-start-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * `run --detach`: the init writes (once the runtime is gone: a shell may reap its own child) and exits; `delete`: logged with whether the exit file
 * exists yet (the monitor runs its runtime in the state dir).
 */
const FAKE_RUNTIME = (log: string) => `#!/bin/sh
echo "$*" >> ${log}
case " $* " in
*" delete "*) [ -e exit ] && echo "exit file already there" >> ${log}; exit 0 ;;
esac
pidfile=
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done
sh -c 'sleep 0.5; echo first; echo second >&2; exit 3' &
echo $! > "$pidfile"
`;

test('--start: one runtime call, the first byte seen by the attached caller, deleted before the exit is told', async () => {
  const f = startWithFake('c1', path.join(tmp, 'a'), FAKE_RUNTIME, false);
  const created = await f.created;
  const attachment = f.attachment();
  const { state, out } = f;
  assert.ok(created.pid > 0 && created.monitorPid > 0);
  assert.ok(attachment, 'attached before the runtime ran');
  assert.is(readFileSync(path.join(state, 'monitor.pid'), 'utf8'), String(created.monitorPid));
  assert.is(await attachment.exited, 3);
  attachment.close();
  assert.equal(out.sort(), ['err:second\n', 'out:first\n']);
  const calls = f.calls();
  assert.is(calls.length, 2, calls.join('\n'));
  assert.match(calls[0] ?? '', / run --detach --bundle .* --pid-file pid c1$/);
  assert.match(calls[1] ?? '', / delete --force c1$/);
  assert.ok(existsSync(path.join(state, 'exit')));
});

/**
 * `run` in the foreground (--foreground): the runtime writes the pid file as runc does (a temp
 * name renamed into place), stays for the process's life and exits with its status. Id `fails`:
 * an error on stderr and no pid file (runc's "executable file not found"); id `killed`: the
 * runtime dies of SIGKILL after the start, leaving its container to be deleted.
 */
const FAKE_FOREGROUND = (log: string) => `#!/bin/sh
echo "$*" >> ${log}
case " $* " in
*" delete "*) exit 0 ;;
*" fails ") echo 'runc run failed: exec: "nope": executable file not found in $PATH' >&2; exit 1 ;;
esac
id=
for a in "$@"; do id=$a; done
pidfile=
while [ $# -gt 0 ]; do [ "$1" = --pid-file ] && pidfile=$2; shift; done
sh -c 'sleep 0.3; echo first; echo second >&2; exit 5' &
child=$!
echo $child > ".$pidfile"
mv ".$pidfile" "$pidfile"
[ "$id" = killed ] && kill -9 $$
wait $child
`;

/**
 * A monitor with --start --wait-attach (and --foreground if asked) on the fake runtime `script`
 * makes in `dir`: the attached caller's output as `out:`/`err:` lines, the runtime's calls.
 */
function startWithFake(id: string, dir: string, script: (log: string) => string, foreground: boolean) {
  const state = path.join(dir, 'state');
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, 'runtime.calls');
  const runtime = path.join(dir, 'fake-runtime');
  writeFileSync(runtime, script(log));
  chmodSync(runtime, 0o755);
  let attachment: Attachment | undefined;
  const out: string[] = [];
  const created = spawnMonitor({
    id,
    bundle: dir,
    state,
    runtimePath: runtime,
    runtimeRoot: path.join(dir, 'root'),
    log: path.join(dir, 'ctr.log'),
    tty: false,
    stdin: false,
    exitCommand: ['/bin/true'],
    start: true,
    foreground,
    attachFirst: async () => {
      attachment = await attach(path.join(state, 'attach.sock'));
      attachment.onStdout((d) => out.push(`out:${d.toString()}`));
      attachment.onStderr((d) => out.push(`err:${d.toString()}`));
    },
  });
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  return { created, attachment: () => attachment, out, calls, state };
}

test('--foreground: one runtime process, `run` without --detach, its status is the exit code, no delete', async () => {
  const f = startWithFake('c2', path.join(tmp, 'fg'), FAKE_FOREGROUND, true);
  const created = await f.created;
  const a = f.attachment();
  assert.ok(a, 'attached before any output was read');
  // The pid is the process's (from the renamed pid file), not the runtime's.
  assert.is(readFileSync(path.join(f.state, 'pid'), 'utf8').trim(), String(created.pid));
  assert.is(await a.exited, 5);
  a.close();
  assert.equal(f.out.sort(), ['err:second\n', 'out:first\n']);
  const calls = f.calls();
  assert.is(calls.length, 1, calls.join('\n'));
  assert.match(calls[0] ?? '', / run --bundle .* --pid-file pid c2$/);
  assert.is(JSON.parse(readFileSync(path.join(f.state, 'exit'), 'utf8')).exitCode, 5);
});

test('--foreground: a runtime that exits before the pid file failed: its last line is the error', async () => {
  const f = startWithFake('fails', path.join(tmp, 'fg-fails'), FAKE_FOREGROUND, true);
  try {
    await f.created;
    assert.unreachable('the monitor must report the failure');
  } catch (e) {
    assert.match((e as Error).message, /executable file not found/);
    assert.is((e as { detail?: { exitCode?: number } }).detail?.exitCode, 127);
  }
});

test('--foreground: a runtime killed by a signal is recorded as 128+N and its container deleted', async () => {
  const f = startWithFake('killed', path.join(tmp, 'fg-killed'), FAKE_FOREGROUND, true);
  await f.created;
  const a = f.attachment();
  assert.ok(a);
  assert.is(await a.exited, 137);
  a.close();
  const calls = f.calls();
  assert.is(calls.length, 2, calls.join('\n'));
  assert.match(calls[1] ?? '', / delete --force killed$/);
});

test("spawnDaemon: the program gets stdio and fd 3 (our pipe), none of Node's files; reap gives its status", async () => {
  const errFile = path.join(tmp, 'err');
  const errFd = openSync(errFile, 'w');
  const other = openSync(path.join(tmp, 'other'), 'w');
  let s: { pid: number; syncFd: number };
  try {
    s = native().spawnDaemon('/bin/sh', ['sh', '-c', 'ls /proc/self/fd >&3; echo to-stderr >&2; exit 4'], errFd);
  } finally {
    closeSync(errFd);
    closeSync(other);
  }
  const text = await new Promise<string>((resolve) => {
    let t = '';
    const sock = new net.Socket({ fd: s.syncFd, readable: true, writable: false });
    sock.on('data', (d: Buffer) => (t += d.toString()));
    sock.on('end', () => {
      sock.destroy();
      resolve(t);
    });
  });
  const status = native().reap(s.pid);
  assert.is(status >> 8, 4);
  const fds = text.trim().split('\n').map(Number);
  assert.equal(
    fds.filter((fd) => fd <= 3),
    [0, 1, 2, 3],
  );
  assert.not.ok(fds.includes(other) || fds.includes(errFd), text);
  assert.is(readFileSync(errFile, 'utf8'), 'to-stderr\n');
});

test.run();
