/**
 * Where tsrun's own files are: the checkout (or installed package) that holds package.json,
 * bin/tsrun.js and native-helpers/build. The compiled modules (dist/src/…/x.js) and the CLI
 * bundle (dist/tsrun.cjs, scripts/bundle.mjs) sit at different depths, so the root is found by
 * walking up from this module to the first directory whose package.json is tsrun's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let found: { root: string; version: string } | undefined;

function locate(): { root: string; version: string } {
  if (found) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tsrun') return (found = { root: dir, version: pkg.version ?? '0.0.0' });
    } catch {
      /* not here */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find tsrun's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The directory holding tsrun's package.json. */
function projectRoot(): string {
  return locate().root;
}

/** tsrun's version, from its package.json. */
export function projectVersion(): string {
  return locate().version;
}

/** A file `npm run build` makes from native-helpers/ (the monitor, the addon). */
export function nativeBuild(file: string): string {
  return path.join(projectRoot(), 'native-helpers', 'build', 'Release', file);
}

/** The CLI's entry point: what re-runs of tsrun (the monitor's exit command, rootless re-entry) execute. */
export function cliEntry(): string {
  return path.join(projectRoot(), 'bin', 'tsrun.js');
}
