/**
 * Copying between a container's root filesystem (a directory on the host, e.g. its overlay
 * mount) and host paths: the filesystem half of `tsrun cp`, after Docker's documented rules
 * (docs.docker.com/reference/cli/docker/container/cp/, "SRC_PATH / DEST_PATH" table).
 *
 * The container's content is untrusted: it may hold symlinks (`etc -> /etc`, `x -> ../../..`)
 * meant to make us read or write host files. So:
 * - container paths are resolved with `resolveInRoot` (filepath-securejoin's SecureJoin
 *   semantics: `..` stops at the root, every symlink met is resolved as if the root were "/");
 * - inside a copied tree no symlink is ever followed: links are copied as links, files are opened
 *   with O_NOFOLLOW, and an existing entry in the way of a write is replaced, never written through.
 * Contract: host paths are the user's and are used as given. Copies are not atomic; a container
 * racing the copy (swapping a directory for a link mid-copy) can at worst make it fail. Special
 * files (devices, fifos, sockets) are skipped.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';

const MAX_LINKS = 255;

export async function resolveInRoot(root: string, unsafePath: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const followFinal = opts.followFinal ?? true;
  const pending = unsafePath.split('/').filter((p) => p !== '');
  let current: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      current.pop();
      continue;
    }
    const next = [...current, part];
    const st = await fs.lstat(path.join(root, ...next)).catch(() => undefined);
    if (st?.isSymbolicLink() && (pending.length > 0 || followFinal)) {
      if (++links > MAX_LINKS) {
        throw new TsrunError('ERR_USAGE', `resolving ${unsafePath} in the container: too many levels of symbolic links`);
      }
      const target = await fs.readlink(path.join(root, ...next));
      if (target.startsWith('/')) current = [];
      pending.unshift(...target.split('/').filter((p) => p !== ''));
      continue;
    }
    current = next;
  }
  return path.join(root, ...current);
}

/** A text file of a root filesystem (e.g. its /etc/passwd), resolved inside it; undefined if absent. */
export function readFileInRoot(root: string, file: string): Promise<string | undefined> {
  return resolveInRoot(root, file).then((p) => fs.readFile(p, 'utf8')).catch(() => undefined);
}

export interface CopyResult { entries: number; bytes: number }

interface Ctx { preserveOwnership: boolean; result: CopyResult }

function cpError(src: string, dest: string, cause: string, hint?: string): TsrunError {
  return new TsrunError('ERR_USAGE', `copying ${src} to ${dest}: ${cause}`, { hint });
}

/**
 * Copy a regular file's bytes to a new file `dst` (created with `mode`, never through a link:
 * O_NOFOLLOW on both ends and O_EXCL); returns the bytes copied.
 */
export async function copyRegularFile(src: string, dst: string, mode: number): Promise<number> {
  const input = await fs.open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  let bytes = 0;
  try {
    const output = await fs.open(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        await output.write(buf, 0, bytesRead);
        bytes += bytesRead;
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return bytes;
}

/** Copy `src` (lstat'ed, never followed) to `dst`, replacing whatever non-directory is in the way. */
async function copyEntry(src: string, dst: string, st: Stats, c: Ctx): Promise<void> {
  const existing = await fs.lstat(dst).catch(() => undefined);
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) await fs.rm(dst, { force: true });
    if (!existing?.isDirectory()) await fs.mkdir(dst, { mode: 0o700 });
    for (const name of await fs.readdir(src)) {
      const childSt = await fs.lstat(path.join(src, name));
      await copyEntry(path.join(src, name), path.join(dst, name), childSt, c);
    }
  } else if (st.isSymbolicLink() || st.isFile()) {
    if (existing) await fs.rm(dst, { recursive: existing.isDirectory(), force: true });
    if (st.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(src), dst);
    } else {
      c.result.bytes += await copyRegularFile(src, dst, 0o600);
    }
  } else {
    return; // devices, fifos, sockets: skipped
  }
  if (c.preserveOwnership) await fs.lchown(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) await fs.chmod(dst, st.mode & 0o7777);
  await fs.lutimes(dst, st.atime, st.mtime);
  c.result.entries++;
}

/**
 * Docker's table, shared by both directions. `srcPath` is already resolved to a real location;
 * `destStat` is the destination as it exists (undefined if not); returns where SRC goes, and
 * whether SRC's contents (rather than SRC itself) are copied there.
 */
function plan(srcSt: Stats, srcArg: string, destArg: string, destPath: string, destStat: Stats | undefined, srcBase: string): { target: string; contents: boolean } {
  const contentsOnly = /(^|\/)\.$/.test(srcArg);
  if (srcSt.isDirectory()) {
    if (!destStat) return { target: destPath, contents: true };
    if (!destStat.isDirectory()) throw cpError(srcArg, destArg, 'cannot copy a directory to a file');
    return contentsOnly ? { target: destPath, contents: true } : { target: path.join(destPath, srcBase), contents: false };
  }
  if (contentsOnly) throw cpError(srcArg, destArg, 'source is not a directory');
  if (!destStat) {
    if (destArg.endsWith('/')) throw cpError(srcArg, destArg, 'destination directory does not exist');
    return { target: destPath, contents: false };
  }
  return destStat.isDirectory() ? { target: path.join(destPath, srcBase), contents: false } : { target: destPath, contents: false };
}

async function copyPlanned(srcPath: string, srcSt: Stats, target: string, contents: boolean, c: Ctx, srcArg: string, destArg: string): Promise<void> {
  const parent = await fs.stat(path.dirname(target)).catch(() => undefined);
  if (!parent?.isDirectory()) throw cpError(srcArg, destArg, `no such directory: ${path.dirname(destArg) || '/'}`);
  if (contents && srcSt.isDirectory()) {
    const existing = await fs.lstat(target).catch(() => undefined);
    if (!existing) await fs.mkdir(target, { mode: srcSt.mode & 0o7777 });
    for (const name of await fs.readdir(srcPath)) {
      await copyEntry(path.join(srcPath, name), path.join(target, name), await fs.lstat(path.join(srcPath, name)), c);
    }
    return;
  }
  await copyEntry(srcPath, target, srcSt, c);
}

function stripDot(p: string): string {
  return p.replace(/\/\.$/, '/');
}

/** container → host. */
export async function copyOut(root: string, ctrPath: string, hostDest: string, opts: { preserveOwnership?: boolean } = {}): Promise<CopyResult> {
  const c: Ctx = { preserveOwnership: Boolean(opts.preserveOwnership), result: { entries: 0, bytes: 0 } };
  const cleaned = stripDot(ctrPath);
  // A trailing slash asserts a directory: then the final link is followed (as the shell does).
  const srcPath = await resolveInRoot(root, cleaned, { followFinal: cleaned.endsWith('/') });
  const srcSt = await fs.lstat(srcPath).catch(() => undefined);
  if (!srcSt) throw cpError(ctrPath, hostDest, `no such file or directory in the container: ${ctrPath}`);
  const destStat = await fs.stat(hostDest).catch(() => undefined);
  const { target, contents } = plan(srcSt, ctrPath, hostDest, path.resolve(hostDest), destStat, path.basename(srcPath) || 'root');
  await copyPlanned(srcPath, srcSt, target, contents, c, ctrPath, hostDest);
  return c.result;
}

/** host → container. */
export async function copyIn(root: string, hostSrc: string, ctrDest: string, opts: { preserveOwnership?: boolean } = {}): Promise<CopyResult> {
  const c: Ctx = { preserveOwnership: Boolean(opts.preserveOwnership), result: { entries: 0, bytes: 0 } };
  const srcSt = await fs.lstat(stripDot(hostSrc).replace(/\/$/, '') || '/').catch(() => undefined);
  if (!srcSt) throw cpError(hostSrc, ctrDest, `no such file or directory: ${hostSrc}`);
  const srcPath = path.resolve(stripDot(hostSrc));
  // The destination, and whatever it names, is resolved inside the root: never outside it.
  const destPath = await resolveInRoot(root, ctrDest);
  const destStat = await fs.lstat(destPath).catch(() => undefined);
  const { target, contents } = plan(srcSt, hostSrc, ctrDest, destPath, destStat, path.basename(srcPath));
  // The parent of a new entry must itself resolve inside the root (it does: destPath did).
  await copyPlanned(srcPath, srcSt, target, contents, c, hostSrc, ctrDest);
  return c.result;
}
