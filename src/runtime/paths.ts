/**
 * Where a store's containers live.
 *
 * Persistent (survives reboots, under the store root, as Docker's /var/lib/docker/containers):
 *   <root>/containers/<id>/container.json   the record (records.ts)
 *   <root>/containers/<id>/bundle/          OCI bundle: config.json + rootfs/ (the overlay mount point)
 *   <root>/containers/<id>/upper, work      the overlay's writable layer
 *   <root>/containers/<id>/etc/             hosts, hostname, resolv.conf bind-mounted into the container
 *   <root>/containers/<id>/ctr.log          output, k8s-file format (written by the monitor)
 *   <root>/containers/names/<name>          symlink → id: a name is taken by creating it (atomic)
 *
 * Volatile (cleared by a reboot, as runc's and conmon's state is): a tmpfs directory per store —
 * /run/tsrun/<h> for root, $XDG_RUNTIME_DIR/tsrun/<h> or /tmp/tsrun-<uid>/<h> otherwise, where
 * <h> hashes the store root, so two stores (`--root`) never see each other's containers:
 *   <run>/runc/          the OCI runtime's --root
 *   <run>/<id>/          the monitor's state: attach.sock, pid, exit, runtime.log, monitor.log
 *
 * Unix socket paths are limited to 107 bytes; the hash keeps <run>/<id>/attach.sock short under
 * /run/tsrun, and a longer one ($XDG_RUNTIME_DIR) is reached through its directory's fd
 * (util/unix-socket.ts; the monitor binds and hands runc its sockets the same way).
 */
import path from 'node:path';
import { sha256Hex } from '../util/sha256.js';

export interface ContainerPaths {
  dir: string;
  record: string;
  bundle: string;
  rootfs: string;
  config: string;
  upper: string;
  work: string;
  etc: string;
  log: string;
  /** Volatile monitor state. */
  state: string;
  attachSocket: string;
  exitFile: string;
  monitorLog: string;
}

export interface StorePaths {
  containers: string;
  names: string;
  run: string;
  runtimeRoot: string;
}

export function storePaths(root: string, uid: number, env: NodeJS.ProcessEnv): StorePaths {
  const h = sha256Hex(Buffer.from(path.resolve(root), 'utf8')).slice(0, 12);
  let base: string;
  if (uid === 0) base = '/run/tsrun';
  else if (env.XDG_RUNTIME_DIR) base = path.join(env.XDG_RUNTIME_DIR, 'tsrun');
  else base = `/tmp/tsrun-${uid}`;
  const run = path.join(base, h);
  return {
    containers: path.join(root, 'containers'),
    names: path.join(root, 'containers', 'names'),
    run,
    runtimeRoot: path.join(run, 'runc'),
  };
}

export function containerPaths(sp: StorePaths, id: string): ContainerPaths {
  const dir = path.join(sp.containers, id);
  const bundle = path.join(dir, 'bundle');
  const state = path.join(sp.run, id);
  return {
    dir,
    record: path.join(dir, 'container.json'),
    bundle,
    rootfs: path.join(bundle, 'rootfs'),
    config: path.join(bundle, 'config.json'),
    upper: path.join(dir, 'upper'),
    work: path.join(dir, 'work'),
    etc: path.join(dir, 'etc'),
    log: path.join(dir, 'ctr.log'),
    state,
    attachSocket: path.join(state, 'attach.sock'),
    exitFile: path.join(state, 'exit'),
    monitorLog: path.join(state, 'monitor.log'),
  };
}
