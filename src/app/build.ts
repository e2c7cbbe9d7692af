/**
 * `tsrun build`: Dockerfile → stages → steps → image (ARCHITECTURE.md, "build").
 *
 * The Dockerfile is parsed (build/dockerfile.ts); only the stages the target needs are built, in
 * order. Each instruction is a step that turns a state (an image config plus its layers) into the
 * next: metadata instructions are pure (build/evaluate.ts); RUN runs a container over the
 * state's layers (build/run-step.ts); COPY/ADD/WORKDIR write into a fresh overlay upper
 * (build/copy.ts); a filesystem step's upper directory becomes a layer (build/layer.ts). Every
 * step is looked up in the cache first (build/cache.ts), so an unchanged rebuild does no work
 * and yields the same image id.
 *
 * Contracts: the store is held shared for the whole build (GC waits); every step root, runtime
 * container and network attachment is removed when its step ends, on failure and on Ctrl-C too;
 * the image record and tags are written only at the end, so a failed build leaves no image (its
 * finished steps stay in the cache, as Docker's do). The context is read in place, never sent.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError, isTsrunError, wrapError } from '../errors.js';
import { ociLayerType } from '../oci/media-types.js';
import type { ContainerConfig, ImageConfig } from '../oci/schemas.js';
import { formatReference, parseReference } from '../reference/reference.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../registry/resolve.js';
import type { LayerRecord } from '../store/images.js';
import type { Store } from '../store/store.js';
import { readFileInRoot } from '../snapshot/rootfs-copy.js';
import { decompress } from '../layers/compression.js';
import { downloadUrls, heredocFiles } from '../build/sources.js';
import { archiveKind } from '../layers/sniff.js';
import { unpackTar } from '../layers/unpack.js';
import { parseDockerfile, type Dockerfile, type Instruction, type Stage } from '../build/dockerfile.js';
import { applyMetadata, commandOf, declareArgs, resolveChown, scopeVars } from '../build/evaluate.js';
import { expandWord, expandWords } from '../build/words.js';
import { BuildCache, stateId, stepKey, type BuildState } from '../build/cache.js';
import {
  applySources,
  collectSources,
  hashSources,
  loadDockerignore,
  mkdirInRoot,
  type Source,
  type SourceRoot,
} from '../build/copy.js';
import { finishStepRoot, prepareStepRoot, releaseStepRoot, type StepRoot } from '../build/step-root.js';
import { removeMountpoints, runStep, type BuildNetwork, type Mountpoint } from '../build/run-step.js';
import { parseRunMount, type RunMount } from '../build/mounts.js';
import { prepareRunMounts } from '../build/run-mounts.js';
import { withFileLock } from '../native/index.js';
import { commitLayer } from '../build/layer.js';
import { recordImage } from '../store/record.js';
import { DEFAULT_PATH_ENV } from '../spec/defaults.js';
import { parseLabels } from '../spec/env.js';
import type { AppContext } from './context.js';
import { openEnv, overlayDriver, runtimeFor, type Env } from './containers.js';
import { findOrPull } from './image-source.js';
import { openBuildInput } from '../build/context-input.js';
import { exportOutput, parseOutput, type OutputSpec } from '../build/output.js';
import { parseStepLimits, type StepLimits } from '../build/run-options.js';
import type { OciRuntime } from '../runtime/oci-runtime.js';
import { callerEnvironment } from '../util/caller-env.js';
import { onParentGone } from '../rootless/parent.js';

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
}

/** Where the build's progress goes: Docker's "Step n/m" lines and the running steps' output. */
export interface BuildIo {
  line(text: string): void;
  output(chunk: Buffer): void;
  warn(text: string): void;
}

export interface BuildResult {
  id: string;
  /** Full references the image was tagged with. */
  names: string[];
}

const short = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 12);

/**
 * The stage a reference names among those before stage `before`: a stage name (Docker matches
 * them case-insensitively) or, with `byIndex` (COPY --from), a number.
 */
function stageRef(df: Dockerfile, ref: string, before: number, byIndex: boolean): number | undefined {
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

function parseBuildArgs(list: readonly string[], callerEnv: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of list) {
    const i = a.indexOf('=');
    if (i === 0)
      throw new TsrunError('ERR_USAGE', `invalid --build-arg "${a}"`, { hint: 'use --build-arg NAME=VALUE' });
    if (i > 0) out.set(a.slice(0, i), a.slice(i + 1));
    else if (callerEnv[a] !== undefined) out.set(a, callerEnv[a] as string);
  }
  return out;
}

function emptyState(platform: string): BuildState {
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

function configOf(s: BuildState): ImageConfig {
  return JSON.parse(s.configBytes) as ImageConfig;
}

/** The next state: `mutate` edits a copy of the config; `layer` is the step's layer, if any. */
function derive(
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

function parseMode(s: string): number {
  if (!/^[0-7]{3,4}$/.test(s))
    throw new TsrunError('ERR_DOCKERFILE', `--chmod: invalid mode "${s}"`, { hint: 'use octal, e.g. --chmod=755' });
  return parseInt(s, 8);
}

class Builder {
  private readonly cache: BuildCache;
  private runtime?: OciRuntime;
  private step = 0;
  private readonly built = new Map<number, BuildState>();
  private readonly usedArgs = new Set<string>();
  private readonly abort = new AbortController();

  constructor(
    private readonly env: Env,
    private readonly df: Dockerfile,
    private readonly o: BuildOptions & {
      contextDir: string;
      ignore: Pick<SourceRoot, 'ignores' | 'hasExceptions'>;
      network: BuildNetwork;
      limits: StepLimits;
    },
    private readonly buildArgs: Map<string, string>,
    private readonly total: number,
    private readonly io: BuildIo,
  ) {
    this.cache = new BuildCache(path.join(env.store.root, 'build-cache'));
  }

  get store(): Store {
    return this.env.store;
  }

  /** Inside the rootless namespace: overlayfs keeps its xattrs in user.overlay.*, no device nodes. */
  private get rootless(): boolean {
    return this.env.ctx.rootless;
  }

  private get xattrPrefix(): 'trusted.overlay.' | 'user.overlay.' {
    return this.rootless ? 'user.overlay.' : 'trusted.overlay.';
  }

  private get unpackAs(): { preserveOwnership: boolean; canMknod: boolean } {
    return { preserveOwnership: true, canMknod: !this.rootless };
  }

  interrupt(): void {
    this.abort.abort();
  }

  private checkAborted(): void {
    if (this.abort.signal.aborted)
      throw new TsrunError('ERR_BUILD_STEP', 'build interrupted', { detail: { exitCode: 130 } });
  }

  private async layersPresent(s: BuildState): Promise<boolean> {
    for (const l of s.layers) {
      if (!(await this.store.hasLayer(l.chainId)) || !(await this.store.hasBlob(l.digest))) return false;
    }
    return true;
  }

  /** A step through the cache: a hit returns the stored state, a miss runs `execute` and stores it. */
  private async cached(
    parent: BuildState,
    keyParts: readonly unknown[],
    execute: () => Promise<BuildState>,
  ): Promise<BuildState> {
    const key = stepKey(parent, keyParts);
    if (!this.o.noCache) {
      const hit = await this.cache.get(key);
      if (hit && (await this.layersPresent(hit))) {
        this.io.line(' ---> Using cache');
        return hit;
      }
    }
    const next = await execute();
    await this.cache.put(key, next);
    return next;
  }

  /** Run `work` in a fresh root over `parent`'s layers; its changes become a layer (or none, with `skipEmpty`). */
  private async fsStep(
    parent: BuildState,
    work: (root: StepRoot) => Promise<Mountpoint[] | void>,
    skipEmpty = false,
  ): Promise<LayerRecord | undefined> {
    const root = await prepareStepRoot(
      this.store,
      parent.layers.map((l) => l.chainId),
      overlayDriver(this.env.ctx),
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
  private async withRoot<T>(state: BuildState, fn: (rootfs: string) => Promise<T>): Promise<T> {
    const root = await prepareStepRoot(
      this.store,
      state.layers.map((l) => l.chainId),
      overlayDriver(this.env.ctx),
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
      if (!this.usedArgs.has(k)) this.io.warn(`[Warning] One or more build-args [${k}] were not consumed`);
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
    const notice = {
      write: (t: string) => {
        this.io.line(t.trimEnd());
        return true;
      },
    };
    const { image, configBytes } = await findOrPull(this.env.ctx, this.store, base, {
      pull: this.o.pull ? 'always' : 'missing',
      platform,
      err: notice,
    });
    const layers = image.layers.map((l) => ({ ...l, mediaType: ociLayerType(l.mediaType) }));
    return { configBytes: configBytes.toString('utf8'), layers };
  }

  private async buildStage(stage: Stage, globals: Map<string, string>): Promise<BuildState> {
    this.io.line(`Step ${++this.step}/${this.total} : ${stage.from.text}`);
    let state = await this.baseState(stage, globals);
    const c = configOf(state);
    const triggers = await this.triggers(c.config?.OnBuild ?? []);
    if (c.config?.OnBuild && (triggers.length > 0 || stage.instructions.length > 0)) {
      // A new stage starts without the base's ONBUILD triggers (Docker clears them, after running
      // them). No history entry and no new time: the state stays a pure function of the base.
      delete c.config.OnBuild;
      state = { ...state, configBytes: JSON.stringify(c) };
    }
    const args = new Map<string, string>();
    const flags = { cmdSet: false };
    if (triggers.length > 0)
      this.io.line(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}`);
    for (const ins of triggers)
      state = await this.announced(stage, ins, state, args, globals, flags, ` ---> Running trigger: ${ins.text}`);
    this.io.line(` ---> ${short(stateId(state))}`);
    for (const ins of stage.instructions) {
      state = await this.announced(
        stage,
        ins,
        state,
        args,
        globals,
        flags,
        `Step ${++this.step}/${this.total} : ${ins.text}`,
      );
      this.io.line(` ---> ${short(stateId(state))}`);
    }
    return state;
  }

  /** One instruction, announced by `title`; unexpected errors name it. */
  private async announced(
    stage: Stage,
    ins: Instruction,
    state: BuildState,
    args: Map<string, string>,
    globals: Map<string, string>,
    flags: { cmdSet: boolean },
    title: string,
  ): Promise<BuildState> {
    this.checkAborted();
    this.io.line(title);
    try {
      return await this.instruction(stage, ins, state, args, globals, flags);
    } catch (err) {
      if (isTsrunError(err)) throw err;
      throw wrapError(title.trim(), err, 'ERR_BUILD_STEP');
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

  private async instruction(
    stage: Stage,
    ins: Instruction,
    state: BuildState,
    args: Map<string, string>,
    globals: Map<string, string>,
    flags: { cmdSet: boolean },
  ): Promise<BuildState> {
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
        return this.run(ins, state, config, args);
      case 'COPY':
      case 'ADD':
        return this.copy(stage, ins, state, config, vars);
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

  private async run(
    ins: Instruction,
    state: BuildState,
    config: ContainerConfig,
    args: Map<string, string>,
  ): Promise<BuildState> {
    const argv = commandOf(ins, config);
    const argEnv = [...args].map(([k, v]) => `${k}=${v}`);
    const network = ins.flags.network ?? 'default';
    if (!/^(host|none|default)$/.test(network))
      throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: RUN --network must be default, none or host`);
    const net = network === 'default' ? this.o.network : (network as BuildNetwork);
    const createdBy = ins.json ? `RUN ${JSON.stringify(argv)}` : `RUN ${argv.join(' ')}`;
    const mounts = (ins.mounts ?? []).map((m) => parseRunMount(m, config.WorkingDir || '/', ins.line));
    // Bind sources are read once: for the key (by content) and, on a miss, for the copy.
    const binds = new Map<RunMount, Source[]>();
    for (const m of mounts) {
      if (m.type === 'bind')
        binds.set(
          m,
          await collectSources(
            { dir: this.o.contextDir, ...this.o.ignore },
            [m.source],
            `RUN --mount source=${m.source}`,
          ),
        );
    }
    // What the mounts add to the key: bind sources by content; never a secret's value.
    const mountKey = await Promise.all(
      mounts.map(async (m) =>
        m.type === 'bind'
          ? { ...m, content: await hashSources(binds.get(m) ?? [], false) }
          : m.type === 'secret'
            ? { type: m.type, id: m.id, target: m.target }
            : m,
      ),
    );
    return this.cached(state, ['RUN', argv, argEnv, net, mountKey], async () => {
      this.runtime ??= await runtimeFor(this.env, 'runc');
      const runtime = this.runtime;
      const layer = await this.fsStep(state, async (root) => {
        const id = randomBytes(32).toString('hex');
        this.io.line(` ---> Running in ${id.slice(0, 12)}`);
        const prepared = await prepareRunMounts(mounts, binds, root.dir, {
          storeRoot: this.store.root,
          ...(this.o.secrets ? { secrets: this.o.secrets } : {}),
          env: this.env.ctx.env,
        });
        const go = () =>
          runStep({
            id,
            runtime,
            root,
            storeRoot: this.store.root,
            runDir: this.env.containers.sp.run,
            rootless: this.rootless,
            argv,
            config,
            argEnv,
            network: net,
            extraMounts: prepared.mounts,
            callerEnv: this.env.ctx.env,
            output: (c) => this.io.output(c),
            signal: this.abort.signal,
            limits: this.o.limits,
          });
        // sharing=locked: one build at a time uses that cache.
        const r = await prepared.locks.reduce<() => ReturnType<typeof go>>(
          (inner, lock) => () => withFileLock(lock, 'ex', inner),
          go,
        )();
        this.checkAborted();
        if (r.exitCode !== 0) {
          throw new TsrunError(
            'ERR_BUILD_STEP',
            `The command '${argv.join(' ')}' returned a non-zero code: ${r.exitCode}`,
            { detail: { exitCode: 1 } },
          );
        }
        return r.mountpoints;
      });
      return derive(state, createdBy, () => {}, layer);
    });
  }

  private async copy(
    stage: Stage,
    ins: Instruction,
    state: BuildState,
    config: ContainerConfig,
    vars: Map<string, string>,
  ): Promise<BuildState> {
    const esc = this.df.escape;
    const heredoc = ins.heredoc
      ? await heredocFiles(this.store.tempPath('heredoc'), ins, vars, this.df.escape)
      : undefined;
    let remote: { dir: string; names: string[] } | undefined;
    try {
      const words = heredoc
        ? heredoc.words
        : ins.json
          ? ins.json.map((w) => expandWord(w, vars, esc))
          : expandWords(ins.args, vars, esc);
      if (words.length < 2)
        throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: ${ins.keyword} needs a source and a destination`);
      const dest = words[words.length - 1] as string;
      const what = heredoc ? ins.text : `${ins.keyword} ${words.join(' ')}`;
      const isUrl = (p: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(p);
      const urls = ins.keyword === 'ADD' ? words.slice(0, -1).filter(isUrl) : [];
      const patterns = words.slice(0, -1).filter((p) => !urls.includes(p));
      if (ins.keyword === 'COPY' && words.slice(0, -1).some(isUrl)) {
        throw new TsrunError('ERR_DOCKERFILE', `line ${ins.line}: COPY cannot fetch URLs`, {
          hint: 'use ADD for a URL',
        });
      }
      if (urls.length > 0) remote = await downloadUrls(this.store.tempPath('add-url'), urls, ins.line);
      const chown = ins.flags.chown !== undefined ? expandWord(ins.flags.chown, vars, esc) : undefined;
      const chmod = ins.flags.chmod !== undefined ? parseMode(expandWord(ins.flags.chmod, vars, esc)) : undefined;
      const fromRef = ins.flags.from !== undefined ? expandWord(ins.flags.from, vars, esc) : undefined;
      const workdir = config.WorkingDir || '/';
      const key = ['COPY', ins.keyword, dest, workdir, chown, chmod];

      const apply = (sources: Source[], keepOwners: boolean) => async (root: StepRoot) => {
        const owner =
          chown !== undefined
            ? resolveChown(
                chown,
                await readFileInRoot(root.rootfs, '/etc/passwd'),
                await readFileInRoot(root.rootfs, '/etc/group'),
              )
            : undefined;
        // ADD extracts local archives only (never heredocs or downloads, as Docker).
        const local = (src: Source) => !heredoc && !(remote && src.entries[0]?.abs.startsWith(`${remote.dir}/`));
        const expanded =
          ins.keyword === 'ADD' ? await this.extractArchives(sources, local) : { sources, cleanup: async () => {} };
        try {
          await applySources(root.rootfs, expanded.sources, { dest, workdir, owner, keepOwners, chmod, what });
        } finally {
          await expanded.cleanup();
        }
      };

      if (fromRef !== undefined && !heredoc) {
        if (/^\d+$/.test(fromRef) && Number(fromRef) >= stage.index) {
          throw new TsrunError(
            'ERR_DOCKERFILE',
            `line ${ins.line}: COPY --from=${fromRef} refers to a stage that is not before this one`,
          );
        }
        const idx = stageRef(this.df, fromRef, stage.index, true);
        const source = idx !== undefined ? (this.built.get(idx) as BuildState) : await this.imageState(fromRef);
        return await this.cached(state, [...key, 'from', stateId(source), patterns], async () =>
          this.withRoot(source, async (srcRoot) => {
            const sources = await collectSources({ dir: srcRoot }, patterns, what);
            const layer = await this.fsStep(state, apply(sources, true));
            return derive(state, `${what} (from ${fromRef})`, () => {}, layer);
          }),
        );
      }
      const root: SourceRoot = heredoc ? { dir: heredoc.dir } : { dir: this.o.contextDir, ...this.o.ignore };
      const sources = [
        ...(patterns.length > 0 ? await collectSources(root, patterns, what) : []),
        ...(remote ? await collectSources({ dir: remote.dir }, remote.names, what) : []),
      ];
      const digest = await hashSources(sources, false);
      return await this.cached(state, [...key, heredoc ? 'heredoc' : 'context', digest], async () => {
        const layer = await this.fsStep(state, apply(sources, false));
        return derive(
          state,
          `${ins.keyword} ${heredoc ? 'heredoc ' : ''}${digest.slice(0, 19)} in ${dest}`,
          () => {},
          layer,
        );
      });
    } finally {
      for (const d of [heredoc?.dir, remote?.dir]) if (d) await fs.rm(d, { recursive: true, force: true });
    }
  }

  private async imageState(ref: string): Promise<BuildState> {
    const { image, configBytes } = await findOrPull(this.env.ctx, this.store, ref, {
      pull: 'missing',
      platform: this.o.platform,
    });
    return { configBytes: configBytes.toString('utf8'), layers: image.layers };
  }

  /** ADD: tar sources (by content) are unpacked into temporary trees whose contents are copied. */
  private async extractArchives(
    sources: Source[],
    extractable: (s: Source) => boolean,
  ): Promise<{ sources: Source[]; cleanup: () => Promise<void> }> {
    const temps: string[] = [];
    const out: Source[] = [];
    for (const s of sources) {
      const top = s.entries[0];
      const kind = top && top.st.isFile() && extractable(s) ? await archiveKind(top.abs) : undefined;
      if (!top || kind === undefined) {
        out.push(s);
        continue;
      }
      const dir = this.store.tempPath('add');
      temps.push(dir);
      await fs.mkdir(dir, { mode: 0o755 });
      await unpackTar(decompress(createReadStream(top.abs), kind), dir, {
        ...this.unpackAs,
        overlayXattrPrefix: this.xattrPrefix,
      });
      out.push(...(await collectSources({ dir }, ['.'], `ADD ${s.name}`)));
    }
    return {
      sources: out,
      cleanup: async () => {
        for (const t of temps) await fs.rm(t, { recursive: true, force: true });
      },
    };
  }

  /** The image: config blob, OCI manifest, record, tags. */
  async commit(built: BuildState, labels: Record<string, string>, tags: string[]): Promise<BuildResult> {
    let state = built;
    if (Object.keys(labels).length > 0) {
      state = await this.cached(state, ['LABEL', labels], async () =>
        derive(
          state,
          `LABEL ${Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
          (c) => {
            c.config = { ...(c.config ?? {}), Labels: { ...(c.config?.Labels ?? {}), ...labels } };
          },
        ),
      );
    }
    const names = tags.map((t) => {
      const ref = parseReference(t);
      if (ref.digest) throw new TsrunError('ERR_REFERENCE', `tagging the build as ${t}: a tag cannot contain a digest`);
      return formatReference(ref);
    });
    const { id } = await recordImage(
      this.store,
      Buffer.from(state.configBytes),
      state.layers,
      names,
      configOf(state).created,
    );
    return { id, names };
  }
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

export async function build(ctx: AppContext, o: BuildOptions, io: BuildIo): Promise<BuildResult> {
  const limits = parseStepLimits(o);
  const output = o.output !== undefined ? parseOutput(o.output) : undefined;
  const input = await openBuildInput(o);
  try {
    return await buildFrom(ctx, { ...o, limits }, output, input.contextDir, input.file, input.text, io);
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
  io: BuildIo,
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
    env,
    df,
    {
      ...o,
      contextDir,
      ignore,
      network: (network === 'default' ? 'bridge' : network) as BuildNetwork,
    },
    parseBuildArgs(o.buildArgs ?? [], callerEnvironment(ctx.env)),
    total,
    io,
  );
  const onSignal = () => builder.interrupt();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Rootless: a killed CLI (our parent, src/rootless/enter.ts) stops the build as SIGTERM would,
  // rather than leaving it to run on for no one with its RUN process, slirp4netns and mounts.
  const unwatch = ctx.rootless ? onParentGone(onSignal) : () => {};
  try {
    return await env.store.withSharedLock(async () => {
      await env.store.cleanTemp();
      const built = await builder.buildStages(target);
      const result = await builder.commit(built, labels, o.tags ?? []);
      if (output)
        await exportOutput(
          env.store,
          built.layers.map((l) => l.chainId),
          overlayDriver(ctx),
          output,
        );
      return result;
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unwatch();
  }
}
