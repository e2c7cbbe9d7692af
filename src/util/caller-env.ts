/**
 * The caller's environment as the caller set it, for what tsrun passes on to containers and
 * builds (bare `-e KEY`, env-file `KEY`, bare `--build-arg KEY`).
 *
 * bin/tsrun.js's shell line starts Node without Node's own variables, so that they never act on
 * tsrun's process: NODE_OPTIONS (a CI's `--require ./setup.js` or `--max-old-space-size` is meant
 * for the job's own Node, or for the container through `-e NODE_OPTIONS`) travels as
 * TSRUN_NODE_OPTIONS, and NODE_EXTRA_CA_CERTS as TSRUN_EXTRA_CA_CERTS (src/util/ca.ts). Here
 * they get their own names back.
 */
const MOVED: readonly [string, string][] = [
  ['NODE_OPTIONS', 'TSRUN_NODE_OPTIONS'],
  ['NODE_EXTRA_CA_CERTS', 'TSRUN_EXTRA_CA_CERTS'],
];

export function callerEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [name, moved] of MOVED) {
    if (out[moved] !== undefined && out[name] === undefined) out[name] = out[moved];
    delete out[moved];
  }
  return out;
}
