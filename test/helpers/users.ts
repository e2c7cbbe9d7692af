/**
 * Unprivileged users for rootless tests and benchmarks, made by the (root) test set-up: with a
 * subordinate id range of 65536 (useradd's default on Debian), or with none.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function exists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureUser(name: string, subordinate: boolean, range = '300000-365535'): TestUser {
  if (!exists(name)) {
    execFileSync('useradd', [
      '-m',
      '-s',
      '/bin/sh',
      ...(subordinate ? [] : ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0']),
      name,
    ]);
  }
  const line = readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (subordinate && !line) execFileSync('usermod', ['--add-subuids', range, '--add-subgids', range, name]);
  const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, name]).toString().trim())) as [
    number,
    number,
  ];
  return { name, uid, gid, home: execFileSync('getent', ['passwd', name]).toString().split(':')[5] as string };
}

/** The first subordinate uid of `name`. */
export function subuidStart(name: string): number {
  return Number(
    readFileSync('/etc/subuid', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`))
      ?.split(':')[1],
  );
}

/**
 * End what a test's rootless commands left running for user `uid`: the pause process that keeps
 * the user's namespaces (SIGKILL), and its run directory /tmp/tsrun-<uid>.
 */
export function endRootlessSession(uid: number): void {
  const pid = `/tmp/tsrun-${uid}/pause.pid`;
  if (existsSync(pid)) {
    try {
      process.kill(Number(readFileSync(pid, 'utf8').trim()), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(`/tmp/tsrun-${uid}`, { recursive: true, force: true });
}
