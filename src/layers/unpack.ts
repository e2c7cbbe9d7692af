/**
 * Unpack one layer tar into a directory in overlayfs form (OCI image-spec layer.md; the kernel's
 * filesystems/overlayfs.rst), faithfully and safely.
 *
 * Faithful: owners (when `preserveOwnership`), modes including setuid/setgid/sticky (chown before
 * chmod, capabilities after chown, since chown clears both), mtimes (directories last, deepest
 * first), symlinks with their targets exactly as written (absolute ones too), hardlinks, device
 * nodes and fifos, xattrs (binary-safe; see tar-reader.ts). Whiteouts become overlayfs whiteouts:
 * `.wh.NAME` → a 0/0 character device NAME; `.wh..wh..opq` → `<prefix>opaque=y` on the directory.
 *
 * Safe (layers are untrusted): names are cleaned lexically as containerd does, so `..` cannot
 * climb above the root and absolute names land inside it; an entry whose parent chain contains a
 * symlink is refused (ERR_UNSAFE_LAYER) — `dest` is private and only this call writes into it, so
 * checking parents with lstat is enough to guarantee nothing is written or linked outside it;
 * nothing is ever opened through a final symlink (O_NOFOLLOW | O_EXCL after removing what was
 * there); hardlink targets must be earlier non-directory entries of this layer; xattrs in the
 * overlay namespaces are dropped so a layer cannot forge overlayfs metadata.
 *
 * Contract: `dest` exists, is empty and private. The diff id (sha256 over every byte of the
 * uncompressed stream, including what follows the end-of-archive marker) is computed here; the
 * caller compares it with the image config. Not idempotent; on error the caller removes `dest`.
 * File operations are synchronous on purpose: they are many and tiny, and the thread-pool round
 * trip of fs/promises costs more than the syscalls (decompression runs on the pool meanwhile).
 */
import { createHash } from 'node:crypto';
import fs, { constants as C } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { native } from '../native/index.js';
import { readTar, type TarEntry, type TarHeader } from './tar-reader.js';

export interface UnpackOptions {
  /** lchown to the tar's uid/gid (root, or inside a user namespace). */
  preserveOwnership: boolean;
  /** 'trusted.overlay.' for root; 'user.overlay.' for rootless overlayfs mounted with userxattr. */
  overlayXattrPrefix: 'trusted.overlay.' | 'user.overlay.';
  /** Device nodes can be created (CAP_MKNOD). Without it they are skipped with a warning. */
  canMknod: boolean;
  onWarning?: (message: string) => void;
  /**
   * The directory this very tar was just made from (layers/diff.ts over a build step's finished
   * upper directory, which nothing writes to any more): a regular file whose source there is a
   * regular file of the header's size with no overlay xattrs is hard-linked from it instead of
   * created and written. The tar's bytes are still read and hashed. Creating inodes is what a
   * COPY of many small files spends its time on, and the source is deleted right after.
   */
  linkFrom?: string;
  /** The process umask (a worker thread cannot read it: unpack-thread.ts passes it in). */
  umask?: number;
}

export interface UnpackResult {
  diffId: string;
  /** Bytes of the uncompressed stream. */
  tarSize: number;
  /** Sum of the sizes of regular files. */
  unpackedSize: number;
  entries: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Lexical clean relative to the root: "" for the root itself, else "a/b". Never contains "..". */
export function cleanPath(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

const unsafe = (entry: string, why: string) =>
  new TsrunError('ERR_UNSAFE_LAYER', `refusing layer entry "${entry}": ${why}`, {
    hint: 'the image is malformed or malicious; do not use it',
  });

function readUmask(): number {
  const m = process.umask(0o022);
  process.umask(m);
  return m;
}

export async function unpackTar(
  source: AsyncIterable<Buffer>,
  dest: string,
  opts: UnpackOptions,
): Promise<UnpackResult> {
  const hash = createHash('sha256');
  let tarSize = 0;
  const it = (async function* () {
    for await (const chunk of source) {
      const b = chunk as Buffer;
      hash.update(b);
      tarSize += b.length;
      yield b;
    }
  })()[Symbol.asyncIterator]();
  const shared: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next: () => it.next() }) };

  const u = new Unpacker(dest, opts);
  let entries = 0;
  for await (const entry of readTar(shared)) {
    entries++;
    try {
      // Most entries are done at once (apply returns nothing): no await, no promise per entry.
      const pending = u.apply(entry.header, entry);
      if (pending) await pending;
    } catch (err) {
      // What the kernel refuses for an odd entry (an empty symlink target, a name too long…)
      // is the layer's fault: a typed error naming the entry, never a crash.
      // Errors of the source (network, decompression) pass through as they are.
      const e = err as NodeJS.ErrnoException;
      if (err instanceof TsrunError || e?.syscall === undefined || e.path === undefined) throw err;
      throw new TsrunError('ERR_LAYER', `layer entry "${entry.header.path}": ${e.message}`, { cause: err });
    }
  }
  u.finish();
  const skipped = u.skippedDevices;
  if (skipped.length > 0) {
    opts.onWarning?.(
      `skipped ${skipped.length === 1 ? 'device node' : `${skipped.length} device nodes`} outside /dev (creating devices needs root): "${skipped.slice(0, 3).join('", "')}"${skipped.length > 3 ? ', ...' : ''}`,
    );
  }
  // Whatever follows the end-of-archive marker is part of the diff id too.
  while (!(await it.next()).done) {
    /* drain */
  }
  return { diffId: `sha256:${hash.digest('hex')}`, tarSize, unpackedSize: u.unpackedSize, entries };
}

function writeAll(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

class Unpacker {
  unpackedSize = 0;
  /** Relative paths known to be real directories we created or checked. */
  private dirs = new Set<string>(['']);
  private dirTimes: Array<[string, number]> = [];
  private readonly n = native();
  private readonly euid = process.geteuid ? process.geteuid() : 0;
  private readonly egid = process.getegid ? process.getegid() : 0;
  /** The process umask: a new file's mode is exact when the header asks for nothing it masks. */
  private readonly umask: number;

  constructor(
    private readonly root: string,
    private readonly opts: UnpackOptions,
  ) {
    this.umask = opts.umask ?? readUmask();
    this.prefix = path.join(root, '/');
  }

  /** `root` normalised with one "/" at its end: prefix + rel is path.join(root, rel) for a clean rel. */
  private readonly prefix: string;

  /** `rel` is always cleanPath's output (no "", "." or ".." parts), so no normalising is needed. */
  private abs(rel: string): string {
    return rel === '' ? this.root : this.prefix + rel;
  }

  /** Make sure every parent of `rel` is a real directory inside the root; create missing ones. */
  private parents(rel: string, entry: string, create: boolean): void {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur === '' ? (parts[i] as string) : `${cur}/${parts[i]}`;
      if (this.dirs.has(cur)) continue;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(this.abs(cur));
      } catch {
        if (!create) throw unsafe(entry, `its hardlink target's parent "${cur}" is not in this layer`);
        fs.mkdirSync(this.abs(cur), 0o755);
        this.dirs.add(cur);
        continue;
      }
      if (st.isSymbolicLink()) throw unsafe(entry, `its parent "${cur}" is a symlink`);
      if (!st.isDirectory())
        throw new TsrunError('ERR_LAYER', `layer entry "${entry}": its parent "${cur}" is not a directory`);
      this.dirs.add(cur);
    }
  }

  /** Remove whatever is at rel unless it is a directory and `keepDir`. Returns true if a dir remains. */
  private clear(rel: string, keepDir: boolean): boolean {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.abs(rel));
    } catch {
      return false;
    }
    if (st.isDirectory()) {
      if (keepDir) return true;
      fs.rmSync(this.abs(rel), { recursive: true, force: true });
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
      return false;
    }
    fs.unlinkSync(this.abs(rel));
    return false;
  }

  /** Whether a new file (owned by us) needs a chown to match the header. */
  private needsChown(h: TarHeader): boolean {
    return this.opts.preserveOwnership && (h.uid !== this.euid || h.gid !== this.egid);
  }

  private owner(p: string, h: TarHeader, fd?: number): void {
    if (!this.needsChown(h)) return;
    try {
      if (fd === undefined) fs.lchownSync(p, h.uid, h.gid);
      else fs.fchownSync(fd, h.uid, h.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      // EINVAL: the id has no mapping in this user namespace (rootless without subordinate ids).
      throw new TsrunError(
        'ERR_LAYER',
        `"${h.path}" is owned by ${h.uid}:${h.gid}, an id this user namespace does not map (it maps your own id only)`,
        {
          cause: err,
          hint: 'images with files of other owners need subordinate ids: see `tsrun info` for the usermod command',
        },
      );
    }
  }

  /** Device nodes skipped outside /dev (without CAP_MKNOD), for one warning per layer. */
  skippedDevices: string[] = [];

  /**
   * Create with `create`; if something is already there (an earlier entry of the same path),
   * remove it and try once more. Saves an lstat per entry in the common case of a fresh path.
   */
  private create(rel: string, create: () => void): void {
    try {
      create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      this.clear(rel, false);
      create();
    }
  }

  /** `linkFrom`: link the file the tar entry was made from, if it is one; false to write it instead. */
  private linkFile(rel: string, p: string, h: TarHeader): boolean {
    if (this.opts.linkFrom === undefined) return false;
    const src = path.join(this.opts.linkFrom, rel);
    const st = fs.lstatSync(src, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size !== h.size) return false;
    if (!this.opts.preserveOwnership && (st.uid !== this.euid || st.gid !== this.egid)) return false;
    const names = this.n.llistxattr(src);
    if (
      names.some(
        (x) => x.startsWith('trusted.overlay.') || x.startsWith('user.overlay.') || x.startsWith('user.fuseoverlayfs.'),
      )
    )
      return false;
    this.create(rel, () => fs.linkSync(src, p)); // link(2) does not follow a symlink source
    // The inode is the source's: make owner, mode and time the header's (as they should already be).
    if (this.opts.preserveOwnership) fs.lchownSync(p, h.uid, h.gid);
    fs.chmodSync(p, h.mode);
    this.xattrs(p, h);
    fs.utimesSync(p, h.mtime, h.mtime);
    return true;
  }

  private xattrs(p: string, h: TarHeader): void {
    for (const [name, value] of h.xattrs) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) {
        this.opts.onWarning?.(`dropped xattr ${name} on "${h.path}": overlayfs metadata cannot come from an image`);
        continue;
      }
      try {
        this.n.lsetxattr(p, name, value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EACCES' || code === 'EINVAL') {
          this.opts.onWarning?.(`could not set xattr ${name} on "${h.path}" (${code})`);
        } else throw err;
      }
    }
  }

  /**
   * Make one entry. Synchronous but for a file whose data is not all in the current chunk (or a
   * linked file's data to skip): then the promise of the rest. A plain function, not an async one,
   * so that V8 optimises a small dispatcher (an async `apply` was recompiled for ~90 ms per
   * isolate: docs/benchmarks.md) and the common entry costs no promise.
   */
  apply(h: TarHeader, entry: Pick<TarEntry, 'body' | 'buffered'>): Promise<void> | undefined {
    if (h.path.includes('\0') || h.linkpath.includes('\0')) throw unsafe(h.path, 'the name contains a NUL byte');
    const rel = cleanPath(h.path);
    const base = rel.slice(rel.lastIndexOf('/') + 1);

    if (base.startsWith(WH)) {
      this.whiteout(h, rel, base);
      return undefined;
    }
    if (rel === '' && h.type !== 'dir') throw unsafe(h.path, 'only a directory can be the root');
    if (rel !== '') this.parents(rel, h.path, true);
    const p = this.abs(rel);

    switch (h.type) {
      case 'dir': {
        let fresh = false;
        if (rel !== '') {
          try {
            fs.mkdirSync(p, h.mode & 0o777);
            fresh = true;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            if (!this.clear(rel, true)) {
              fs.mkdirSync(p, h.mode & 0o777);
              fresh = true;
            }
          }
        }
        this.dirs.add(rel);
        this.owner(p, h);
        if (!fresh || this.needsChmod(h)) fs.chmodSync(p, h.mode);
        this.xattrs(p, h);
        this.dirTimes.push([p, h.mtime]);
        return;
      }
      case 'file':
        return this.file(rel, p, h, entry);
      case 'symlink': {
        if (h.linkpath === '')
          throw new TsrunError('ERR_LAYER', `layer entry "${h.path}": a symlink with an empty target`);
        this.create(rel, () => fs.symlinkSync(h.linkpath, p));
        this.owner(p, h);
        this.xattrs(p, h);
        fs.lutimesSync(p, h.mtime, h.mtime);
        return;
      }
      case 'hardlink': {
        const target = cleanPath(h.linkpath);
        if (target === '') throw unsafe(h.path, 'a hardlink cannot point at the root');
        this.parents(target, h.path, false);
        let st: fs.Stats;
        try {
          st = fs.lstatSync(this.abs(target));
        } catch {
          throw unsafe(h.path, `its hardlink target "${h.linkpath}" is not an earlier entry of this layer`);
        }
        if (st.isDirectory()) throw unsafe(h.path, `its hardlink target "${h.linkpath}" is a directory`);
        if (target === rel) return;
        this.create(rel, () => fs.linkSync(this.abs(target), p)); // link(2) does not follow a symlink target
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        if (h.type !== 'fifo' && !this.opts.canMknod) {
          // The runtime mounts a /dev of its own (null, zero, tty, ...) over the image's: only others are worth a word.
          if (rel !== 'dev' && !rel.startsWith('dev/')) this.skippedDevices.push(h.path);
          return;
        }
        const kind = h.type === 'char' ? C.S_IFCHR : h.type === 'block' ? C.S_IFBLK : C.S_IFIFO;
        this.create(rel, () => this.n.mknod(p, kind | (h.mode & 0o777), h.devmajor, h.devminor));
        this.owner(p, h);
        fs.chmodSync(p, h.mode);
        this.xattrs(p, h);
        fs.utimesSync(p, h.mtime, h.mtime);
        return;
      }
      default:
        this.opts.onWarning?.(`skipped "${h.path}": unsupported tar entry type '${h.typeflag}'`);
    }
  }

  private file(
    rel: string,
    p: string,
    h: TarHeader,
    entry: Pick<TarEntry, 'body' | 'buffered'>,
  ): Promise<void> | undefined {
    if (this.linkFile(rel, p, h)) return this.skipBody(h, entry);
    const flags = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;
    let fd = -1;
    this.create(rel, () => {
      fd = fs.openSync(p, flags, h.mode & 0o777);
    });
    // A small file is usually whole in the current chunk: written without an await. Otherwise
    // writeBody owns the descriptor (and closes it, whatever happens); else it is closed here.
    let handedOver = false;
    try {
      const whole = entry.buffered();
      if (!whole) {
        handedOver = true;
        return this.writeBody(p, h, entry, fd);
      }
      writeAll(fd, whole);
      this.fileDone(p, h, fd);
      return undefined;
    } finally {
      if (!handedOver) fs.closeSync(fd);
    }
  }

  /** The rest of a file that was not whole in the chunk: written as it comes, then closed. */
  private async writeBody(p: string, h: TarHeader, entry: Pick<TarEntry, 'body'>, fd: number): Promise<void> {
    try {
      for await (const chunk of entry.body()) writeAll(fd, chunk);
      this.fileDone(p, h, fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A file's owner, mode, xattrs and time, and its size counted, once its data is written. */
  private fileDone(p: string, h: TarHeader, fd: number): void {
    this.owner(p, h, fd);
    if (this.needsChmod(h)) fs.fchmodSync(fd, h.mode);
    this.xattrs(p, h);
    fs.futimesSync(fd, h.mtime, h.mtime);
    this.unpackedSize += h.size;
  }

  private async skipBody(h: TarHeader, entry: Pick<TarEntry, 'body'>): Promise<void> {
    for await (const chunk of entry.body()) void chunk; // hashed by the caller's stream
    this.unpackedSize += h.size;
  }

  /** A chmod is needed when the mode has bits the umask strips or that open/mkdir ignore. */
  private needsChmod(h: TarHeader): boolean {
    return (h.mode & 0o7000) !== 0 || (h.mode & this.umask) !== 0;
  }

  private whiteout(h: TarHeader, rel: string, base: string): void {
    const dirRel = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    if (base === OPAQUE) {
      if (dirRel !== '') {
        this.parents(`${dirRel}/x`, h.path, true);
        if (!this.dirs.has(dirRel) && !this.clear(dirRel, true)) {
          fs.mkdirSync(this.abs(dirRel), 0o755);
          this.dirs.add(dirRel);
        }
      }
      this.n.lsetxattr(this.abs(dirRel), `${this.opts.overlayXattrPrefix}opaque`, Buffer.from('y'));
      return;
    }
    if (base.startsWith(`${WH}${WH}`)) return; // other aufs metadata
    const name = base.slice(WH.length);
    if (name === '' || name === '.' || name === '..') throw unsafe(h.path, 'malformed whiteout');
    const target = dirRel === '' ? name : `${dirRel}/${name}`;
    this.parents(target, h.path, true);
    this.clear(target, false);
    try {
      this.n.mknod(this.abs(target), C.S_IFCHR, 0, 0);
    } catch (err) {
      throw new TsrunError('ERR_LAYER', `creating whiteout for "${target}": ${(err as Error).message}`, {
        cause: err,
        hint: 'overlayfs whiteouts are 0/0 character devices; creating them needs root or a user namespace',
      });
    }
    if (this.opts.preserveOwnership) fs.lchownSync(this.abs(target), h.uid, h.gid);
  }

  /** Directory mtimes last (writing children changed them), deepest first. */
  finish(): void {
    this.dirTimes.sort((a, b) => b[0].length - a[0].length);
    // A later entry may have replaced the directory (by a symlink to a host path, say): set the
    // time only on what is still a directory, and never through a link.
    for (const [p, t] of this.dirTimes) {
      // (…or its parent by a file: ENOTDIR, not only ENOENT, means it is gone.)
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) fs.lutimesSync(p, t, t);
    }
  }
}
