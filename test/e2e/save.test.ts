/**
 * End to end: `save` and `load` against the real tools that read and write these archives —
 * skopeo (docker-archive: and oci-archive:, as `docker save` writes them) and podman (`podman
 * load`, in a private store) — and a real registry: an image loaded from an archive is pushed,
 * pulled back into a fresh store and run.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { runDir } from './containers.js';
import { busyboxLayer, topLayer } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';

const S = suite('e2e save/load');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-save-'));
const root = path.join(tmp, 'root');
let reg: TestRegistry;
let IMAGE = '';
let ID = '';
let diffIds: string[] = [];
let MANIFEST = '';

const cli = (args: string[], r = root, input?: string) => tsrun(args, { root: r, input });
const sh = (cmd: string) => execa('sh', ['-c', cmd], { reject: false, cwd: tmp });
const podman = [
  'podman',
  '--root',
  path.join(tmp, 'podman'),
  '--runroot',
  path.join(tmp, 'podman-run'),
  '--storage-driver',
  'vfs',
].join(' ');
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

S.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  const layers = [busyboxLayer(), topLayer()];
  diffIds = layers.map((l) => l.diffId);
  MANIFEST = (
    await pushImage(reg, 'e2e/busybox', '1', { layers, config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } } })
  ).manifestDigest;
  IMAGE = `${reg.host}/e2e/busybox:1`;
  const r = await cli(['pull', '-q', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  ID = (await cli(['image', 'inspect', '-f', '{{.Id}}', IMAGE])).stdout.trim();
});
S.after(async () => {
  for (const r of ['root', 'fresh', 'back', 'sk', 'oci'].map((n) => path.join(tmp, n))) {
    const ps = await cli(['ps', '-aq'], r);
    for (const id of ps.stdout.split('\n').filter(Boolean)) await cli(['rm', '-f', id], r);
    rmSync(runDir(r), { recursive: true, force: true });
  }
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

S(
  'save to a slow pipe: skopeo reads it as docker-archive and as oci-archive, with the image id and diff ids kept',
  async () => {
    assert.is((await cli(['tag', IMAGE, 'other/name:2'])).code, 0);
    // A reader slower than the writer: back-pressure, not a truncated archive.
    const r = await sh(`${BIN} --root ${root} save ${IMAGE} other/name:2 | (sleep 1; cat > both.tar)`);
    assert.is(r.exitCode, 0, String(r.stderr));
    const names = (await sh('tar tf both.tar')).stdout.split('\n');
    for (const n of [
      'manifest.json',
      'repositories',
      'index.json',
      'oci-layout',
      ...diffIds.map((d) => `blobs/sha256/${d.slice(7)}`),
    ])
      assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
    const manifest = JSON.parse((await sh('tar xOf both.tar manifest.json')).stdout) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    assert.is(manifest.length, 1);
    assert.equal(manifest[0]?.RepoTags, [IMAGE, 'other/name:2']);
    // A repository without a tag: all its tags, as docker save does.
    const repo = await sh(`${BIN} --root ${root} save other/name | tar xO manifest.json`);
    assert.match(String(repo.stdout), '"RepoTags":["other/name:2"]');
    // Layers are the uncompressed tars whose sha256 is the diff id.
    const layer0 = (
      await execa('tar', ['xOf', 'both.tar', manifest[0]?.Layers[0] as string], { cwd: tmp, encoding: 'buffer' })
    ).stdout;
    assert.is(sha(Buffer.from(layer0)), diffIds[0]);
    const inspect = JSON.parse((await sh('skopeo inspect docker-archive:both.tar:other/name:2')).stdout) as {
      Layers: string[];
    };
    assert.equal(inspect.Layers, diffIds);
    const config = JSON.parse((await sh('skopeo inspect --config docker-archive:both.tar:other/name:2')).stdout) as {
      rootfs: { diff_ids: string[] };
    };
    assert.equal(config.rootfs.diff_ids, diffIds);
    // In the OCI index each tag is an entry whose ref.name is the tag (as Docker 25 writes it).
    const oci = await sh('skopeo inspect --config oci-archive:both.tar:2');
    assert.is(oci.exitCode, 0, String(oci.stderr));
    const raw = await execa('skopeo', ['inspect', '--raw', '--config', 'oci-archive:both.tar:2'], {
      cwd: tmp,
      encoding: 'buffer',
    });
    assert.is(sha(Buffer.from(raw.stdout)), ID);
  },
);

S(
  'podman loads what tsrun saves, under the same id; tsrun loads what podman saves (docker-archive and oci-archive)',
  async () => {
    const saved = await execa(BIN, ['--root', root, 'save', '-o', 'p.tar', 'other/name:2'], {
      cwd: tmp,
      reject: false,
    });
    assert.is(saved.exitCode, 0, saved.stderr);
    const load = await sh(`${podman} load -i p.tar`);
    assert.is(load.exitCode, 0, String(load.stderr));
    assert.match(String(load.stdout), 'Loaded image: docker.io/other/name:2');
    assert.is((await sh(`${podman} image inspect -f '{{.Id}}' other/name:2`)).stdout.trim(), ID.slice(7));
    for (const format of ['docker-archive', 'oci-archive']) {
      const out = `podman-${format}.tar`;
      const r = await sh(`${podman} save --format ${format} -o ${out} other/name:2`);
      assert.is(r.exitCode, 0, String(r.stderr));
      const fresh = path.join(tmp, 'fresh');
      const l = await cli(['load', '-i', path.join(tmp, out)], fresh);
      assert.is(l.code, 0, l.stderr);
      assert.is(l.stdout, 'Loaded image: other/name:2\n');
      assert.is((await cli(['image', 'inspect', '-f', '{{.Id}}', 'other/name:2'], fresh)).stdout.trim(), ID);
      assert.is((await cli(['rmi', 'other/name:2'], fresh)).code, 0);
    }
  },
);

S(
  'an archive skopeo writes from a registry (as docker save does) loads from stdin, gzipped too, and runs; pushed and pulled back, it keeps its id',
  async () => {
    const r = await sh(
      `skopeo copy -q --src-tls-verify=false docker://${IMAGE} docker-archive:sk.tar:made/by:skopeo && gzip -k sk.tar`,
    );
    assert.is(r.exitCode, 0, String(r.stderr));
    const sk = path.join(tmp, 'sk');
    for (const file of ['sk.tar', 'sk.tar.gz']) {
      const l = await execa(BIN, ['--root', sk, 'load'], { inputFile: path.join(tmp, file), reject: false });
      assert.is(l.exitCode, 0, l.stderr);
      assert.is(l.stdout, 'Loaded image: made/by:skopeo');
    }
    assert.is((await cli(['image', 'inspect', '-f', '{{.Id}}', 'made/by:skopeo'], sk)).stdout.trim(), ID);
    const run = await cli(['run', '--rm', '--network', 'none', 'made/by:skopeo', 'cat', '/var/cache/new'], sk);
    assert.is(run.code, 0, run.stderr);
    assert.is(run.stdout, 'new');
    // The store keeps compressed blobs: the loaded image pushes, and comes back with the same id.
    const target = `${reg.host}/e2e/loaded:1`;
    assert.is((await cli(['tag', 'made/by:skopeo', target], sk)).code, 0);
    const push = await cli(['push', target], sk);
    assert.is(push.code, 0, push.stderr);
    const pushed = JSON.parse((await sh(`skopeo inspect --raw --tls-verify=false docker://${target}`)).stdout) as {
      layers: { mediaType: string }[];
    };
    assert.is(pushed.layers.length, 2);
    assert.ok(
      pushed.layers.every((l) => l.mediaType.endsWith('+gzip')),
      JSON.stringify(pushed.layers),
    );
    const back = path.join(tmp, 'back');
    const pull = await cli(['pull', '-q', target], back);
    assert.is(pull.code, 0, pull.stderr);
    assert.is((await cli(['image', 'inspect', '-f', '{{.Id}}', target], back)).stdout.trim(), ID);
    const again = await cli(['run', '--rm', '--network', 'none', target, 'cat', '/var/cache/new'], back);
    assert.is(again.stdout, 'new');
  },
);

S(
  "an OCI archive keeps its compressed blobs and its manifest: loaded, it has the registry's digest, and a push says so",
  async () => {
    const r = await sh(`skopeo copy -q --src-tls-verify=false docker://${IMAGE} oci-archive:sk-oci.tar:made/oci:1`);
    assert.is(r.exitCode, 0, String(r.stderr));
    const oci = path.join(tmp, 'oci');
    const l = await cli(['load', '-i', path.join(tmp, 'sk-oci.tar')], oci);
    assert.is(l.code, 0, l.stderr);
    assert.is(l.stdout, 'Loaded image: made/oci:1\n');
    assert.is(
      (
        await cli(['image', 'inspect', '-f', '{{.Id}} {{.Descriptor.manifestDigest}}', 'made/oci:1'], oci)
      ).stdout.trim(),
      `${ID} ${MANIFEST}`,
    );
    const target = `${reg.host}/e2e/oci:1`;
    assert.is((await cli(['tag', 'made/oci:1', target], oci)).code, 0);
    const push = await cli(['push', target], oci);
    assert.is(push.code, 0, push.stderr);
    assert.match(push.stdout, `digest: ${MANIFEST}`);
    const run = await cli(['run', '--rm', '--network', 'none', 'made/oci:1', 'cat', '/var/cache/new'], oci);
    assert.is(run.stdout, 'new');
  },
);

S(
  'two images in one archive, a layer they share written once; loading them into a store that has it reuses it',
  async () => {
    const ctx = path.join(tmp, 'ctx');
    rmSync(ctx, { recursive: true, force: true });
    execaSyncMkdir(ctx);
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${IMAGE}\nCOPY hello /hello\n`);
    writeFileSync(path.join(ctx, 'hello'), 'hello\n');
    const b = await cli(['build', '-q', '-t', 'derived:1', ctx]);
    assert.is(b.code, 0, b.stderr);
    const r = await sh(`${BIN} --root ${root} save ${IMAGE} derived:1 > two.tar`);
    assert.is(r.exitCode, 0, String(r.stderr));
    const names = (await sh('tar tf two.tar')).stdout
      .split('\n')
      .filter((n) => n.startsWith('blobs/sha256/') && n.length > 13);
    assert.is(names.length, new Set(names).size);
    // 3 layers, 2 configs, 2 manifests.
    assert.is(names.length, 7);
    const l = await cli(['load', '-i', path.join(tmp, 'two.tar')], path.join(tmp, 'fresh'));
    assert.is(l.code, 0, l.stderr);
    assert.is(l.stdout, `Loaded image: ${IMAGE}\nLoaded image: derived:1\n`);
    const run = await cli(
      ['run', '--rm', '--network', 'none', 'derived:1', 'cat', '/hello', '/var/cache/new'],
      path.join(tmp, 'fresh'),
    );
    assert.is(run.stdout, 'hello\nnew');
  },
);

S(
  'errors exit 1 and leave nothing behind: a missing image, a terminal, a file that is not an archive, a layer that lies',
  async () => {
    const missing = await cli(['save', 'no/such:image']);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, 'no such image: no/such:image');
    const garbage = await cli(['load'], root, 'this is not a tar archive, not even close to one, really\n'.repeat(20));
    assert.is(garbage.code, 1);
    const empty = await cli(['load', '-i', path.join(tmp, 'nothing-here.tar')]);
    assert.is(empty.code, 1);
    assert.match(empty.stderr, 'no such file');
    // An archive whose layer does not hash to its config's diff id.
    const work = path.join(tmp, 'lie');
    execaSyncMkdir(work);
    await sh(
      `cd lie && tar xf ../both.tar && printf 'x' >> blobs/sha256/${diffIds[1]?.slice(7)} && tar cf ../lie.tar *`,
    );
    const lie = await cli(['load', '-i', path.join(tmp, 'lie.tar')], path.join(tmp, 'fresh2'));
    assert.is(lie.code, 1, lie.stderr);
    assert.match(lie.stderr, /diff id|reading layer tar/);
    assert.equal(readdirSync(path.join(tmp, 'fresh2', 'tmp')), []);
    assert.ok(
      !existsSync(path.join(tmp, 'fresh2', 'images.json')) ||
        !readFileSync(path.join(tmp, 'fresh2', 'images.json'), 'utf8').includes('other/name'),
    );
  },
);

function execaSyncMkdir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

S.run();
