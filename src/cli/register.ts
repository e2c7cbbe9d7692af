/**
 * Which command modules a command line needs. Registering every verb (its commander Command and
 * options) costs ~40 ms of a ~65 ms `tsrun ps -a` on a 2-vCPU machine (docs/benchmarks.md,
 * "Listing commands"): `run` alone declares a hundred options. So when the verb is one that a
 * single module registers, only that module is loaded and registered; anything else (no verb,
 * `--help`, `--version`, a group such as `container` or `image` that several modules add to, an
 * unknown word that wants commander's "did you mean") registers them all, as before.
 *
 * Contract: for a verb in SOLE_VERBS, the program this builds has that verb exactly as the full
 * program has it (test/cli/register.test.ts checks every entry against the full program, so a
 * verb moved to another module cannot silently disappear). A module is told the verb and may
 * leave its other verbs out (containers.ts and images.ts register only the verb).
 */
import type { Command } from 'commander';
import type { CliIo } from './output.js';

/** `verb`: the sole verb, when registering for one; a module may then leave out other verbs. */
type Register = (program: Command, io: CliIo, verb?: string) => void;

export const MODULES: Record<string, () => Promise<Register>> = {
  images: async () => (await import('./commands/images.js')).registerImageCommands,
  login: async () => (await import('./commands/login.js')).registerAuthCommands,
  containers: async () => (await import('./commands/containers.js')).registerContainerCommands,
  build: async () => (await import('./commands/build.js')).registerBuildCommands,
  system: async () => (await import('./commands/system.js')).registerSystemCommands,
  save: async () => (await import('./commands/save.js')).registerSaveCommands,
  export: async () => (await import('./commands/export.js')).registerExportCommands,
  commit: async () => (await import('./commands/commit.js')).registerCommitCommands,
  diff: async () => (await import('./commands/diff.js')).registerDiffCommands,
  layers: async () => (await import('./commands/layers.js')).registerLayerCommands,
  search: async () => (await import('./commands/search.js')).registerSearchCommands,
  explain: async () => (await import('./commands/explain.js')).registerExplainCommands,
  pause: async () => (await import('./commands/pause.js')).registerPauseCommands,
  rename: async () => (await import('./commands/rename.js')).registerRenameCommands,
  top: async () => (await import('./commands/top.js')).registerTopCommands,
  stats: async () => (await import('./commands/stats.js')).registerStatsCommands,
  update: async () => (await import('./commands/update.js')).registerUpdateCommands,
  events: async () => (await import('./commands/events.js')).registerEventsCommands,
  volume: async () => (await import('./commands/volume.js')).registerVolumeCommands,
  network: async () => (await import('./commands/network.js')).registerNetworkCommands,
  healthcheck: async () => (await import('./commands/healthcheck.js')).registerHealthcheckCommands,
  version: async () => (await import('./commands/version.js')).registerVersionCommand,
  unshare: async () => (await import('./commands/unshare.js')).registerUnshareCommand,
};

/** Top-level verbs (and aliases) registered by one module only, which no other module extends. */
export const SOLE_VERBS: Record<string, keyof typeof MODULES> = {
  pull: 'images',
  push: 'images',
  images: 'images',
  inspect: 'images',
  tag: 'images',
  history: 'images',
  rmi: 'images',
  login: 'login',
  logout: 'login',
  run: 'containers',
  create: 'containers',
  start: 'containers',
  stop: 'containers',
  restart: 'containers',
  kill: 'containers',
  rm: 'containers',
  ps: 'containers',
  logs: 'containers',
  wait: 'containers',
  cp: 'containers',
  port: 'containers',
  exec: 'containers',
  attach: 'containers',
  build: 'build',
  builder: 'build',
  info: 'system',
  save: 'save',
  load: 'save',
  export: 'export',
  import: 'export',
  commit: 'commit',
  diff: 'diff',
  search: 'search',
  explain: 'explain',
  volume: 'volume',
  network: 'network',
  healthcheck: 'healthcheck',
  pause: 'pause',
  unpause: 'pause',
  rename: 'rename',
  top: 'top',
  stats: 'stats',
  update: 'update',
  events: 'events',
  version: 'version',
  unshare: 'unshare',
};

/** Global options that take a value (everything else before the verb means "register all"). */
export const GLOBAL_WITH_VALUE = new Set(['--root', '--config']);

/** The verb of `argv` when only one module is needed for it, else undefined. */
export function soleVerb(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (GLOBAL_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (a === '--debug' || [...GLOBAL_WITH_VALUE].some((g) => a.startsWith(`${g}=`))) continue;
    if (a.startsWith('-')) return undefined;
    return Object.prototype.hasOwnProperty.call(SOLE_VERBS, a) ? a : undefined;
  }
  return undefined;
}

/** Register what `argv` needs on `program`: one module for a sole verb, else all of them. */
export async function registerCommands(program: Command, io: CliIo, argv: string[]): Promise<void> {
  const verb = soleVerb(argv);
  const names = verb !== undefined ? [SOLE_VERBS[verb] as string] : Object.keys(MODULES);
  for (const name of names) (await (MODULES[name] as () => Promise<Register>)())(program, io, verb);
}
