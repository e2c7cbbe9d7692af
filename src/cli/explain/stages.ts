/**
 * `--explain`'s stages: for each command that does work, the fixed list of stages it walks
 * through (so `[n/N]` is known before the first event), and which stage each event belongs to.
 *
 * Contract: the lists and the stage keys are part of the json schema (docs/explain-schema.md,
 * `tsrun.explain/v1`): a key is never renamed or reused for something else; a new stage is a new
 * key. An event that belongs to no stage of the command (a warning, a debug line, a type this
 * module does not know yet) is told where the walk-through is (render.ts's generic line), so a
 * new event never breaks an explanation.
 */
import type { TsrunEvent } from '../../events.js';

export type ExplainVerb = 'pull' | 'push' | 'run' | 'create' | 'start' | 'stop' | 'restart' | 'rm' | 'exec' | 'build';

export type StageKey =
  | 'resolve'
  | 'manifest'
  | 'layers'
  | 'store'
  | 'image'
  | 'rootfs'
  | 'spec'
  | 'network'
  | 'create'
  | 'start'
  | 'exit'
  | 'cleanup'
  | 'stop'
  | 'remove'
  | 'exec'
  | 'base'
  | 'steps'
  | 'result'
  | 'target'
  | 'blobs'
  | 'push-manifest';

/** Each command's stages, in the order they happen. */
export const COMMAND_STAGES: Record<ExplainVerb, StageKey[]> = {
  pull: ['resolve', 'manifest', 'layers', 'store'],
  push: ['target', 'blobs', 'push-manifest'],
  run: ['image', 'rootfs', 'spec', 'network', 'create', 'start', 'exit', 'cleanup'],
  create: ['image', 'rootfs', 'spec'],
  start: ['rootfs', 'network', 'create', 'start', 'exit', 'cleanup'],
  stop: ['stop', 'exit', 'cleanup'],
  restart: ['stop', 'exit', 'cleanup', 'rootfs', 'network', 'create', 'start'],
  rm: ['stop', 'exit', 'cleanup', 'remove'],
  exec: ['exec'],
  build: ['base', 'steps', 'result'],
};

/** A stage's title (the word after `[n/N]`). */
export const STAGE_TITLES: Record<StageKey, string> = {
  resolve: 'Resolve',
  manifest: 'Manifest',
  layers: 'Layers',
  store: 'Store',
  image: 'Image',
  rootfs: 'Root filesystem',
  spec: 'Spec',
  network: 'Network',
  create: 'Create',
  start: 'Start',
  exit: 'Exit',
  cleanup: 'Cleanup',
  stop: 'Stop',
  remove: 'Remove',
  exec: 'Exec',
  base: 'Base image',
  steps: 'Steps',
  result: 'Result',
  target: 'Target',
  blobs: 'Blobs',
  'push-manifest': 'Manifest',
};

const PULL_KEYS: Partial<Record<TsrunEvent['type'], StageKey[]>> = {
  'image-not-local': ['image', 'base'],
  'image-damaged': ['image', 'base'],
  'image-platform': ['image', 'base'],
  resolve: ['resolve', 'image', 'base'],
  manifest: ['manifest', 'image', 'base'],
  config: ['manifest', 'image', 'base'],
  'layer-start': ['layers', 'image', 'base'],
  'layer-exists': ['layers', 'image', 'base'],
  'layer-wait': ['layers', 'image', 'base'],
  'layer-verifying': ['layers', 'image', 'base'],
  'layer-done': ['layers', 'image', 'base'],
  'layer-retry': ['layers', 'image', 'base'],
  'blob-resume': ['layers', 'image', 'base'],
  'image-stored': ['store', 'image', 'base'],
};

const BY_TYPE: Partial<Record<string, StageKey[]>> = {
  ...PULL_KEYS,
  'rootfs-mount': ['rootfs'],
  'etc-files': ['spec'],
  'container-create': ['spec'],
  slirp4netns: ['network'],
  'slirp4netns-api': ['network'],
  'network-attach': ['network'],
  'network-rules': ['network'],
  'port-rules': ['network'],
  'network-detach': ['cleanup'],
  'container-start': ['start'],
  'container-stop': ['stop'],
  'container-exit': ['exit'],
  'container-cleanup': ['cleanup'],
  'container-remove': ['remove'],
  'container-exec': ['exec'],
  'cleanup-step': ['cleanup'],
  userns: ['spec'],
  monitor: ['create', 'exec'],
  'build-step': ['steps'],
  'build-triggers': ['steps'],
  'build-trigger': ['steps'],
  'build-cache-hit': ['steps'],
  'build-run': ['steps'],
  'build-step-done': ['steps'],
  'build-unused-arg': ['steps'],
  'push-start': ['target'],
  'push-blob': ['blobs'],
  'push-manifest': ['push-manifest'],
};

/** The runtime's subcommand in an argv (`runc --root R create …` → create). */
export function runtimeVerb(argv: readonly string[]): string | undefined {
  const verbs = ['create', 'start', 'kill', 'delete', 'exec', 'state', 'run', 'pause', 'resume', 'update', 'ps'];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--root' || a === '--log' || a === '--log-format') {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return verbs.includes(a) ? a : undefined;
  }
  return undefined;
}

/** The stages an event may belong to, best first (the first that is one of the command's wins). */
export function stageCandidates(e: TsrunEvent): StageKey[] {
  switch (e.type) {
    case 'runtime': {
      const v = runtimeVerb(e.argv);
      if (v === 'create') return ['create'];
      if (v === 'start') return ['start'];
      if (v === 'kill') return ['stop'];
      if (v === 'delete') return ['cleanup'];
      if (v === 'exec') return ['exec'];
      return [];
    }
    case 'netns':
      return e.action === 'add' ? ['network'] : ['cleanup'];
    case 'cni':
      return e.command === 'ADD' ? ['network'] : ['cleanup'];
    case 'iptables-rules':
      return e.when === 'attach' ? ['network'] : ['cleanup'];
    case 'dns':
      return e.action === 'add' ? ['network'] : ['cleanup'];
    case 'build-step':
      return /^from\s/i.test(e.instruction) ? ['base', 'steps'] : ['steps'];
    default:
      return BY_TYPE[e.type] ?? [];
  }
}

/** The index of `e`'s stage in `stages`, or -1 (an event of no stage: told where the walk is). */
export function stageIndex(stages: readonly StageKey[], e: TsrunEvent): number {
  for (const k of stageCandidates(e)) {
    const i = stages.indexOf(k);
    if (i >= 0) return i;
  }
  return -1;
}

/**
 * Events told with a later stage that do not move the walk there: the rootless user namespace
 * is made before the image is looked at, and explained with the spec it belongs to.
 */
export const DEFERRED: ReadonlySet<string> = new Set(['userns']);

/** Events that end their stage: the stage is told at once (before the container's own output). */
export function closesStage(e: TsrunEvent): boolean {
  switch (e.type) {
    case 'image-stored':
    case 'rootfs-mount':
    case 'container-create':
    case 'network-attach':
    case 'container-start':
    case 'container-exit':
    case 'container-cleanup':
    case 'container-remove':
    case 'container-exec':
    case 'push-manifest':
      return true;
    case 'runtime':
      return runtimeVerb(e.argv) === 'create' && e.exitCode === undefined;
    default:
      return false;
  }
}
