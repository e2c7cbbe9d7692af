/**
 * End to end: `image layers [--files]` and `image which` on an image pulled from the real
 * registry, with a whiteout, an opaque directory, a path written again, and a history with
 * empty_layer entries between the ones that made layers (matched as Docker matches them).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsrun } from './cli.js';
import { baseLayer, topLayer } from './fixtures.js';
import { layerBlob, makeTar } from '../helpers/tar-writer.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { chainIds } from '../../src/oci/digest.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-layers-'));
const root = path.join(tmp, 'root');
let IMAGE = '';
const base = baseLayer();
const top = topLayer();
// The third layer writes /opt/a again (deleted by the second), deletes the whole /home, and
// makes /etc opaque, putting back only passwd (so hostname, from the second, is gone).
const third = layerBlob(
  makeTar([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh..wh..opq', content: '' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'opt/', type: 'dir' },
    { name: 'opt/a', content: 'again' },
    { name: '.wh.home', content: '' },
  ]),
);

const L = suite('e2e image layers');

L.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushImage(reg, 'e2e/layered', '1', {
    layers: [base, top, third],
    config: {
      config: { Cmd: ['sh'] },
      history: [
        { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:base in / ' },
        { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
        { created: '2024-01-01T00:00:01Z', created_by: 'RUN rm /opt/a # top' },
        { created: '2024-01-01T00:00:02Z', created_by: 'ENV X=1', empty_layer: true },
        { created: '2024-01-01T00:00:03Z', created_by: 'RUN echo again > /opt/a # third', comment: 'c3' },
      ],
    },
  });
  IMAGE = `${reg.host}/e2e/layered:1`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
L.after(async () => {
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

function fileBytes(dir: string): number {
  const seen = new Set<number>();
  let n = 0;
  for (const e of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(path.join(dir, e));
    if (st.isFile() && !seen.has(st.ino)) {
      seen.add(st.ino);
      n += st.size;
    }
  }
  return n;
}

const cli = (args: string[]) => tsrun(args, { root });

L('image layers --format json: digests, sizes, ids and the history line that made each layer', async () => {
  const r = await cli(['image', 'layers', '--format', 'json', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(rows.length, 3);
  const chains = chainIds([base.diffId, top.diffId, third.diffId]);
  [base, top, third].forEach((b, i) => {
    const row = rows[i] as Record<string, unknown>;
    assert.is(row.Index, i + 1);
    assert.is(row.Digest, b.digest);
    assert.is(row.Size, b.blob.length);
    assert.is(row.DiffID, b.diffId);
    assert.is(row.ChainID, chains[i]);
    assert.is(row.Dir, path.join(root, 'layers', (chains[i] as string).slice(7), 'diff'));
    assert.ok(readdirSync(row.Dir as string).length > 0, 'the dir is the unpacked layer');
  });
  // empty_layer entries are skipped, as Docker does: layer 2 is "RUN rm", not "CMD".
  assert.equal(
    rows.map((x) => x.CreatedBy),
    ['/bin/sh -c #(nop) ADD file:base in / ', 'RUN rm /opt/a # top', 'RUN echo again > /opt/a # third'],
  );
  assert.is(rows[2]?.Comment, 'c3');
  // The regular files' bytes, counted once per inode, as they lie in the layer's directory.
  assert.is(rows[0]?.UnpackedSize, fileBytes(rows[0]?.Dir as string));
});

L('image layers (table): one row per layer with truncated ids', async () => {
  const r = await cli(['image', 'layers', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0] as string, /^#\s+DIGEST\s+SIZE\s+UNPACKED\s+DIFF ID\s+CHAIN ID\s+CREATED BY$/);
  assert.is(lines.length, 4);
  assert.match(lines[2] as string, new RegExp(`^2\\s+${top.digest.slice(7, 19)}\\s.*RUN rm /opt/a # top$`));
});

L('image layers --files: adds, changes, whiteouts and opaque directories as deletions', async () => {
  const r = await cli(['image', 'layers', '--files', '--format', 'json', IMAGE]);
  assert.is(r.code, 0, r.stderr);
  const files = r.stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { Files: { Kind: string; Path: string }[] }).Files.map((f) => `${f.Kind} ${f.Path}`));
  assert.ok(files[0]?.includes('A /bin/busybox'));
  assert.ok(files[0]?.includes('A /var/cache/old'));
  assert.ok(files[0]?.includes('A /usr/bin'), 'a parent the tar does not list is added too');
  assert.ok(!files[0]?.some((f) => f.startsWith('C ') || f.startsWith('D ')), 'the base layer only adds');
  assert.equal(files[1], [
    'A /etc/hostname',
    'C /opt',
    'D /opt/a',
    'C /var/cache',
    'A /var/cache/new',
    'D /var/cache/old',
  ]);
  assert.equal(files[2], ['C /etc', 'D /etc/hostname', 'C /etc/passwd', 'D /home', 'C /opt', 'A /opt/a']);

  const text = await cli(['image', 'layers', '--files', IMAGE]);
  assert.is(text.code, 0, text.stderr);
  assert.match(text.stdout, /\n {2}D \/opt\/a\n/);
  assert.match(text.stdout, /\n {2}D \/var\/cache\/old\n/);
  assert.ok(!text.stdout.includes('.wh.'), 'markers are never shown');
});

L('image which: the layer that last wrote a path, or deleted it', async () => {
  const which = async (p: string) => {
    const r = await cli(['image', 'which', '--format', 'json', IMAGE, p]);
    assert.is(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { Change: string; Layer: { Index: number } };
    return `${j.Change}${j.Layer.Index}`;
  };
  assert.is(await which('/bin/busybox'), 'A1');
  assert.is(await which('/usr'), 'A1', 'made by the unpacker for usr/bin/ping');
  assert.is(await which('/opt/a'), 'A3', 'written again by layer 3 after layer 2 deleted it');
  assert.is(await which('/var/cache/old'), 'D2', 'hidden by the opaque directory');
  assert.is(await which('/home/app/notes'), 'D3', 'deleted with its directory');
  assert.is(await which('etc/hostname'), 'D3', 'a relative path means the same; hidden by the opaque /etc');
  assert.is(await which('/etc/passwd'), 'C3', 'written again under the opaque directory');

  const text = await cli(['image', 'which', IMAGE, '/opt/a']);
  assert.match(text.stdout, /^\/opt\/a: added by layer 3 sha256:[a-f0-9]{64}\n/);
  assert.match(text.stdout, /created by: RUN echo again > \/opt\/a # third/);

  const none = await cli(['image', 'which', IMAGE, '/nope']);
  assert.is(none.code, 1);
  assert.match(none.stderr, /no layer of .* writes or deletes \/nope/);
  const badFormat = await cli(['image', 'layers', '--format', 'yaml', IMAGE]);
  assert.is(badFormat.code, 1);
});

L.run();
