/**
 * How this user's layers are unpacked into the store (as pull does, app/pull.ts): root, or uid 0
 * of the rootless namespace, keeps owners (there as subordinate ids); only real root has
 * trusted.* xattrs and may make device nodes. For load, import and commit.
 */
import type { AppContext } from './context.js';

export function unpackAs(ctx: AppContext): {
  overlayXattrPrefix: 'trusted.overlay.' | 'user.overlay.';
  unpack: { preserveOwnership: boolean; canMknod: boolean };
} {
  const root = ctx.uid === 0;
  return {
    overlayXattrPrefix: root ? 'trusted.overlay.' : 'user.overlay.',
    unpack: { preserveOwnership: root || ctx.rootless, canMknod: root },
  };
}
