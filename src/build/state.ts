/**
 * A build's states and the seam its step handlers work through (ARCHITECTURE.md, "build").
 *
 * A state is an image config plus its layers (build/cache.ts); each instruction derives the next
 * one. `StepHost` is what a step handler (step-run.ts, step-copy.ts) may ask of the builder
 * (builder.ts): the cache, a fresh root over a state's layers, other stages, the runtime.
 * `BuilderDeps` is what the use case (app/build.ts) hands the builder, so nothing here reaches up
 * into app/: the store, the overlay driver, how to find or pull an image, how to get a runtime,
 * where events and the RUN steps' output go, and the signal that interrupts the build.
 */
import { TsrunError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { ImageConfig } from '../oci/schemas.js';
import { parsePlatform } from '../registry/resolve.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import type { OverlayDriver } from '../snapshot/overlay.js';
import { DEFAULT_PATH_ENV } from '../spec/defaults.js';
import type { ImageRecord, LayerRecord } from '../store/images.js';
import type { Store } from '../store/store.js';
import type { BuildState } from './cache.js';
import type { SourceRoot } from './copy.js';
import type { Dockerfile, Stage } from './dockerfile.js';
import type { BuildNetwork, Mountpoint } from './run-step.js';
import type { StepLimits } from './run-options.js';
import type { StepRoot } from './step-root.js';

export interface BuilderDeps {
  store: Store;
  /** Inside the rootless namespace: overlayfs keeps its xattrs in user.overlay.*, no device nodes. */
  rootless: boolean;
  overlayDriver: OverlayDriver;
  /** The store's volatile directory (rootless: slirp4netns keeps its namespace there). */
  runDir: string;
  /** The caller's environment (secrets' env=VAR, the runtime's PATH). */
  callerEnv: NodeJS.ProcessEnv;
  /** Where the build's events go (build-step, build-cache-hit, …: src/events.ts). */
  reporter: Reporter;
  /** RUN steps' stdout and stderr, as they come (the container's output, not progress). */
  output: (chunk: Buffer) => void;
  /** Aborted on Ctrl-C: the running step is stopped and the build fails with exit status 130. */
  signal: AbortSignal;
  runtime(): Promise<OciRuntime>;
  /** An image by reference, from the store or pulled (`--pull`: always). */
  findImage(
    reference: string,
    o: { pull: 'always' | 'missing'; platform?: string },
  ): Promise<{ image: ImageRecord; configBytes: Buffer }>;
}

/** The build's options as the builder sees them (app/build.ts parses the rest). */
export interface BuilderOptions {
  contextDir: string;
  ignore: Pick<SourceRoot, 'ignores' | 'hasExceptions'>;
  network: BuildNetwork;
  limits: StepLimits;
  noCache?: boolean;
  pull?: boolean;
  platform?: string;
  secrets?: Map<string, { file?: string; env?: string }>;
}

/** What a step handler may ask of the builder. */
export interface StepHost {
  readonly deps: BuilderDeps;
  readonly o: BuilderOptions;
  readonly df: Dockerfile;
  /** The stages built so far, by index. */
  readonly built: ReadonlyMap<number, BuildState>;
  readonly xattrPrefix: 'trusted.overlay.' | 'user.overlay.';
  readonly unpackAs: { preserveOwnership: boolean; canMknod: boolean };
  checkAborted(): void;
  runtime(): Promise<OciRuntime>;
  cached(parent: BuildState, keyParts: readonly unknown[], execute: () => Promise<BuildState>): Promise<BuildState>;
  fsStep(
    parent: BuildState,
    work: (root: StepRoot) => Promise<Mountpoint[] | void>,
    skipEmpty?: boolean,
  ): Promise<LayerRecord | undefined>;
  withRoot<T>(state: BuildState, fn: (rootfs: string) => Promise<T>): Promise<T>;
  imageState(ref: string): Promise<BuildState>;
}

/**
 * The stage a reference names among those before stage `before`: a stage name (Docker matches
 * them case-insensitively) or, with `byIndex` (COPY --from), a number.
 */
export function stageRef(df: Dockerfile, ref: string, before: number, byIndex: boolean): number | undefined {
  const named = df.stages.findIndex((s, j) => j < before && s.name === ref.toLowerCase());
  if (named >= 0) return named;
  return byIndex && /^\d+$/.test(ref) && Number(ref) < before ? Number(ref) : undefined;
}

/** The stages `target` needs (its FROM and COPY --from chain), in file order. */
export function neededStages(df: Dockerfile, target: number): number[] {
  const need = new Set<number>();
  const visit = (i: number) => {
    if (need.has(i)) return;
    need.add(i);
    const s = df.stages[i] as Stage;
    const deps = [
      stageRef(df, s.base, i, false),
      ...s.instructions.map((ins) =>
        ins.keyword === 'COPY' && ins.flags.from !== undefined ? stageRef(df, ins.flags.from, i, true) : undefined,
      ),
    ];
    for (const d of deps) if (d !== undefined) visit(d);
  };
  visit(target);
  return [...need].sort((a, b) => a - b);
}

export function emptyState(platform: string): BuildState {
  const p = parsePlatform(platform);
  const config: ImageConfig = {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: { Env: [`PATH=${DEFAULT_PATH_ENV}`] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  return { configBytes: JSON.stringify(config), layers: [] };
}

export function configOf(s: BuildState): ImageConfig {
  return JSON.parse(s.configBytes) as ImageConfig;
}

/** The next state: `mutate` edits a copy of the config; `layer` is the step's layer, if any. */
export function derive(
  parent: BuildState,
  createdBy: string,
  mutate: (c: ImageConfig) => void,
  layer?: LayerRecord,
): BuildState {
  const c = configOf(parent);
  const now = new Date().toISOString();
  c.created = now;
  mutate(c);
  if (layer) c.rootfs = { type: 'layers', diff_ids: [...c.rootfs.diff_ids, layer.diffId] };
  c.history = [
    ...(c.history ?? []),
    { created: now, created_by: createdBy, comment: 'tsrun build', ...(layer ? {} : { empty_layer: true }) },
  ];
  return { configBytes: JSON.stringify(c), layers: layer ? [...parent.layers, layer] : parent.layers };
}

export function parseMode(s: string): number {
  if (!/^[0-7]{3,4}$/.test(s))
    throw new TsrunError('ERR_DOCKERFILE', `--chmod: invalid mode "${s}"`, { hint: 'use octal, e.g. --chmod=755' });
  return parseInt(s, 8);
}
