/**
 * A Node.js image built on this machine, for places where `node:17-alpine` cannot be pulled:
 * the quick start's demo mirror (scripts/demo-mirror.ts) and the tests and benchmarks that build
 * the getting-started tutorial (test/e2e/fixtures.ts re-exports `nodeLayer`).
 *
 * It is made of this machine's own Node.js (the `node` running this script, normally the
 * `nodejs` Debian package, with the shared libraries `ldd` names) and the npm installed beside
 * it, on top of a busybox layer the caller provides (npm runs scripts with /bin/sh). The stand-in
 * config follows the official image's conventions (ENTRYPOINT docker-entrypoint.sh, CMD node, a
 * `node` user 1000, NODE_VERSION in the environment) and says in its labels and history that it
 * is a local stand-in and what it was built from; it never claims to be the official image.
 *
 * Deterministic: the same node and npm give the same layers and config, byte for byte, so seeding
 * a registry twice pushes nothing new.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { layerBlob, makeTar, type LayerBlob, type TarEntrySpec } from '../test/helpers/tar-writer.js';

const MTIME = 1700000000;

/** Where npm lives next to `node` (…/bin/node → …/lib/node_modules/npm). */
function npmDir(node: string): string {
  const dir = path.join(path.dirname(path.dirname(node)), 'lib', 'node_modules', 'npm');
  if (!existsSync(path.join(dir, 'package.json'))) {
    throw new Error(`building the Node.js layer: no npm at ${dir} (install npm beside ${node})`);
  }
  return dir;
}

/**
 * A Node.js layer from this machine's own node and npm: /usr/local/bin/node with the shared
 * libraries `ldd` names, and npm under /usr/local/lib/node_modules. Uncompressed: gzip would
 * cost seconds per use. Goes on top of a busybox layer.
 */
export function nodeLayer(): LayerBlob {
  const node = realpathSync(process.execPath);
  const libs = spawnSync('ldd', [node], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  const entries: TarEntrySpec[] = [
    { name: 'usr/local/bin/node', content: readFileSync(node), mode: 0o755 },
    { name: 'usr/local/bin/npm', type: 'symlink', linkname: '../lib/node_modules/npm/bin/npm-cli.js' },
    // npm's scripts start with "#!/usr/bin/env node".
    { name: 'usr/bin/env', type: 'symlink', linkname: '/bin/busybox' },
    ...libs.map((l) => ({ name: l.slice(1), content: readFileSync(l), mode: 0o755 })),
  ];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const st = lstatSync(abs);
      const r = `${rel}/${name}`;
      if (st.isDirectory()) {
        entries.push({ name: `${r}/`, type: 'dir', mode: st.mode & 0o7777 });
        walk(abs, r);
      } else if (st.isSymbolicLink()) entries.push({ name: r, type: 'symlink', linkname: readlinkSync(abs) });
      else if (st.isFile()) entries.push({ name: r, content: readFileSync(abs), mode: st.mode & 0o7777 });
    }
  };
  walk(npmDir(node), 'usr/local/lib/node_modules/npm');
  return layerBlob(makeTar(entries.map((e) => ({ mtime: MTIME, ...e }))), 'none');
}

/** The official node images' entrypoint: `-e …` or any non-command first argument runs node. */
const ENTRYPOINT_SH = `#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command.
if [ "\${1#-}" != "\${1}" ] || [ -z "$(command -v "\${1}")" ] || { [ -f "\${1}" ] && ! [ -x "\${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
`;

/**
 * The stand-in's own layer, over busybox and nodeLayer: the entrypoint script and the `node`
 * user and group (1000) the official image has.
 */
export function standInLayer(basePasswd: string, baseGroup: string): LayerBlob {
  const entries: TarEntrySpec[] = [
    { name: 'usr/local/bin/docker-entrypoint.sh', content: ENTRYPOINT_SH, mode: 0o755 },
    { name: 'etc/passwd', content: `${basePasswd}node:x:1000:1000:Linux User,,,:/home/node:/bin/sh\n` },
    { name: 'etc/group', content: `${baseGroup}node:x:1000:node\n` },
    { name: 'home/node/', type: 'dir', uid: 1000, gid: 1000 },
  ];
  return layerBlob(makeTar(entries.map((e) => ({ mtime: MTIME, ...e }))));
}

/** What the layers were made from, for the labels: the Debian package that owns node, and npm's version. */
export function nodeProvenance(): { node: string; npm: string; packageName: string } {
  const node = realpathSync(process.execPath);
  const npm = (JSON.parse(readFileSync(path.join(npmDir(node), 'package.json'), 'utf8')) as { version: string })
    .version;
  const owner = spawnSync('dpkg-query', ['-S', node], { encoding: 'utf8' }).stdout.split(':')[0]?.trim();
  const version = owner
    ? spawnSync('dpkg-query', ['-W', '-f', '${Version}', owner], { encoding: 'utf8' }).stdout.trim()
    : '';
  return { node: process.version, npm, packageName: owner ? `Debian package ${owner} ${version}` : node };
}

/** The stand-in's image config (to merge into a pushImage config): ENV, ENTRYPOINT, CMD, labels, history. */
export function standInConfig(layerCount: number): Record<string, unknown> {
  const p = nodeProvenance();
  const what = `a local stand-in for node:17-alpine built on this machine from ${p.packageName} (node ${p.node}, npm ${p.npm}) and Debian's busybox-static; not the official image`;
  return {
    created: '2026-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `NODE_VERSION=${p.node.slice(1)}`],
      Entrypoint: ['docker-entrypoint.sh'],
      Cmd: ['node'],
      Labels: {
        'org.opencontainers.image.title': 'node:17-alpine (local stand-in)',
        'org.opencontainers.image.description': what,
        'io.tsrun.demo.stand-in': 'true',
      },
    },
    history: Array.from({ length: layerCount }, (_, i) => ({
      created: '2026-01-01T00:00:00Z',
      created_by:
        [
          'tsrun demo-mirror: /bin/busybox from Debian busybox-static',
          `tsrun demo-mirror: node and npm from ${p.packageName}`,
          'tsrun demo-mirror: docker-entrypoint.sh, user node',
        ][i] ?? 'tsrun demo-mirror',
      comment: 'local stand-in, built by scripts/demo-mirror.ts',
    })),
  };
}
