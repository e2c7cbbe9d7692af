/**
 * native newNetns (native-helpers/src/native.c): a new network namespace kept by a bind mount on
 * a file, made without starting a program (rootless slirp4netns attachments, network/slirp.ts).
 * The namespace is new (only `lo` in it, another inode than ours), every thread of this process
 * stays in its own namespace, and a failure throws the errno with the syscall that failed.
 * Runs as root (the suite's user), as the rootless namespace's root would.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../../src/native/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-netns-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const threadNamespaces = () =>
  new Set(
    readdirSync('/proc/self/task').flatMap((t) => {
      try {
        return [readlinkSync(`/proc/self/task/${t}/ns/net`)];
      } catch {
        return []; // gone meanwhile
      }
    }),
  );

/**
 * The threads' namespaces once they are `want`, or as they are after 1 s: the thread newNetns
 * joined may still be listed in /proc/self/task for a moment after its exit (its tid is cleared
 * before the kernel releases it), in the namespace it made. A thread that really moved stays.
 */
function settledNamespaces(want: Set<string>): Set<string> {
  let now = threadNamespaces();
  for (let i = 0; i < 50 && [...now].some((n) => !want.has(n)); i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    now = threadNamespaces();
  }
  return now;
}

test('newNetns: a new namespace (its loopback up, nothing else) kept by the file; no thread of ours moves', () => {
  const file = path.join(tmp, 'a.netns');
  writeFileSync(file, '');
  const before = threadNamespaces();
  assert.is(before.size, 1);
  native().newNetns(file);
  try {
    assert.equal(settledNamespaces(before), before, 'every thread keeps its namespace');
    assert.is.not(statSync(file).ino, statSync('/proc/self/ns/net').ino, 'another namespace');
    const lines = execFileSync('nsenter', [`--net=${file}`, 'ip', '-o', 'link'], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.equal(
      lines.map((l) => l.split(':')[1]?.trim()),
      ['lo'],
    );
    assert.match(lines[0] ?? '', /<LOOPBACK,UP,LOWER_UP>/, 'its loopback is up');
  } finally {
    native().umount(file);
  }
  assert.is(statSync(file).size, 0, 'unmounted: the plain file again');
});

test('newNetns on a missing file: ENOENT from mount(2), and no namespace is left mounted', () => {
  const file = path.join(tmp, 'missing', 'b.netns');
  try {
    native().newNetns(file);
    assert.unreachable('it should throw');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    assert.is(e.code, 'ENOENT');
    assert.is(e.syscall, 'mount');
  }
  assert.not.match(execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' }), file);
});

test.run();
