/**
 * A RUN step: the command runs as a container over the step's root (step-root.ts), through the
 * same pieces `tsrun run` uses — the spec option functions, the runtime boundary, the bridge —
 * but in the foreground (`runtime run`), with its output streamed to the build's output and no
 * monitor: the build process owns it, as buildah's `run` does.
 *
 * What the runtime leaves in the root is not part of the step: runc creates missing mount points
 * (/proc, /dev, /sys, /etc/hosts, /etc/resolv.conf, /etc/hostname); those it created, if still
 * empty, are removed from the upper directory so they do not end up in the layer.
 * Contract: returns the command's exit status; afterwards no runtime container, network
 * namespace or attachment is left, whatever happened (abort included).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import type { ContainerConfig } from '../oci/schemas.js';
import { defaultSpec, serializeSpec } from '../spec/defaults.js';
import type { Mount as SpecMount } from '../spec/types.js';
import { applyOpts, withCwd, withEtcFiles, withHostname, withRootless, withUser } from '../spec/options.js';
import { withEnv } from '../spec/env.js';
import { resolveUser } from '../spec/user.js';
import type { Reporter } from '../events.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import { readFileInRoot } from '../snapshot/rootfs-copy.js';
import { attachNetwork, detachNetwork, namespacePath, writeEtcFiles } from '../network/attach.js';
import { withHostNetwork, withNetworkNamespace } from '../spec/network.js';
import type { StepRoot } from './step-root.js';
import { native } from '../native/index.js';
import { singleIdNamespace } from '../rootless/namespace.js';
import { extraHostsLines, withStepLimits, type StepLimits } from './run-options.js';

export type BuildNetwork = 'bridge' | 'host' | 'none';

export interface RunStepOptions {
  /** The runtime container's id (64 hex; its first 12 name the network namespace). */
  id: string;
  runtime: OciRuntime;
  root: StepRoot;
  /** The store root (owner of the network attachment). */
  storeRoot: string;
  /** The store's volatile directory (rootless: where slirp4netns keeps its namespace). */
  runDir: string;
  /** Inside the rootless namespace: slirp4netns for the default network, runc's rootless config. */
  rootless: boolean;
  argv: string[];
  config: ContainerConfig;
  /** Build arguments in scope, as KEY=VALUE (ENV wins over them, as in Docker). */
  argEnv: string[];
  network: BuildNetwork;
  callerEnv: NodeJS.ProcessEnv;
  /** RUN --mount's mounts, ready for the spec (build/mounts.ts; sources prepared by the caller). */
  extraMounts?: SpecMount[];
  /** `build --add-host`, `--shm-size`, `--ulimit`. */
  limits?: StepLimits;
  /** Receives the command's stdout and stderr as they come. */
  output: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /** Told of the name files and the network attachment (src/events.ts). */
  reporter?: Reporter;
}

/** Mount points the runtime creates when missing (their parents included). */
const RUNTIME_MOUNTPOINTS = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc', 'proc', 'sys', 'dev'];

/** A mount point as it was before the step: absent, or a directory the runtime may copy up. */
export interface Mountpoint {
  path: string;
  /** For a directory that existed: its owner and mode, to recognise an untouched copy-up. */
  before?: { mode: number; uid: number; gid: number };
}

export interface RunStepResult {
  exitCode: number;
  /** Mount points the runtime may have created: pass to `removeMountpoints` once unmounted. */
  mountpoints: Mountpoint[];
}

export async function runStep(o: RunStepOptions): Promise<RunStepResult> {
  const { id, root } = o;
  const mountpoints: Mountpoint[] = [];
  // The runtime makes missing mount points (and their parents) for RUN --mount targets too.
  // Deepest first, so a parent is looked at only after everything the runtime made in it.
  const extra = (o.extraMounts ?? []).flatMap((m) => {
    const parts = m.destination.split('/').filter(Boolean);
    return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  });
  const depth = (p: string) => p.split('/').length;
  for (const m of [...new Set([...extra, ...RUNTIME_MOUNTPOINTS])].sort((a, b) => depth(b) - depth(a))) {
    const st = await fs.lstat(path.join(root.rootfs, m)).catch(() => undefined);
    if (!st) mountpoints.push({ path: m });
    else if (st.isDirectory()) mountpoints.push({ path: m, before: { mode: st.mode, uid: st.uid, gid: st.gid } });
  }
  const hostname = id.slice(0, 12);
  const host = o.network === 'host';
  const target = { id, rootless: o.rootless, runDir: o.runDir };
  const etcFiles = await writeEtcFiles(path.join(root.dir, 'etc'), {
    hostname,
    network: o.network,
    rootless: o.rootless,
    extraHosts: extraHostsLines(o.limits),
    ...(o.reporter ? { reporter: o.reporter } : {}),
  });

  const user = resolveUser(
    o.config.User || '0',
    await readFileInRoot(root.rootfs, '/etc/passwd'),
    await readFileInRoot(root.rootfs, '/etc/group'),
  );
  const spec = applyOpts(
    defaultSpec(),
    (s) => {
      s.process.args = o.argv;
    },
    withEnv(o.argEnv, o.config.Env ?? [], { hostname, tty: false, home: user.home }),
    withCwd(o.config.WorkingDir, undefined),
    withUser(user),
    withHostname(hostname),
    withEtcFiles(etcFiles),
    (s) => {
      s.root = { path: root.rootfs, readonly: false };
      s.mounts = [...s.mounts, ...(o.extraMounts ?? [])];
      s.process.terminal = false;
      s.linux.cgroupsPath = `/tsrun/build-${id}`;
      if (o.rootless) withRootless({ hostNetwork: host, singleId: singleIdNamespace() })(s);
    },
    ...(host ? [withHostNetwork()] : []),
    ...(o.network === 'bridge' ? [withNetworkNamespace(namespacePath(target))] : []),
    withStepLimits(o.limits),
  );
  const bundle = path.join(root.dir, 'bundle');
  await fs.mkdir(bundle, { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(bundle, 'config.json'), serializeSpec(spec));

  try {
    if (o.network === 'bridge')
      await attachNetwork({
        ...target,
        storeRoot: o.storeRoot,
        ports: [],
        env: o.callerEnv,
        owner: process.pid,
        ...(o.reporter ? { reporter: o.reporter } : {}),
      });
    return { exitCode: await runForeground(o, id, bundle), mountpoints };
  } finally {
    await o.runtime.delete(id, true).catch(() => {});
    if (o.network === 'bridge') await detachNetwork(target, o.callerEnv, o.reporter);
  }
}

/**
 * Remove, from an unmounted upper dir, what the runtime made and the step did not use: mount
 * points that were absent and stayed empty, and directories copied up only because a mount
 * point was made in them (still empty: no whiteouts, same owner and mode).
 */
export async function removeMountpoints(upper: string, mountpoints: readonly Mountpoint[]): Promise<void> {
  for (const m of mountpoints) {
    const p = path.join(upper, m.path);
    const st = await fs.lstat(p).catch(() => undefined);
    if (!st) continue;
    if (
      m.before &&
      !(st.isDirectory() && st.mode === m.before.mode && st.uid === m.before.uid && st.gid === m.before.gid)
    )
      continue;
    if (
      m.before &&
      native()
        .llistxattr(p)
        .some((x) => x.endsWith('.opaque'))
    )
      continue;
    await removeIfEmpty(p);
  }
}

function runForeground(o: RunStepOptions, id: string, bundle: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      resolve(130);
      return;
    }
    const argv = ['--root', o.runtime.root, 'run', '--bundle', bundle, id];
    o.reporter?.emit({ type: 'runtime', argv: [o.runtime.info.path, ...argv] });
    const child = spawn(o.runtime.info.path, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let exited = false;
    child.stdout.on('data', o.output);
    child.stderr.on('data', o.output);
    // Until runc has made the container, kill finds nothing: keep trying until the child exits.
    // Rootless has no cgroup for `kill --all` to find the processes by; SIGKILL on the init
    // ends its whole pid namespace anyway.
    const abort = () => {
      if (exited) return;
      o.runtime.kill(id, 'SIGKILL', !o.rootless).catch(() => setTimeout(abort, 50));
    };
    o.signal?.addEventListener('abort', abort);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      exited = true;
      o.signal?.removeEventListener('abort', abort);
      resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}

async function removeIfEmpty(p: string): Promise<void> {
  const st = await fs.lstat(p).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory())
    await fs.rmdir(p).catch(() => {}); // only if empty
  else if (st.isFile() && st.size === 0) await fs.rm(p, { force: true });
}
