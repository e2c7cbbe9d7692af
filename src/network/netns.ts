/**
 * Named network namespaces, /run/netns/NAME, made and removed as `ip netns add` / `ip netns
 * delete` (iproute2's ip/ipnetns.c) do, so `ip netns list` and `ip netns exec` see tsrun's — but
 * without starting `ip` where that can be helped: each `ip` is a program start on a container's
 * set-up and tear-down (~3–6 ms here, docs/benchmarks.md).
 *
 * `ip netns add` makes /run/netns a shared mount the first time (a bind mount on itself), so a
 * namespace's mount propagates to mount namespaces made later; then it creates the file and
 * bind-mounts a new namespace on it. tsrun does the last two itself (the addon's newNetns: a
 * thread of ours unshares, bind-mounts, and ends) once /run/netns is a mount point, and lets `ip`
 * do all of it otherwise (a fresh boot's first container), so the propagation stays as ip
 * arranges it. Delete: unmount and unlink, as ip does.
 *
 * A namespace is made with its loopback up (the addon's thread sets it as it makes it; after
 * `ip netns add`, `ip link set lo up`): what CNI's loopback plugin did, one Go program start
 * fewer beside runc's create (~10 ms of CPU here, docs/benchmarks.md).
 *
 * Contract: `addNetns` leaves either the namespace, lo up, or nothing (no file); it fails with
 * ERR_CNI and ip's or the kernel's words. `deleteNetns` is idempotent (a missing namespace is
 * no error).
 */
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import { native } from '../native/index.js';
import { runProgram, which } from '../util/exec.js';

const DIR = '/run/netns';

export function netnsFile(name: string): string {
  return `${DIR}/${name}`;
}

/** `ip ARGS`; fails with ERR_CNI and a hint when iproute2 is missing. */
export async function ip(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  const bin = await which('ip', env);
  if (!bin)
    throw new TsrunError('ERR_CNI', 'making a network namespace: the `ip` command is missing', {
      hint: 'apt-get install iproute2',
    });
  return runProgram(bin, args);
}

/** Is /run/netns a mount point of this mount namespace (ip's set-up done)? */
function dirMounted(): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'latin1')
      .split('\n')
      .some((l) => l.split(' ')[4] === DIR);
  } catch {
    return false;
  }
}

export async function addNetns(name: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (dirMounted()) {
    const file = netnsFile(name);
    try {
      closeSync(openSync(file, 'wx', 0)); // O_CREAT | O_EXCL, as ip: a name is made once
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TsrunError('ERR_CNI', `making network namespace ${name}: cannot create ${file}: ${e.message}`);
    }
    try {
      native().newNetns(file);
      return;
    } catch (err) {
      rmSync(file, { force: true });
      throw new TsrunError('ERR_CNI', `making network namespace ${name}: ${(err as Error).message}`);
    }
  }
  const made = await ip(['netns', 'add', name], env);
  if (made.code !== 0) throw new TsrunError('ERR_CNI', `making network namespace ${name}: ${made.stderr.trim()}`);
  const up = await ip(['-n', name, 'link', 'set', 'lo', 'up'], env);
  if (up.code !== 0) {
    await deleteNetns(name, env).catch(() => {});
    throw new TsrunError('ERR_CNI', `making network namespace ${name}: setting lo up: ${up.stderr.trim()}`);
  }
}

export async function deleteNetns(name: string, env: NodeJS.ProcessEnv): Promise<void> {
  const file = netnsFile(name);
  try {
    native().umount(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code !== 'EINVAL') {
      // Not ours to judge (busy, another mount namespace's view): ip says what is wrong.
      const del = await ip(['netns', 'delete', name], env);
      if (del.code !== 0 && !/No such file/i.test(del.stderr))
        throw new TsrunError('ERR_CNI', `removing network namespace ${name}: ${del.stderr.trim()}`);
      return;
    }
    // EINVAL: not a mount point (a file left by a failed add): only the file is left to remove.
  }
  rmSync(file, { force: true });
}
