/**
 * `tsrun commit CONTAINER [REPOSITORY[:TAG]]`: a container's changes become a new image, as
 * `docker commit` makes it. The overlay's upper directory is archived as one more layer on top
 * of the image's (build/layer.ts, the same code a build step's changes go through, minus the
 * runtime's mount points: container-fs.ts), and the image config takes the container's own
 * settings (command, entrypoint, environment, working dir, user, labels, ports, stop signal),
 * then the `-c` changes (app/changes.ts). `-m` and `-a` go into the config's comment, author and
 * history. An unchanged container gives no new layer (history marks it empty), as in Docker.
 *
 * The container is frozen while its upper directory is read (`--pause`, Docker's default), so
 * it cannot change the files being archived or race the walk (container-fs.ts, "Security").
 * Contract: the store is held shared from the layer's commit to the record; a failure records
 * nothing (an orphan layer is removed by the next garbage collection).
 */
import { TsrunError } from '../errors.js';
import type { ContainerConfig, ImageConfig } from '../oci/schemas.js';
import { formatReference, parseReference } from '../reference/reference.js';
import { commitLayer } from '../build/layer.js';
import { recordImage } from '../store/record.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { AppContext } from './context.js';
import { openEnv } from './containers.js';
import { upperView } from './container-fs.js';
import { applyChanges } from './changes.js';
import { withFrozen } from './pause.js';
import { unpackAs } from './unpack-as.js';

export interface CommitOptions {
  changes?: string[];
  message?: string;
  author?: string;
  /** Freeze a running container while committing (default true). */
  pause?: boolean;
}

/** sha256 of an empty tar (two zero blocks): a layer with no changes. */
const EMPTY_TAR = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/** The image config's container part, updated with what the container was run with. */
function containerConfig(base: ContainerConfig, r: ContainerRecord): ContainerConfig {
  const imageEnv = new Set(base.Env ?? []);
  const c = r.config;
  return {
    ...base,
    // The runtime's additions (HOSTNAME) are not the container's configuration.
    Env: c.env.filter((e) => !e.startsWith('HOSTNAME=') || imageEnv.has(e)),
    Cmd: c.cmd,
    Entrypoint: c.entrypoint,
    WorkingDir: c.cwd === '/' && !base.WorkingDir ? '' : c.cwd,
    User: c.user,
    Labels: Object.keys(c.labels).length > 0 ? c.labels : (base.Labels ?? null),
    ExposedPorts:
      c.exposedPorts.length > 0 ? Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) : (base.ExposedPorts ?? null),
    ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
  };
}

/** Returns the new image's id. */
export async function commitContainer(
  ctx: AppContext,
  query: string,
  repository: string | undefined,
  o: CommitOptions = {},
): Promise<string> {
  let name: string | undefined;
  if (repository !== undefined) {
    const ref = parseReference(repository);
    if (ref.digest) throw new TsrunError('ERR_REFERENCE', `committing as ${repository}: a tag cannot contain a digest`);
    name = formatReference(ref);
  }
  const env = await openEnv(ctx);
  const c = await env.containers.find(query);
  const what = `committing container ${c.record.name}`;
  const view = upperView(env, c, what);
  const store = env.store;
  return store.withSharedLock(async () => {
    const image = (await store.readImages()).images[c.record.imageId];
    if (!image || !(await store.hasBlob(image.id))) {
      throw new TsrunError('ERR_IMAGE_NOT_FOUND', `${what}: its image ${c.record.imageId} is no longer in the store`);
    }
    const base = JSON.parse((await store.readBlob(image.id)).toString('utf8')) as ImageConfig;
    const parent = image.layers[image.layers.length - 1]?.chainId;
    const layer = await withFrozen(env, c, o.pause ?? true, () =>
      commitLayer(store, view.upper, parent, {
        overlayXattrPrefix: view.xattrPrefix,
        exclude: view.excluded,
        unpack: unpackAs(ctx).unpack,
      }),
    );
    const empty = layer.diffId === EMPTY_TAR;
    const created = new Date().toISOString();
    const config: ImageConfig = {
      ...base,
      created,
      ...(o.author ? { author: o.author } : {}),
      config: await applyChanges(containerConfig(base.config ?? {}, c.record), o.changes ?? []),
      rootfs: { type: 'layers', diff_ids: empty ? base.rootfs.diff_ids : [...base.rootfs.diff_ids, layer.diffId] },
      history: [
        ...(base.history ?? []),
        {
          created,
          created_by: [c.record.path, ...c.record.args].join(' '),
          ...(o.author ? { author: o.author } : {}),
          ...(o.message ? { comment: o.message } : {}),
          ...(empty ? { empty_layer: true } : {}),
        },
      ],
    };
    if (o.message) (config as Record<string, unknown>).comment = o.message;
    const layers = empty ? image.layers : [...image.layers, layer];
    const { id } = await recordImage(store, Buffer.from(JSON.stringify(config)), layers, name ? [name] : [], created);
    return id;
  });
}
