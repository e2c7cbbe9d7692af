/**
 * native-helpers/src/source.c (tsrun_source.node: the launcher reads the bundle and its caches
 * through mappings) and native.c's x32Abi and ia32Abi probes.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../src/native/index.js';
import { nativeBuild } from '../../src/util/project.js';
import { kernelRunsX32 } from '../helpers/kernel.js';

interface SourceAddon {
  readLatin1(fd: number): string | undefined;
  mapBytes(fd: number): Buffer | undefined;
}
const addon = createRequire(import.meta.url)(nativeBuild('tsrun_source.node')) as SourceAddon;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-source-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function withFd<T>(file: string, fn: (fd: number) => T): T {
  const fd = openSync(file, 'r');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

test('readLatin1 and mapBytes: the whole file, as a string and as bytes, the same as a read of it', () => {
  const file = path.join(tmp, 'bundle.cjs');
  // Every byte value once, then ~1 MB of text: latin1 is one char per byte.
  const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(1 << 20, 'abc\n')]);
  writeFileSync(file, bytes);
  const text = withFd(file, (fd) => addon.readLatin1(fd));
  assert.is(text, bytes.toString('latin1'));
  const mapped = withFd(file, (fd) => addon.mapBytes(fd));
  assert.ok(mapped && Buffer.compare(mapped, bytes) === 0);
});

test('a file replaced by rename: a mapped Buffer keeps the old contents (the launcher relies on it), a string is a copy', () => {
  const file = path.join(tmp, 'replaced.cache');
  writeFileSync(file, 'old contents');
  const bytes = withFd(file, (fd) => addon.mapBytes(fd));
  const text = withFd(file, (fd) => addon.readLatin1(fd));
  writeFileSync(`${file}.tmp`, 'new contents, longer');
  renameSync(`${file}.tmp`, file);
  assert.is(bytes?.toString(), 'old contents');
  assert.is(text, 'old contents');
  assert.is(readFileSync(file, 'latin1'), 'new contents, longer');
});

test('nothing to map: an empty file, a directory, a bad fd give undefined (the launcher reads instead)', () => {
  const empty = path.join(tmp, 'empty');
  writeFileSync(empty, '');
  assert.is(
    withFd(empty, (fd) => addon.readLatin1(fd)),
    undefined,
  );
  const dir = path.join(tmp, 'd');
  mkdirSync(dir);
  assert.is(
    withFd(dir, (fd) => addon.mapBytes(fd)),
    undefined,
  );
  assert.is(addon.mapBytes(-1), undefined);
});

test('x32Abi: what the kernel was built with (CONFIG_X86_X32_ABI), on x86-64 and under no seccomp filter', () => {
  const got = native().x32Abi();
  if (process.arch !== 'x64') return assert.is(got, null);
  const filtered = /^Seccomp:\s*2/m.test(readFileSync('/proc/self/status', 'utf8'));
  if (filtered) return assert.is(got, null);
  assert.is(got, kernelRunsX32());
});

test('ia32Abi: what a program making getpid through int 0x80 finds (runs, or dies of SIGSEGV)', () => {
  const got = native().ia32Abi();
  if (process.arch !== 'x64') return assert.is(got, null);
  // The same call from a separate static program, compiled here (g++ as CI's C compiler).
  const src = path.join(tmp, 'int80.c');
  writeFileSync(
    src,
    'int main(void) { long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); return r > 0 ? 0 : 1; }\n',
  );
  const prog = path.join(tmp, 'int80');
  execFileSync('g++', ['-x', 'c', '-static', '-O1', '-o', prog, src]);
  const r = spawnSync(prog);
  assert.ok(r.status === 0 || r.signal === 'SIGSEGV', `int80: ${r.status} ${r.signal}`);
  assert.is(got, r.status === 0);
  // Node is still whole after its child's fault: its own SIGSEGV handling was not disturbed.
  assert.is(native().ia32Abi(), got);
});

test.run();
