/**
 * What a RUN step's `--mount`s (parsed by mounts.ts) become on disk, as runtime-spec mounts: a
 * tmpfs; a cache directory under the store (`build-cache-mounts/`, or private to the step), with
 * a lock file to hold for `sharing=locked`; a secret written 0600 into the step's private dir; a
 * read-only copy of a context path (never the host path itself). Everything but shared caches
 * lives in `stepDir`, which the caller removes with the step.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { sha256Digest } from '../oci/digest.js';
import type { Mount as SpecMount } from '../spec/types.js';
import { applySources, type Source } from './copy.js';
import type { RunMount } from './mounts.js';

/** `--secret id=N,src=FILE|env=VAR`, by id. */
export type SecretSources = ReadonlyMap<string, { file?: string; env?: string }>;

/** RUN --mount's sources made ready under the step's directory (removed with it), as spec mounts. */
export async function prepareRunMounts(
  mounts: readonly RunMount[],
  binds: ReadonlyMap<RunMount, Source[]>,
  stepDir: string,
  o: { storeRoot: string; secrets?: SecretSources; env: NodeJS.ProcessEnv },
): Promise<{ mounts: SpecMount[]; locks: string[] }> {
  const out: SpecMount[] = [];
  const locks: string[] = [];
  for (const [i, m] of mounts.entries()) {
    if (m.type === 'tmpfs') {
      out.push({
        destination: m.target,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])],
      });
    } else if (m.type === 'cache') {
      const dir =
        m.sharing === 'private'
          ? path.join(stepDir, `cache-${i}`)
          : path.join(o.storeRoot, 'build-cache-mounts', sha256Digest(m.id).slice(7, 39));
      if (!(await fs.stat(dir).catch(() => undefined))) {
        await fs.mkdir(dir, { recursive: true, mode: m.mode });
        await fs.chmod(dir, m.mode);
        await fs.chown(dir, m.uid, m.gid);
      }
      if (m.sharing === 'locked') locks.push(`${dir}.lock`);
      out.push({ destination: m.target, type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
    } else if (m.type === 'secret') {
      const given = o.secrets?.get(m.id);
      const value =
        given?.file !== undefined
          ? await fs.readFile(given.file).catch((e: Error) => {
              throw new TsrunError('ERR_USAGE', `--secret id=${m.id}: reading ${given.file}: ${e.message}`);
            })
          : given?.env !== undefined
            ? Buffer.from(o.env[given.env] ?? '')
            : undefined;
      if (value === undefined) {
        if (m.required)
          throw new TsrunError('ERR_BUILD_STEP', `RUN --mount=type=secret,id=${m.id}: no such secret was given`, {
            hint: `pass it: tsrun build --secret id=${m.id},src=FILE`,
          });
        continue;
      }
      const file = path.join(stepDir, `secret-${i}`);
      await fs.writeFile(file, value, { mode: 0o600 });
      await fs.chown(file, m.uid, m.gid);
      await fs.chmod(file, m.mode);
      out.push({ destination: m.target, type: 'bind', source: file, options: ['rbind', 'ro'] });
    } else {
      // A copy of the context path (with .dockerignore applied), never the host path itself.
      const dir = path.join(stepDir, `bind-${i}`);
      await fs.mkdir(dir, { mode: 0o755 });
      const sources = binds.get(m) ?? [];
      await applySources(dir, sources, { dest: '/', workdir: '/', what: `RUN --mount source=${m.source}` });
      const top = sources[0]?.entries[0];
      const source = top && !top.st.isDirectory() ? path.join(dir, path.basename(sources[0]?.name || top.abs)) : dir;
      out.push({ destination: m.target, type: 'bind', source, options: ['rbind', 'ro'] });
    }
  }
  return { mounts: out, locks };
}
