/**
 * Read an image's files from its unpacked layer directories without mounting them (for `run
 * --dry-run`, which must make no mount): what the overlay would show at a path is the topmost
 * layer that has it, unless a layer above deletes it (a 0/0 character device at the path or at a
 * directory above it) or makes a directory above it opaque (`<x>.overlay.opaque=y`: nothing
 * below shows through).
 *
 * Contract: the layers are the store's, unpacked and immutable; nothing is followed through a
 * symlink (a symlinked /etc or /etc/passwd reads as absent: the caller falls back as for an
 * image without the file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';

function isOpaque(p: string): boolean {
  const n = native();
  return ['user.overlay.opaque', 'trusted.overlay.opaque'].some((x) => n.lgetxattr(p, x)?.toString() === 'y');
}

type Found = { kind: 'file' | 'dir' | 'other'; path: string } | undefined;

/** What the merged view has at `rel` ('etc/passwd'), given the layer dirs top first. */
function lookup(dirs: readonly string[], rel: string): Found {
  const parts = rel.split('/').filter((p) => p && p !== '.');
  for (const top of dirs) {
    let p = top;
    let hidden = false;
    for (let i = 0; i < parts.length; i++) {
      p = path.join(p, parts[i] as string);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) break;
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // deleted here
      if (i === parts.length - 1) return { kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', path: p };
      if (!st.isDirectory()) return undefined; // a file or symlink where a directory would be
      if (isOpaque(p)) hidden = true;
    }
    if (parts.length === 0) return { kind: 'dir', path: top };
    if (hidden) return undefined; // an opaque directory above the path hides the lower layers
  }
  return undefined;
}

/** The file's text, or undefined when the merged view has no regular file there. */
export function readFromLayers(dirs: readonly string[], file: string): string | undefined {
  const f = lookup(dirs, file);
  return f?.kind === 'file' ? fs.readFileSync(f.path, 'utf8') : undefined;
}

/** Is there a directory at `dir` in the merged view? */
export function dirInLayers(dirs: readonly string[], dir: string): boolean {
  return lookup(dirs, dir)?.kind === 'dir';
}
