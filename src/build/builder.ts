/**
 * The builder: a Dockerfile's needed stages, built in order, each instruction a step from one
 * state to the next (ARCHITECTURE.md, "build"). Metadata instructions are pure
 * (evaluate.ts); RUN (step-run.ts) and COPY/ADD (step-copy.ts) and WORKDIR work in a fresh root
 * over the state's layers (step-root.ts) whose upper directory becomes a layer (layer.ts). Every
 * step goes through the cache first (cache.ts), so an unchanged rebuild does no work and yields
 * the same image id.
 *
 * Progress is events only (`build-step`, `build-cache-hit`, `build-run`, `build-step-done`, …
 * through `deps.reporter`); the CLI turns them into Docker's text. Contract: every step root,
 * runtime container and network attachment is gone when its step ends, on failure and on abort.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError, isTsrunError, wrapError } from '../errors.js';
import type { BuildEvent } from '../events.js';
import { ociLayerType } from '../oci/media-types.js';
import type { ContainerConfig } from '../oci/schemas.js';
import { formatPlatform, hostPlatform } from '../registry/resolve.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import type { LayerRecord } from '../store/images.js';
import type { Store } from '../store/store.js';
import { BuildCache, stateId, stepKey, type BuildState } from './cache.js';
import { commitLayer } from './layer.js';
import { mkdirInRoot } from './copy.js';
import { parseDockerfile, type Dockerfile, type Instruction, type Stage } from './dockerfile.js';
import { applyMetadata, declareArgs, scopeVars } from './evaluate.js';
import { removeMountpoints, type Mountpoint } from './run-step.js';
import { copyInstruction } from './step-copy.js';
import { finishStepRoot, prepareStepRoot, releaseStepRoot, type StepRoot } from './step-root.js';
import { runInstruction } from './step-run.js';
import {
  configOf,
  derive,
  emptyState,
  neededStages,
  stageRef,
  type BuilderDeps,
  type BuilderOptions,
  type StepHost,
} from './state.js';
import { expandWord } from './words.js';

/** A stage's running scope: its ARGs so far, the global ARGs, whether CMD was set. */
interface StageScope {
  stage: Stage;
  args: Map<string, string>;
  globals: Map<string, string>;
  flags: { cmdSet: boolean };
}

export class Builder implements StepHost {
  private readonly cache: BuildCache;
  private runtimeOnce?: Promise<OciRuntime>;
  private step = 0;
  readonly built = new Map<number, BuildState>();
  private readonly usedArgs = new Set<string>();

  constructor(
    readonly deps: BuilderDeps,
    readonly df: Dockerfile,
    readonly o: BuilderOptions,
    private readonly buildArgs: Map<string, string>,
    private readonly total: number,
  ) {
    this.cache = new BuildCache(path.join(deps.store.root, 'build-cache'));
  }

  private get store(): Store {
    return this.deps.store;
  }

  get xattrPrefix(): 'trusted.overlay.' | 'user.overlay.' {
    return this.deps.rootless ? 'user.overlay.' : 'trusted.overlay.';
  }

  get unpackAs(): { preserveOwnership: boolean; canMknod: boolean } {
    return { preserveOwnership: true, canMknod: !this.deps.rootless };
  }

  /** The runtime RUN steps use, located once. */
  runtime(): Promise<OciRuntime> {
    this.runtimeOnce ??= this.deps.runtime();
    return this.runtimeOnce;
  }

  checkAborted(): void {
    if (this.deps.signal.aborted)
      throw new TsrunError('ERR_BUILD_STEP', 'build interrupted', { detail: { exitCode: 130 } });
  }

  private async layersPresent(s: BuildState): Promise<boolean> {
    for (const l of s.layers) {
      if (!(await this.store.hasLayer(l.chainId)) || !(await this.store.hasBlob(l.digest))) return false;
    }
    return true;
  }

  /** A step through the cache: a hit returns the stored state, a miss runs `execute` and stores it. */
  async cached(
    parent: BuildState,
    keyParts: readonly unknown[],
    execute: () => Promise<BuildState>,
  ): Promise<BuildState> {
    const key = stepKey(parent, keyParts);
    // Under the step's lock: a build of the same step in another process waits and then hits.
    return this.cache.withKeyLock(key, async () => {
      if (!this.o.noCache) {
        const hit = await this.cache.get(key);
        if (hit && (await this.layersPresent(hit))) {
          this.deps.reporter.emit({ type: 'build-cache-hit', key, id: stateId(hit) });
          return hit;
        }
      }
      const next = await execute();
      await this.cache.put(key, next);
      return next;
    });
  }

  /** Run `work` in a fresh root over `parent`'s layers; its changes become a layer (or none, with `skipEmpty`). */
  async fsStep(
    parent: BuildState,
    work: (root: StepRoot) => Promise<Mountpoint[] | void>,
    skipEmpty = false,
  ): Promise<LayerRecord | undefined> {
    const root = await prepareStepRoot(
      this.store,
      parent.layers.map((l) => l.chainId),
      this.deps.overlayDriver,
    );
    try {
      const mountpoints = await work(root);
      await finishStepRoot(root);
      if (mountpoints) await removeMountpoints(root.upper, mountpoints);
      if (skipEmpty && (await fs.readdir(root.upper)).length === 0) return undefined;
      const parentChain = parent.layers[parent.layers.length - 1]?.chainId;
      return await commitLayer(this.store, root.upper, parentChain, {
        overlayXattrPrefix: this.xattrPrefix,
        unpack: this.unpackAs,
        linkFiles: true,
      });
    } finally {
      await releaseStepRoot(root);
    }
  }

  /** Mount `state` read-only-in-spirit for reading (COPY --from); `fn` gets its root. */
  async withRoot<T>(state: BuildState, fn: (rootfs: string) => Promise<T>): Promise<T> {
    const root = await prepareStepRoot(
      this.store,
      state.layers.map((l) => l.chainId),
      this.deps.overlayDriver,
    );
    try {
      return await fn(root.rootfs);
    } finally {
      await releaseStepRoot(root);
    }
  }

  async buildStages(target: number): Promise<BuildState> {
    const globals = new Map<string, string>();
    for (const ins of this.df.globalArgs) {
      for (const [k, v] of declareArgs(ins, globals, this.df.escape, this.buildArgs, new Map())) {
        this.usedArgs.add(k);
        if (v !== undefined) globals.set(k, v);
      }
    }
    for (const i of neededStages(this.df, target)) {
      this.built.set(i, await this.buildStage(this.df.stages[i] as Stage, globals));
    }
    for (const k of this.buildArgs.keys()) {
      if (!this.usedArgs.has(k)) this.deps.reporter.emit({ type: 'build-unused-arg', name: k });
    }
    return this.built.get(target) as BuildState;
  }

  private async baseState(stage: Stage, globals: Map<string, string>): Promise<BuildState> {
    const base = expandWord(stage.base, globals, this.df.escape);
    const platform =
      stage.platform !== undefined ? expandWord(stage.platform, globals, this.df.escape) : this.o.platform;
    const earlier = stageRef(this.df, base, stage.index, false);
    if (earlier !== undefined) return this.built.get(earlier) as BuildState;
    if (base === 'scratch') return emptyState(platform ?? formatPlatform(hostPlatform()));
    const { image, configBytes } = await this.deps.findImage(base, {
      pull: this.o.pull ? 'always' : 'missing',
      platform,
    });
    const layers = image.layers.map((l) => ({ ...l, mediaType: ociLayerType(l.mediaType) }));
    return { configBytes: configBytes.toString('utf8'), layers };
  }

  private async buildStage(stage: Stage, globals: Map<string, string>): Promise<BuildState> {
    this.deps.reporter.emit({ type: 'build-step', step: ++this.step, total: this.total, instruction: stage.from.text });
    let state = await this.baseState(stage, globals);
    const c = configOf(state);
    const triggers = await this.triggers(c.config?.OnBuild ?? []);
    if (c.config?.OnBuild && (triggers.length > 0 || stage.instructions.length > 0)) {
      // A new stage starts without the base's ONBUILD triggers (Docker clears them, after running
      // them). No history entry and no new time: the state stays a pure function of the base.
      delete c.config.OnBuild;
      state = { ...state, configBytes: JSON.stringify(c) };
    }
    const scope: StageScope = { stage, args: new Map(), globals, flags: { cmdSet: false } };
    if (triggers.length > 0) this.deps.reporter.emit({ type: 'build-triggers', count: triggers.length });
    for (const ins of triggers)
      state = await this.announced(scope, ins, state, {
        type: 'build-trigger',
        instruction: ins.text,
      });
    this.deps.reporter.emit({ type: 'build-step-done', id: stateId(state) });
    for (const ins of stage.instructions) {
      state = await this.announced(scope, ins, state, {
        type: 'build-step',
        step: ++this.step,
        total: this.total,
        instruction: ins.text,
      });
      this.deps.reporter.emit({ type: 'build-step-done', id: stateId(state) });
    }
    return state;
  }

  /** One instruction, announced by `event`; unexpected errors name it as Docker's text does. */
  private async announced(
    scope: StageScope,
    ins: Instruction,
    state: BuildState,
    event: Extract<BuildEvent, { type: 'build-step' | 'build-trigger' }>,
  ): Promise<BuildState> {
    this.checkAborted();
    this.deps.reporter.emit(event);
    try {
      return await this.instruction(scope, ins, state);
    } catch (err) {
      if (isTsrunError(err)) throw err;
      const title =
        event.type === 'build-step'
          ? `Step ${event.step}/${event.total} : ${event.instruction}`
          : `---> Running trigger: ${event.instruction}`;
      throw wrapError(title, err, 'ERR_BUILD_STEP');
    }
  }

  /** A base image's ONBUILD triggers as instructions (Docker forbids ONBUILD, FROM and MAINTAINER there). */
  private async triggers(onBuild: readonly string[]): Promise<Instruction[]> {
    if (onBuild.length === 0) return [];
    const parsed = await parseDockerfile(`FROM scratch\n${onBuild.join('\n')}\n`, 'ONBUILD trigger');
    const list = (parsed.stages[0] as Stage).instructions;
    if (parsed.stages.length > 1)
      throw new TsrunError('ERR_DOCKERFILE', 'the base image has an ONBUILD FROM trigger, which is not allowed');
    for (const t of list) {
      if (t.keyword === 'ONBUILD' || t.keyword === 'FROM' || t.keyword === 'MAINTAINER') {
        throw new TsrunError('ERR_DOCKERFILE', `the base image's ONBUILD trigger "${t.text}" is not allowed`, {
          hint: 'ONBUILD may not trigger ONBUILD, FROM or MAINTAINER',
        });
      }
    }
    return list;
  }

  private async instruction(scope: StageScope, ins: Instruction, state: BuildState): Promise<BuildState> {
    const { stage, args, globals, flags } = scope;
    const config: ContainerConfig = configOf(state).config ?? {};
    const vars = scopeVars(config, args);
    const esc = this.df.escape;
    switch (ins.keyword) {
      case 'ARG':
        for (const [k, v] of declareArgs(ins, vars, esc, this.buildArgs, globals)) {
          this.usedArgs.add(k);
          if (v !== undefined) args.set(k, v);
        }
        return state;
      case 'RUN':
        return runInstruction(this, ins, state, config, args);
      case 'COPY':
      case 'ADD':
        return copyInstruction(this, stage, ins, state, config, vars);
      case 'WORKDIR': {
        const next = applyMetadata(ins, config, vars, esc, flags).config;
        const dir = next.WorkingDir as string;
        return this.cached(state, ['WORKDIR', dir], async () => {
          // Reproducible: new directories take the parent image's time; their parent keeps its own.
          const time = new Date(configOf(state).created ?? 0);
          const layer = await this.fsStep(
            state,
            async (root) => {
              let parent: { host: string; atime: Date; mtime: Date } | undefined;
              const made = await mkdirInRoot(root.rootfs, dir, { uid: 0, gid: 0 }, `WORKDIR ${dir}`, async (host) => {
                const st = await fs.lstat(host);
                parent = { host, atime: st.atime, mtime: st.mtime };
              });
              for (const d of made.created.reverse()) await fs.utimes(d, time, time);
              if (parent) await fs.utimes(parent.host, parent.atime, parent.mtime);
            },
            true,
          );
          return derive(
            state,
            `WORKDIR ${dir}`,
            (c) => {
              c.config = next;
            },
            layer,
          );
        });
      }
      default: {
        const r = applyMetadata(ins, config, vars, esc, flags);
        return this.cached(state, [ins.keyword, r], async () =>
          derive(state, ins.text, (c) => {
            c.config = r.config;
            if (r.author !== undefined) c.author = r.author;
          }),
        );
      }
    }
  }

  async imageState(ref: string): Promise<BuildState> {
    const { image, configBytes } = await this.deps.findImage(ref, { pull: 'missing', platform: this.o.platform });
    return { configBytes: configBytes.toString('utf8'), layers: image.layers };
  }

  /** `--label`s on the final image, as a step of their own (cached like any other). */
  async labelled(built: BuildState, labels: Record<string, string>): Promise<BuildState> {
    if (Object.keys(labels).length === 0) return built;
    return this.cached(built, ['LABEL', labels], async () =>
      derive(
        built,
        `LABEL ${Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
        (c) => {
          c.config = { ...(c.config ?? {}), Labels: { ...(c.config?.Labels ?? {}), ...labels } };
        },
      ),
    );
  }
}
