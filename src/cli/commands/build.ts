/**
 * `tsrun build` (and `image build`): flags as `docker build` has them; output as Docker's
 * classic builder prints it ("Step n/m : …", " ---> Using cache", "Successfully built …").
 * Pull progress for base images goes to stderr; the steps' own output to stdout.
 */
import type { Command } from 'commander';
import { explainListeners, explainOption } from '../explain/flag.js';
import { readFileSync, writeFileSync } from 'node:fs';
import type { CliIo } from '../output.js';
import { TsrunError } from '../../errors.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  cache: boolean;
  network?: string;
  pull?: boolean;
  quiet?: boolean;
  label: string[];
  platform?: string;
  secret: string[];
  iidfile?: string;
  progress: string;
  output?: string;
  addHost: string[];
  shmSize?: string;
  ulimit: string[];
}

/** `--secret id=NAME,src=FILE` (or `source=`), `id=NAME,env=VAR`; `id=NAME` alone reads $NAME. */
function parseSecrets(list: readonly string[]): Map<string, { file?: string; env?: string }> {
  const out = new Map<string, { file?: string; env?: string }>();
  for (const spec of list) {
    const kv = new Map(
      spec.split(',').map((f) => {
        const i = f.indexOf('=');
        return [i < 0 ? f : f.slice(0, i), i < 0 ? '' : f.slice(i + 1)] as [string, string];
      }),
    );
    const id = kv.get('id');
    const file = kv.get('src') ?? kv.get('source');
    if (!id)
      throw new TsrunError('ERR_USAGE', `invalid --secret "${spec}": it needs id=NAME`, {
        hint: 'use --secret id=NAME,src=FILE or --secret id=NAME,env=VAR',
      });
    out.set(id, file !== undefined ? { file } : { env: kv.get('env') ?? id });
  }
  return out;
}

export function registerBuildCommands(program: Command, io: CliIo): void {
  const buildCmd = (cmd: Command) =>
    cmd
      .description('Build an image from a Dockerfile')
      .argument(
        '<context>',
        'the build context directory (COPY and ADD read from it), or - : a tar context or a Dockerfile on stdin',
      )
      .option('-t, --tag <name[:tag]>', 'name the image (repeatable)', collect, [])
      .option('-f, --file <path>', 'the Dockerfile (default: CONTEXT/Dockerfile; "-" reads it from stdin)')
      .option('--build-arg <KEY=VALUE>', 'set a build argument (KEY alone takes it from here)', collect, [])
      .option('--target <stage>', 'build up to this stage')
      .option('--no-cache', 'do not use the build cache')
      .option('--network <mode>', 'network for RUN steps: bridge (default), host or none')
      .option('--pull', 'always pull base images')
      .option('-q, --quiet', 'print only the image id')
      .option('--label <key=value>', 'set a label on the image', collect, [])
      .option('--platform <os/arch[/variant]>', 'platform of the base images')
      .option(
        '--secret <id=NAME,src=FILE|env=VAR>',
        'a secret for RUN --mount=type=secret (repeatable; never stored in the image)',
        collect,
        [],
      )
      .option('--iidfile <file>', 'write the image ID to the file')
      .option('--progress <type>', 'auto, plain, tty (all print the steps) or quiet (as -q)', 'auto')
      .option(
        '-o, --output <type=local,dest=DIR|type=tar,dest=FILE>',
        "also export the image's filesystem (dest=- : a tar on stdout)",
      )
      .option('--add-host <host:ip>', 'add a line to /etc/hosts in RUN steps (repeatable)', collect, [])
      .option('--shm-size <size>', 'size of /dev/shm in RUN steps (default 64m)')
      .option('--ulimit <name=soft[:hard]>', 'resource limit for RUN steps (repeatable)', collect, [])
      .option(
        '--cache-from <image>',
        'accepted for compatibility: tsrun reuses its own local build cache only',
        collect,
        [],
      )
      .option('--load', 'accepted: the image is always stored locally')
      .option('--rm', 'accepted: intermediate containers are always removed')
      .option('--force-rm', 'accepted: intermediate containers are always removed')
      .action(async (context: string, flags: BuildFlags) => buildAction(io, context, flags));
  buildCmd(explainOption(program.command('build'), 'build', io));
  const image = program.commands.find((c) => c.name() === 'image');
  if (image) buildCmd(explainOption(image.command('build'), 'build', io));
  program
    .command('builder')
    .description('Manage the build cache')
    .command('prune')
    .description('Remove every cached build step')
    .option('-f, --force', 'do not ask for confirmation (tsrun never asks)')
    .action(async () => {
      const { processContext } = await import('../../app/context.js');
      const { Store } = await import('../../store/store.js');
      const { pruneBuildCache } = await import('../../app/build.js');
      const n = await pruneBuildCache(await Store.open(processContext({ root: io.globals().root }).root));
      io.out.write(`Deleted build cache objects: ${n}\n`);
    });
}

async function buildAction(io: CliIo, context: string, f: BuildFlags): Promise<void> {
  const { processContext } = await import('../../app/context.js');
  const progress = await import('../progress.js');
  const { fanout } = await import('../../events.js');
  const { familiarName, parseReference } = await import('../../reference/reference.js');
  if (!/^(auto|plain|tty|quiet)$/.test(f.progress)) {
    throw new TsrunError('ERR_USAGE', `invalid --progress "${f.progress}"`, { hint: 'use auto, plain, tty or quiet' });
  }
  const quiet = Boolean(f.quiet) || f.progress === 'quiet';
  // A tar on stdout (-o -): the steps are reported on stderr instead.
  const out = /^(-|.*\bdest=-)(,|$)/.test(f.output ?? '') ? io.err : io.out;
  const { buildTextReporter } = await import('../build-output.js');
  const listeners = [buildTextReporter(out, io.err, quiet), ...explainListeners()];
  if (io.globals().debug) listeners.push(progress.debugReporter(io.err));
  // Base images pulled during the build report their layers as `pull` does (Docker's builder too).
  else if (!quiet) listeners.push(progress.plainPullReporter(out, io.err));
  const ctx = processContext({ root: io.globals().root, reporter: fanout(...listeners) });
  const { build } = await import('../../app/build.js');
  // Ctrl-C (and SIGTERM) stop the build through its signal; rootless, a killed CLI (our parent,
  // src/rootless/enter.ts) stops it as SIGTERM would, rather than leaving it to run on for no
  // one with its RUN process, slirp4netns and mounts.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { onParentGone } = await import('../../rootless/parent.js');
  const unwatch = ctx.rootless ? onParentGone(onSignal) : () => {};
  const result = await build(ctx, {
    context,
    file: f.file === '-' ? undefined : f.file,
    dockerfileText: f.file === '-' ? readFileSync(0, 'utf8') : undefined,
    stdin: context === '-' ? process.stdin : undefined,
    tags: f.tag,
    buildArgs: f.buildArg,
    target: f.target,
    noCache: !f.cache,
    network: f.network,
    pull: f.pull,
    labels: f.label,
    platform: f.platform,
    secrets: parseSecrets(f.secret),
    addHosts: f.addHost,
    shmSize: f.shmSize,
    ulimits: f.ulimit,
    output: f.output,
    signal: abort.signal,
    stepOutput: (c) => {
      if (!quiet) out.write(c);
    },
  }).finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unwatch();
  });
  if (f.iidfile) writeFileSync(f.iidfile, result.id);
  if (quiet) {
    if (out === io.out) io.out.write(`${result.id}\n`);
    return;
  }
  out.write(`Successfully built ${result.id.slice(7, 19)}\n`);
  for (const n of result.names) out.write(`Successfully tagged ${familiarName(parseReference(n))}\n`);
}
