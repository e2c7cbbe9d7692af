/**
 * What the running kernel was built with, for tests whose expectations depend on it: its config
 * (/proc/config.gz, else /boot/config-RELEASE), else its symbols (/proc/kallsyms: an x32 kernel
 * has x32_sys_call / __x32_compat_sys_* functions, as a 32-bit-capable one has __ia32_sys_*).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { gunzipSync } from 'node:zlib';

function config(): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    try {
      return readFileSync(`/boot/config-${os.release()}`, 'utf8');
    } catch {
      return undefined;
    }
  }
}

/** Whether the kernel runs x32 system calls (CONFIG_X86_X32_ABI). */
export function kernelRunsX32(): boolean {
  const c = config();
  if (c !== undefined) return /^CONFIG_X86_X32_ABI=y$/m.test(c);
  return /^\S+ \S (x32_sys_call|__x32_compat_sys_\w+)$/m.test(readFileSync('/proc/kallsyms', 'latin1'));
}
