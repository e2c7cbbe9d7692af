/**
 * `image layers` and `image which` (app/layers.ts): an image's layers as the store holds them,
 * what each one adds, changes and deletes, and which layer last wrote (or deleted) a path.
 * `--format table` (the default) is for people, `--format json` one JSON object per layer (or
 * per answer) for scripts and course material.
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

const LAYERS_EXAMPLES = `
Examples:
  tsrun image layers busybox                  # one row per layer, the base layer first
  tsrun image layers --files node:17-alpine   # and every path each layer adds (A), changes (C), deletes (D)
  tsrun image layers --format json busybox | jq .DiffID
  ls "$(tsrun image layers --format json busybox | jq -r .Dir | head -1)"   # a layer as overlayfs mounts it
`;

const WHICH_EXAMPLES = `
Examples:
  tsrun image which node:17-alpine /usr/local/bin/docker-entrypoint.sh
  tsrun image which myapp /etc/passwd         # the RUN adduser step, not the base image
`;

function checkFormat(format: string | undefined): 'table' | 'json' {
  if (format === undefined || format === 'table' || format === 'json') return format ?? 'table';
  throw new TsrunError('ERR_USAGE', `unknown format "${format}": use table or json`);
}

export function registerLayerCommands(program: Command, io: CliIo): void {
  const image = group(program, 'image');
  image
    .command('layers')
    .description("Show an image's layers: digest, sizes, diff id, chain id and the step that made each")
    .argument('<image>', 'image name or id')
    .option('--files', 'list every path each layer adds (A), changes (C) or deletes (D)')
    .option('--format <format>', 'table or json (one object per layer)')
    .option('--no-trunc', 'do not truncate digests and commands')
    .addHelpText('after', LAYERS_EXAMPLES)
    .action(
      exitOne(async (name: string, o: { files?: boolean; format?: string; trunc: boolean }) => {
        const format = checkFormat(o.format);
        const { imageLayers } = await import('../../app/layers.js');
        const r = await imageLayers(await context(io), name, { files: o.files });
        if (format === 'json') {
          for (const l of r.layers) io.out.write(`${JSON.stringify(layerJson(l))}\n`);
          return;
        }
        const { humanSize, table } = await import('../format.js');
        const short = (d: string) => (o.trunc ? d.slice(7, 19) : d);
        const cmd = (s: string) => (o.trunc && s.length > 60 ? `${s.slice(0, 59)}…` : s);
        const header = ['#', 'DIGEST', 'SIZE', 'UNPACKED', 'DIFF ID', 'CHAIN ID', 'CREATED BY'];
        const row = (l: (typeof r.layers)[number]) => [
          String(l.index),
          short(l.digest),
          humanSize(l.size),
          humanSize(l.unpackedSize),
          short(l.diffId),
          short(l.chainId),
          cmd(l.createdBy.replace(/\s+/g, ' ')),
        ];
        if (!o.files) {
          io.out.write(table(header, r.layers.map(row)));
          return;
        }
        for (const l of r.layers) {
          io.out.write(table(header, [row(l)]));
          io.out.write(`  dir: ${l.dir}\n`);
          for (const f of l.files ?? []) io.out.write(`  ${f.kind} ${f.path}\n`);
          io.out.write('\n');
        }
      }),
    );

  image
    .command('which')
    .description('Show the layer that last wrote a path of an image (or deleted it)')
    .argument('<image>', 'image name or id')
    .argument('<path>', 'a path in the image, e.g. /etc/passwd')
    .option('--format <format>', 'table or json')
    .addHelpText('after', WHICH_EXAMPLES)
    .action(
      exitOne(async (name: string, target: string, o: { format?: string }) => {
        const format = checkFormat(o.format);
        const { whichLayer } = await import('../../app/layers.js');
        const a = await whichLayer(await context(io), name, target);
        if (format === 'json') {
          io.out.write(`${JSON.stringify({ Path: a.path, Change: a.kind, Layer: layerJson(a.layer) })}\n`);
          return;
        }
        const verb = a.kind === 'D' ? 'deleted' : a.kind === 'A' ? 'added' : 'changed';
        io.out.write(
          `${a.path}: ${verb} by layer ${a.layer.index} ${a.layer.digest}\n` +
            `  diff id:    ${a.layer.diffId}\n` +
            `  created by: ${a.layer.createdBy.replace(/\s+/g, ' ') || '(no history entry)'}\n` +
            `  dir:        ${a.layer.dir}\n`,
        );
      }),
    );
}

function layerJson(l: import('../../app/layers.js').LayerView) {
  return {
    Index: l.index,
    Digest: l.digest,
    MediaType: l.mediaType,
    Size: l.size,
    UnpackedSize: l.unpackedSize,
    TarSize: l.tarSize,
    DiffID: l.diffId,
    ChainID: l.chainId,
    Dir: l.dir,
    CreatedBy: l.createdBy,
    ...(l.created ? { Created: l.created } : {}),
    ...(l.comment ? { Comment: l.comment } : {}),
    ...(l.files ? { Files: l.files.map((f) => ({ Kind: f.kind, Path: f.path })) } : {}),
  };
}
