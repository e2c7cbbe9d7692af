/**
 * Connecting to a unix socket whatever the length of its path. A socket address holds at most
 * 107 bytes of path (unix(7) sun_path), and XDG_RUNTIME_DIR=/run/user/UID plus a store hash and
 * a 64-hex container id already exceed it; a longer path is reached through /proc/self/fd/N of
 * its directory, opened for the time of the connect (as podman reaches conmon's sockets).
 */
import { closeSync, constants, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const SUN_PATH_MAX = 107;

export function connectUnix(socketPath: string): net.Socket {
  if (Buffer.byteLength(socketPath) <= SUN_PATH_MAX) return net.connect(socketPath);
  let fd: number;
  try {
    fd = openSync(path.dirname(socketPath), constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    // Fail as a connect would: through the socket's 'error' event.
    const s = new net.Socket();
    process.nextTick(() => s.destroy(err as Error));
    return s;
  }
  const sock = net.connect(`/proc/self/fd/${fd}/${path.basename(socketPath)}`);
  const done = () => {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
  };
  sock.once('connect', done);
  sock.once('error', done);
  return sock;
}
