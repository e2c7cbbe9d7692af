/**
 * Image verbs: pull, images / image ls, image inspect / inspect, tag, rmi / image rm.
 * Flags follow `docker` (pull -q --platform; images -q --no-trunc --digests; rmi -f).
 * Each action only turns flags into options and prints what the use case returns.
 */
import type { Command } from 'commander';
import type { Reporter } from '../../events.js';
import { printError, type CliIo } from '../output.js';
import { explainListeners, explainOption } from '../explain/flag.js';

async function context(io: CliIo, reporter?: Reporter) {
  const { processContext } = await import('../../app/context.js');
  return processContext({ root: io.globals().root, reporter });
}

/** `verb`: the command line's sole verb (cli/register.ts): only that one, without the `image` group. */
export function registerImageCommands(program: Command, io: CliIo, verb?: string): void {
  const want = (name: string) => verb === undefined || verb === name;
  const pullCmd = (cmd: Command) =>
    cmd
      .description('Download an image from a registry')
      .argument('<image>', 'image reference, e.g. node:17-alpine, localhost:5000/app@sha256:…')
      .option('-q, --quiet', 'print only the image name')
      .option('--platform <os/arch[/variant]>', 'pull this platform from a multi-platform image')
      .option('-a, --all-tags', 'download every tagged image of the repository')
      .action(async (image: string, opts: { quiet?: boolean; platform?: string; allTags?: boolean }) => {
        await (opts.allTags ? pullAllAction(io, image, opts) : pullAction(io, image, opts));
      });
  if (want('pull')) pullCmd(explainOption(program.command('pull'), 'pull', io));

  const pushCmd = (cmd: Command) =>
    cmd
      .description('Upload an image to a registry')
      .argument('<name[:tag]>', 'a local tag, e.g. localhost:5000/app:1 (tag it first with `tsrun tag`)')
      .option('-a, --all-tags', 'push every local tag of the repository')
      .option('-q, --quiet', 'print only the pushed references')
      .action(async (name: string, opts: { allTags?: boolean; quiet?: boolean }) => pushAction(io, name, opts));
  if (want('push')) pushCmd(explainOption(program.command('push'), 'push', io));

  const imagesCmd = (cmd: Command) =>
    cmd
      .description('List images')
      .argument('[repository[:tag]]', 'only images of this repository (and tag)')
      .option('-a, --all', 'show all images (tsrun keeps no intermediate images: the same as without)')
      .option(
        '-f, --filter <filter>',
        'dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      )
      .option('-q, --quiet', 'only show image ids')
      .option('--no-trunc', 'do not truncate ids')
      .option('--digests', 'show digests')
      .option('--format <template>', 'Go template (e.g. "{{.Repository}}:{{.Tag}}"), "table ...", or json')
      .action(
        async (
          reference: string | undefined,
          opts: { quiet?: boolean; trunc: boolean; digests?: boolean; format?: string; filter: string[] },
        ) => imagesAction(io, { ...opts, reference }),
      );
  if (want('images')) imagesCmd(program.command('images'));

  const inspectCmd = (cmd: Command, imagesOnly: boolean) =>
    cmd
      .description(
        imagesOnly ? 'Show details of one or more images as JSON' : 'Show details of containers or images as JSON',
      )
      .argument('<name...>', imagesOnly ? 'image names or ids' : 'container or image names or ids')
      .option('-f, --format <template>', 'Go template, e.g. "{{.State.Status}}"')
      .option('--type <type>', 'only look for this type: container, image, network or volume')
      .option('-s, --size', 'display total file sizes (containers)')
      .action(async (names: string[], o: { format?: string; type?: string; size?: boolean }) =>
        inspectAction(io, names, o, imagesOnly),
      );
  if (want('inspect')) inspectCmd(program.command('inspect'), false);

  const tagCmd = (cmd: Command) =>
    cmd
      .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
      .argument('<source>', 'SOURCE_IMAGE[:TAG] or image id')
      .argument('<target>', 'TARGET_IMAGE[:TAG]')
      .action(async (source: string, target: string) => {
        const { tagImage } = await import('../../app/images.js');
        await tagImage(await context(io), source, target);
      });
  if (want('tag')) tagCmd(program.command('tag'));

  const historyCmd = (cmd: Command) =>
    cmd
      .description('Show the steps an image was built from, newest first')
      .argument('<image>', 'image name or id')
      .option('--no-trunc', 'do not truncate ids and commands')
      .option('-q, --quiet', 'only show image ids')
      .option(
        '-H, --human',
        'print sizes and dates in human readable format (default true; -H=false for bytes and RFC 3339)',
      )
      .option('--format <template>', 'Go template (e.g. "{{.ID}} {{.CreatedBy}}"), "table ...", or json')
      .action(async (image: string, opts: { trunc: boolean; quiet?: boolean; human?: boolean; format?: string }) => {
        const { imageHistory } = await import('../../app/images.js');
        const { renderList } = await import('../template.js');
        const { historyContext, historyFormat, HISTORY_HEADERS } = await import('../views.js');
        const rows = await imageHistory(await context(io), image);
        const human = opts.human !== false;
        const format = opts.quiet ? '{{.ID}}' : historyFormat(opts.format, human);
        io.out.write(
          renderList(format, rows, {
            toStruct: (r) => historyContext(r, opts.trunc, human),
            headers: HISTORY_HEADERS,
            defaultTable: historyFormat(undefined, human),
          }),
        );
      });
  if (want('history')) historyCmd(program.command('history'));

  const rmiCmd = (cmd: Command) =>
    cmd
      .description('Remove one or more images')
      .argument('<image...>', 'image names or ids')
      .option('-f, --force', 'remove an image by id even when several tags or a stopped container refer to it')
      .action(async (images: string[], opts: { force?: boolean }) => rmiAction(io, images, Boolean(opts.force)));
  if (want('rmi')) rmiCmd(program.command('rmi'));

  if (verb !== undefined) return;
  const image = program.command('image').description('Manage images');
  pullCmd(explainOption(image.command('pull'), 'pull', io));
  pushCmd(explainOption(image.command('push'), 'push', io));
  imagesCmd(image.command('ls').alias('list'));
  inspectCmd(image.command('inspect'), true);
  tagCmd(image.command('tag'));
  historyCmd(image.command('history'));
  rmiCmd(image.command('rm').alias('remove'));
  image
    .command('prune')
    .description('Remove dangling images (with -a: every image no container uses)')
    .option('-a, --all', 'remove all images no container uses, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { all?: boolean; force?: boolean }) => imagePruneAction(io, opts));
}

/** Docker's `image prune`: the prompt, "Deleted Images:" lines, then the space reclaimed. */
async function imagePruneAction(io: CliIo, opts: { all?: boolean; force?: boolean }): Promise<void> {
  const { humanSize } = await import('../format.js');
  if (!opts.force) {
    const { confirm } = await import('../confirm.js');
    const warning = opts.all
      ? 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?'
      : 'WARNING! This will remove all dangling images.\nAre you sure you want to continue?';
    if (!(await confirm(io.out, warning))) {
      io.out.write(`Total reclaimed space: ${humanSize(0)}\n`);
      return;
    }
  }
  const { openEnv } = await import('../../app/containers.js');
  const { pruneImages } = await import('../../app/rmi.js');
  const r = await pruneImages(await openEnv(await context(io)), { all: opts.all });
  if (r.lines.length > 0)
    io.out.write(
      `Deleted Images:\n${r.lines.map((l) => ('untagged' in l ? `untagged: ${l.untagged}\n` : `deleted: ${l.deleted}\n`)).join('')}\n`,
    );
  if (r.busy)
    io.err.write('Note: a pull, build or container start held the store: unused layers were left for a later prune\n');
  io.out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
}

/** Docker's push output: one line per blob, then "TAG: digest: D size: N". */
async function pushAction(io: CliIo, name: string, opts: { allTags?: boolean; quiet?: boolean }): Promise<void> {
  const { fanout } = await import('../../events.js');
  const progress = await import('../progress.js');
  const listeners: Reporter[] = [];
  if (io.globals().debug) listeners.push(progress.debugReporter(io.err));
  listeners.push(...explainListeners());
  if (!opts.quiet) {
    listeners.push({
      emit(e) {
        if (e.type === 'push-start') io.out.write(`The push refers to repository [${e.repository}]\n`);
        else if (e.type === 'push-blob' && !e.config) {
          const what =
            e.outcome === 'exists'
              ? 'Layer already exists'
              : e.outcome === 'mounted'
                ? `Mounted from ${e.from}`
                : 'Pushed';
          io.out.write(`${e.digest.slice(7, 19)}: ${what}\n`);
        } else if (e.type === 'push-manifest') io.out.write(`${e.tag}: digest: ${e.digest} size: ${e.size}\n`);
        else if (e.type === 'warning') io.err.write(`WARNING: ${e.message}\n`);
      },
    });
  }
  const ctx = await context(io, fanout(...listeners));
  const { push } = await import('../../app/push.js');
  const pushed = await push(ctx, { reference: name, allTags: opts.allTags });
  if (opts.quiet) {
    const { familiarName, parseNormalizedNamed } = await import('../../reference/reference.js');
    for (const p of pushed) io.out.write(`${familiarName({ ...parseNormalizedNamed(name), tag: p.tag })}\n`);
  }
}

async function pullAction(
  io: CliIo,
  image: string,
  opts: { quiet?: boolean; platform?: string; statusLine?: boolean },
): Promise<{ fresh: boolean }> {
  const { fanout } = await import('../../events.js');
  const progress = await import('../progress.js');
  const { familiarName } = await import('../../reference/reference.js');
  const debug = Boolean(io.globals().debug);
  const listeners: Reporter[] = [];
  let tty: (Reporter & { stop(): void }) | undefined;
  listeners.push(...explainListeners());
  if (debug) listeners.push(progress.debugReporter(io.err));
  else if (!opts.quiet) {
    if (io.out.isTTY) listeners.push((tty = await progress.ttyPullReporter(io.out, io.err)));
    else listeners.push(progress.plainPullReporter(io.out, io.err));
  }
  const ctx = await context(io, fanout(...listeners));
  const { parseReference } = await import('../../reference/reference.js');
  const ref = parseReference(image);
  if (!opts.quiet) {
    if (!/[:@]/.test(image.split('/').pop() ?? '')) io.out.write('Using default tag: latest\n');
    io.out.write(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}\n`);
  }
  const { pull } = await import('../../app/pull.js');
  let result;
  try {
    result = await pull(ctx, { reference: image, platform: opts.platform });
  } finally {
    tty?.stop();
  }
  const { formatReference } = await import('../../reference/reference.js');
  if (!opts.quiet) io.out.write(`Digest: ${result.digest}\n`);
  if (opts.statusLine === false) return result;
  if (!opts.quiet) {
    io.out.write(
      result.fresh
        ? `Status: Downloaded newer image for ${familiarName(result.reference)}\n`
        : `Status: Image is up to date for ${familiarName(result.reference)}\n`,
    );
  }
  io.out.write(`${formatReference(result.reference)}\n`);
  return result;
}

/** `pull -a REPOSITORY`: every tag, each as `pull` shows it; one status line for all (Docker). */
async function pullAllAction(io: CliIo, image: string, opts: { quiet?: boolean; platform?: string }): Promise<void> {
  const { parseNormalizedNamed, familiarName, repositoryName } = await import('../../reference/reference.js');
  const { TsrunError } = await import('../../errors.js');
  const named = parseNormalizedNamed(image);
  if (named.tag || named.digest) {
    throw new TsrunError('ERR_USAGE', "tag can't be used with --all-tags/-a", {
      hint: `pull ${familiarName({ ...named, tag: undefined, digest: undefined })} -a`,
      detail: { exitCode: 1 },
    });
  }
  const { remoteTags } = await import('../../app/pull.js');
  const tags = await remoteTags(await context(io), image);
  let fresh = false;
  for (const tag of tags) {
    const r = await pullAction(io, familiarName({ ...named, tag }), { ...opts, statusLine: false });
    fresh ||= r.fresh;
  }
  if (!opts.quiet)
    io.out.write(`Status: ${fresh ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarName(named)}\n`);
  io.out.write(`${repositoryName(named)}\n`);
}

async function imagesAction(
  io: CliIo,
  opts: { quiet?: boolean; trunc: boolean; digests?: boolean; format?: string; filter: string[]; reference?: string },
): Promise<void> {
  const { listImages } = await import('../../app/images.js');
  const rows = await listImages(await context(io), { filters: opts.filter, reference: opts.reference });
  const id = (d: string) => (opts.trunc ? d.slice(7, 19) : d);
  if (opts.quiet) {
    io.print([...new Set(rows.map((r) => r.id))].map((i) => `${id(i)}\n`).join(''));
    return;
  }
  const { renderList } = await import('../template.js');
  const { imageContext, imagesFormat, IMAGES_HEADERS } = await import('../views.js');
  const { clientConfig } = await import('./ps.js');
  const format = imagesFormat(
    opts.format || ((await clientConfig())['imagesFormat'] as string | undefined),
    Boolean(opts.digests),
  );
  io.print(
    renderList(format, rows, {
      toStruct: (r) => imageContext(r, opts.trunc),
      headers: IMAGES_HEADERS,
      defaultTable: imagesFormat(undefined, Boolean(opts.digests)),
    }),
  );
}

async function inspectAction(
  io: CliIo,
  names: string[],
  o: { format?: string; type?: string; size?: boolean },
  imagesOnly = false,
): Promise<void> {
  const { inspectAction: inspect } = await import('./inspect.js');
  return inspect(io, names, o, imagesOnly ? 'image' : undefined);
}

async function rmiAction(io: CliIo, images: string[], force: boolean): Promise<void> {
  const { removeImages } = await import('../../app/rmi.js');
  const { withDebug } = await import('../run-output.js');
  const { lines, errors } = await removeImages(await context(io, withDebug(io)), images, force);
  for (const l of lines) io.out.write('untagged' in l ? `Untagged: ${l.untagged}\n` : `Deleted: ${l.deleted}\n`);
  for (const e of errors) printError(e, io, false);
  // As Docker's CLI: 1 when any image could not be removed.
  if (errors.length > 0) process.exitCode = 1;
}
