/**
 * `run --dry-run [--out DIR]` (app/dry-run.ts): prepare everything `run` would, start nothing,
 * and say where the bundle and the replay/undo scripts are. Pull progress goes to stderr; stdout
 * is the directory alone, for scripts (`cd "$(tsrun run --dry-run busybox)"`).
 */
import type { CliIo } from '../output.js';
import { toRunOptions, type RunFlags } from './run-options.js';

export async function dryRunAction(io: CliIo, image: string, args: string[], f: RunFlags): Promise<void> {
  const { processContext } = await import('../../app/context.js');
  const progress = await import('../progress.js');
  const { fanout } = await import('../../events.js');
  const { runTextReporter, withDebug } = await import('../run-output.js');
  // As run: "Unable to find image" and the warnings on stderr, the pull's progress, --debug.
  const text = runTextReporter(io.err);
  const reporter = withDebug(io, io.globals().debug ? text : fanout(text, progress.plainPullReporter(io.err, io.err)));
  const ctx = processContext({ root: io.globals().root, reporter });
  const { dryRun } = await import('../../app/dry-run.js');
  const r = await dryRun(ctx, { ...toRunOptions(image, args, f), out: f.out });
  io.err.write(
    `Prepared container ${r.id.slice(0, 12)} without starting it. In ${r.dir}:\n` +
      `  bundle/config.json  the OCI runtime config tsrun would give runc (root: bundle/rootfs)\n` +
      `  replay.sh           as root: mount, network, runc in the foreground (read it first)\n` +
      `  undo.sh             as root: remove everything replay.sh made\n`,
  );
  io.out.write(`${r.dir}\n`);
}
