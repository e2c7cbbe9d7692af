/**
 * `tsrun build`: Dockerfile → stages → steps → image (ARCHITECTURE.md, "build").
 *
 * This use case reads the input (a context directory or a tar on stdin, the Dockerfile),
 * checks the flags, hands the steps to the builder (build/builder.ts) and writes the image
 * record and tags through store/record.ts, the one function pull uses too. Progress is events on
 * `ctx.reporter`; Ctrl-C arrives as `o.signal`.
 *
 * Contracts: the store is held shared for the whole build (GC waits); every step root, runtime
 * container and network attachment is removed when its step ends, on failure and on abort too;
 * the image record and tags are written only at the end, so a failed build leaves no image (its
 * finished steps stay in the cache, as Docker's do). The context is read in place, never sent.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { Builder } from '../build/builder.js';
import { BuildCache } from '../build/cache.js';
import { openBuildInput } from '../build/context-input.js';
import { loadDockerignore } from '../build/copy.js';
import { parseDockerfile, type Stage } from '../build/dockerfile.js';
import { exportOutput, parseOutput, type OutputSpec } from '../build/output.js';
import { parseStepLimits, type StepLimits } from '../build/run-options.js';
import type { BuildNetwork } from '../build/run-step.js';
import { configOf, neededStages } from '../build/state.js';
import { parseBuildArgs } from '../build/evaluate.js';
import { formatReference, parseReference } from '../reference/reference.js';
import { parseLabels } from '../spec/env.js';
import { recordImage } from '../store/record.js';
import type { Store } from '../store/store.js';
import { callerEnvironment } from '../util/caller-env.js';
import type { AppContext } from './context.js';
import { openEnv, overlayDriver, runtimeFor } from './containers.js';
import { findOrPull } from './image-source.js';

export interface BuildOptions {
  /** The build context directory, or `-`: a tar context or a Dockerfile read from `stdin`. */
  context: string;
  stdin?: AsyncIterable<Buffer>;
  /** The Dockerfile's path (default: <context>/Dockerfile). */
  file?: string;
  /** The Dockerfile's text, when it does not come from a file (`-f -`). */
  dockerfileText?: string;
  tags?: string[];
  /** `--build-arg K=V` (or bare `K`: taken from the caller's environment). */
  buildArgs?: string[];
  target?: string;
  noCache?: boolean;
  /** Network for RUN steps: bridge (default), host or none. */
  network?: string;
  /** `--pull`: always pull base images. */
  pull?: boolean;
  /** `--label K=V` on the final image. */
  labels?: string[];
  /** `--secret id=…,src=FILE|env=VAR`: what RUN --mount=type=secret may read. */
  secrets?: Map<string, { file?: string; env?: string }>;
  platform?: string;
  /** RUN steps' `--add-host NAME:IP`, `--shm-size`, `--ulimit` (build/run-options.ts). */
  addHosts?: string[];
  shmSize?: string;
  ulimits?: string[];
  /** `--output type=local,dest=DIR|type=tar,dest=FILE` (build/output.ts). */
  output?: string;
  /** Aborted on Ctrl-C (the CLI's signal handlers): the build stops with exit status 130. */
  signal?: AbortSignal;
  /** RUN steps' stdout and stderr as they come (progress goes to `ctx.reporter` as events). */
  stepOutput?: (chunk: Buffer) => void;
}

export interface BuildResult {
  id: string;
  /** Full references the image was tagged with. */
  names: string[];
}

/**
 * `tsrun builder prune`: forget every cached build step (layers stay while images use them) and
 * every RUN --mount=type=cache directory (unless `keepMounts`: a build may be using them). Returns
 * how many step entries were removed.
 */
export async function pruneBuildCache(store: Store, o: { keepMounts?: boolean } = {}): Promise<number> {
  if (!o.keepMounts) await fs.rm(path.join(store.root, 'build-cache-mounts'), { recursive: true, force: true });
  return new BuildCache(path.join(store.root, 'build-cache')).clear();
}

export async function build(ctx: AppContext, o: BuildOptions): Promise<BuildResult> {
  const limits = parseStepLimits(o);
  const output = o.output !== undefined ? parseOutput(o.output) : undefined;
  const input = await openBuildInput(o);
  try {
    return await buildFrom(ctx, { ...o, limits }, output, input.contextDir, input.file, input.text);
  } finally {
    await input.cleanup();
  }
}

async function buildFrom(
  ctx: AppContext,
  o: BuildOptions & { limits: StepLimits },
  output: OutputSpec | undefined,
  contextDir: string,
  file: string,
  dockerfileText: string | undefined,
): Promise<BuildResult> {
  const text =
    dockerfileText ??
    (await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new TsrunError(
        'ERR_USAGE',
        `building: reading ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
        {
          hint: 'put a Dockerfile in the context, or name one with -f',
        },
      );
    }));
  const df = await parseDockerfile(text, dockerfileText !== undefined ? 'Dockerfile' : path.basename(file));
  let target = df.stages.length - 1;
  if (o.target !== undefined) {
    target = df.stages.findIndex((s) => s.name === o.target?.toLowerCase());
    if (target < 0)
      throw new TsrunError('ERR_USAGE', `building: no stage named "${o.target}"`, {
        hint: `stages: ${df.stages.map((s) => s.name ?? `#${s.index}`).join(', ')}`,
      });
  }
  const network = o.network ?? 'bridge';
  if (!/^(bridge|host|none|default)$/.test(network))
    throw new TsrunError('ERR_USAGE', `invalid --network "${network}"`, { hint: 'use bridge, host or none' });
  if (ctx.uid !== 0 && !ctx.rootless) {
    throw new TsrunError('ERR_ROOTLESS', 'an unprivileged user builds inside the rootless namespace only', {
      hint: 'run tsrun through its CLI, which enters it',
    });
  }
  const labels = parseLabels(o.labels ?? []);
  const needed = neededStages(df, target);
  const total = needed.reduce((n, i) => n + 1 + (df.stages[i] as Stage).instructions.length, 0);
  const env = await openEnv(ctx);
  const ignore = await loadDockerignore(contextDir);
  const builder = new Builder(
    {
      store: env.store,
      rootless: ctx.rootless,
      overlayDriver: overlayDriver(ctx),
      runDir: env.containers.sp.run,
      callerEnv: ctx.env,
      reporter: ctx.reporter,
      output: o.stepOutput ?? (() => {}),
      signal: o.signal ?? new AbortController().signal,
      runtime: () => runtimeFor(env, 'runc'),
      findImage: (reference, f) => findOrPull(ctx, env.store, reference, f),
    },
    df,
    { ...o, contextDir, ignore, network: (network === 'default' ? 'bridge' : network) as BuildNetwork },
    parseBuildArgs(o.buildArgs ?? [], callerEnvironment(ctx.env)),
    total,
  );
  return env.store.withSharedLock(async () => {
    await env.store.cleanTemp();
    const built = await builder.buildStages(target);
    const final = await builder.labelled(built, labels);
    const names = (o.tags ?? []).map((t) => {
      const ref = parseReference(t);
      if (ref.digest) throw new TsrunError('ERR_REFERENCE', `tagging the build as ${t}: a tag cannot contain a digest`);
      return formatReference(ref);
    });
    const { id } = await recordImage(
      env.store,
      Buffer.from(final.configBytes),
      final.layers,
      names,
      configOf(final).created,
    );
    if (output)
      await exportOutput(
        env.store,
        built.layers.map((l) => l.chainId),
        overlayDriver(ctx),
        output,
      );
    return { id, names };
  });
}
