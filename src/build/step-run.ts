/**
 * RUN: the step's key (the command, the build arguments in scope, the network, the mounts — bind
 * sources by content, never a secret's value) and, on a cache miss, the command run as a
 * container over a fresh root (run-step.ts) whose changes become the step's layer.
 */
import { randomBytes } from 'node:crypto';
import { TsrunError } from '../errors.js';
import { withFileLock } from '../native/index.js';
import type { ContainerConfig } from '../oci/schemas.js';
import type { BuildState } from './cache.js';
import { collectSources, hashSources, type Source } from './copy.js';
import type { Instruction } from './dockerfile.js';
import { commandOf } from './evaluate.js';
import { parseRunMount, type RunMount } from './mounts.js';
import { prepareRunMounts } from './run-mounts.js';
import { runStep, type BuildNetwork } from './run-step.js';
import { derive, type StepHost } from './state.js';

export async function runInstruction(
  b: StepHost,
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
  const net = network === 'default' ? b.o.network : (network as BuildNetwork);
  const createdBy = ins.json ? `RUN ${JSON.stringify(argv)}` : `RUN ${argv.join(' ')}`;
  const mounts = (ins.mounts ?? []).map((m) => parseRunMount(m, config.WorkingDir || '/', ins.line));
  // Bind sources are read once: for the key (by content) and, on a miss, for the copy.
  const binds = new Map<RunMount, Source[]>();
  for (const m of mounts) {
    if (m.type === 'bind')
      binds.set(
        m,
        await collectSources({ dir: b.o.contextDir, ...b.o.ignore }, [m.source], `RUN --mount source=${m.source}`),
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
  return b.cached(state, ['RUN', argv, argEnv, net, mountKey], async () => {
    const runtime = await b.runtime();
    const layer = await b.fsStep(state, async (root) => {
      const id = randomBytes(32).toString('hex');
      b.deps.reporter.emit({
        type: 'build-run',
        id,
        argv,
        network: net,
        buildArgs: [...args.keys()],
        mounts: mounts.map((m) => ({ type: m.type, target: m.target })),
      });
      const prepared = await prepareRunMounts(mounts, binds, root.dir, {
        storeRoot: b.deps.store.root,
        ...(b.o.secrets ? { secrets: b.o.secrets } : {}),
        env: b.deps.callerEnv,
      });
      const go = () =>
        runStep({
          id,
          runtime,
          root,
          storeRoot: b.deps.store.root,
          runDir: b.deps.runDir,
          rootless: b.deps.rootless,
          argv,
          config,
          argEnv,
          network: net,
          extraMounts: prepared.mounts,
          callerEnv: b.deps.callerEnv,
          output: b.deps.output,
          signal: b.deps.signal,
          limits: b.o.limits,
          reporter: b.deps.reporter,
        });
      // sharing=locked: one build at a time uses that cache.
      const r = await prepared.locks.reduce<() => ReturnType<typeof go>>(
        (inner, lock) => () => withFileLock(lock, 'ex', inner),
        go,
      )();
      b.checkAborted();
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
