/**
 * `build --output` (`-o`), BuildKit's exporters that make sense without a daemon: the built
 * image's filesystem as a directory (`type=local,dest=DIR`, or just `DIR`) or as a tar archive
 * (`type=tar,dest=FILE`; `dest=-` or just `-` writes it to stdout). `type=image` and
 * `type=docker` are what tsrun always does (the image is stored), so they are accepted as such.
 * (Docker CLI reference, "docker buildx build --output".)
 *
 * The image's layers are mounted read-only-in-spirit (an overlay with a throwaway upper, as a
 * build step's root) and copied with cp/tar, keeping owners, modes, times and links; the mount
 * and its directories are removed afterwards, whatever happens.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import type { OverlayDriver } from '../snapshot/overlay.js';
import type { Store } from '../store/store.js';
import { prepareStepRoot, releaseStepRoot } from './step-root.js';

export type OutputSpec = { type: 'local'; dest: string } | { type: 'tar'; dest: string } | { type: 'image' };

export function parseOutput(spec: string): OutputSpec {
  if (!spec.includes('=')) return spec === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: spec };
  const kv = new Map(
    spec.split(',').map((f) => {
      const i = f.indexOf('=');
      return [i < 0 ? f : f.slice(0, i), i < 0 ? '' : f.slice(i + 1)] as [string, string];
    }),
  );
  const type = kv.get('type');
  const dest = kv.get('dest');
  if (type === 'image' || type === 'docker') return { type: 'image' };
  if ((type === 'local' || type === 'tar') && dest) return { type, dest };
  throw new TsrunError('ERR_USAGE', `invalid --output "${spec}"`, {
    hint:
      type === 'local' || type === 'tar'
        ? `type=${type} needs dest=…`
        : 'use type=local,dest=DIR or type=tar,dest=FILE (dest=- for stdout)',
  });
}

function run(cmd: string, args: string[], toStdout: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', toStdout ? 'inherit' : 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.trim()}`)),
    );
  });
}

/** Export the filesystem of the image made of `chainIds` as `out` says. */
export async function exportOutput(
  store: Store,
  chainIds: readonly string[],
  driver: OverlayDriver,
  out: OutputSpec,
): Promise<void> {
  if (out.type === 'image') return;
  const root = await prepareStepRoot(store, chainIds, driver);
  try {
    if (out.type === 'local') {
      await fs.mkdir(out.dest, { recursive: true });
      await run('cp', ['-a', '--', `${root.rootfs}/.`, `${path.resolve(out.dest)}/`], false);
    } else {
      const toStdout = out.dest === '-';
      await run(
        'tar',
        [
          '--numeric-owner',
          '--sort=name',
          '--xattrs',
          '-C',
          root.rootfs,
          '-cf',
          toStdout ? '-' : path.resolve(out.dest),
          '.',
        ],
        toStdout,
      );
    }
  } catch (err) {
    throw new TsrunError('ERR_BUILD_STEP', `exporting the build to ${out.dest}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await releaseStepRoot(root);
  }
}
