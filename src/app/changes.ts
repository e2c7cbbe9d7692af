/**
 * `commit -c` and `import -c`: Dockerfile instructions applied to an image config, as
 * `docker commit --change` does (moby's dockerfile.BuildFromConfig). Docker allows CMD,
 * ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR; each change is
 * read by the Dockerfile parser and applied by the builder's own instruction code
 * (build/evaluate.ts), so `-c 'CMD ["sh"]'` means what it means in a Dockerfile.
 */
import { TsrunError } from '../errors.js';
import type { ContainerConfig } from '../oci/schemas.js';
import { parseDockerfile } from '../build/dockerfile.js';
import { applyMetadata, scopeVars } from '../build/evaluate.js';

const ALLOWED = new Set([
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'LABEL',
  'ONBUILD',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

/** Apply `changes` in order (later ones see earlier ENVs); the input is not modified. */
export async function applyChanges(config: ContainerConfig, changes: readonly string[]): Promise<ContainerConfig> {
  let c: ContainerConfig = { ...config };
  const flags = { cmdSet: false };
  for (const change of changes) {
    const keyword = /^\s*(\S+)/.exec(change)?.[1]?.toUpperCase() ?? '';
    if (!ALLOWED.has(keyword)) {
      throw new TsrunError('ERR_USAGE', `${keyword || change} is not a valid change command`, {
        hint: `use one of ${[...ALLOWED].join(', ')}`,
      });
    }
    const df = await parseDockerfile(`FROM scratch\n${change.replace(/\n/g, ' ')}\n`, '--change');
    for (const ins of df.stages[0]?.instructions ?? []) {
      c = applyMetadata(ins, c, scopeVars(c, new Map()), df.escape, flags).config;
    }
  }
  return c;
}
