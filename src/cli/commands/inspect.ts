/**
 * `inspect` / `container inspect` / `image inspect` as Docker's CLI prints them (docker/cli
 * cli/command/inspect/inspector.go): indented JSON, `json`, or a template on Docker's typed
 * structs (cli/views.ts, cli/docker-types.ts); `--type container|image|network|volume`, `--size`.
 */
import type { CliIo } from '../output.js';
import { printError } from '../output.js';

export interface InspectFlags {
  format?: string;
  type?: string;
  size?: boolean;
}

/**
 * `inspect NAME...`: containers first, then images, networks, volumes (Docker's order,
 * docker/cli cli/command/system/inspect.go), or only the `--type` asked for; `imagesOnly` for
 * `image inspect`, `containersOnly` for `container inspect`. Objects found print even when
 * others are missing; then the errors, exit 1.
 */
export async function inspectAction(
  io: CliIo,
  names: string[],
  o: InspectFlags,
  only?: 'image' | 'container',
): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  const type = only ?? o.type;
  if (type === 'network') return (await import('./network.js')).networkInspectAction(io, names, o.format);
  if (type !== undefined && type !== 'container' && type !== 'image' && type !== 'volume') {
    throw new TsrunError('ERR_USAGE', `"${type}" is not a valid value for --type`, {
      hint: 'container, image, network or volume',
    });
  }
  const { processContext } = await import('../../app/context.js');
  const { inspectImages } = await import('../../app/images.js');
  const { networkInspect } = await import('../../app/networks.js');
  const { inspectVolume } = await import('../../app/volumes.js');
  const { openEnv } = await import('../../app/containers.js');
  const { inspectView } = await import('../../app/container-views.js');
  const { containerSizes } = await import('../../app/ps.js');
  const { renderObjects, parseTemplate } = await import('../template.js');
  const { inspectStruct } = await import('../views.js');
  const { CONTAINER_INSPECT, IMAGE_INSPECT } = await import('../docker-types.js');
  if (o.format && o.format !== 'json') parseTemplate(o.format, 'template parsing error', 64);
  const ctx = processContext({ root: io.globals().root });
  const env = type === 'image' ? undefined : await openEnv(ctx);
  const found: ReturnType<typeof inspectStruct>[] = [];
  const errors: Error[] = [];
  for (const name of names) {
    const c = env ? await env.containers.find(name).catch(() => undefined) : undefined;
    if (c && env) {
      const view = inspectView(env, c);
      if (o.size)
        Object.assign(view, await containerSizes(env, c).then((s) => ({ SizeRw: s.sizeRw, SizeRootFs: s.sizeRootFs })));
      found.push(inspectStruct(view, 'container.InspectResponse', CONTAINER_INSPECT));
      continue;
    }
    if (type === 'container') {
      errors.push(new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${name}`));
      continue;
    }
    if (type !== 'volume') {
      const r = await inspectImages(ctx, [name]);
      for (const img of r.found)
        found.push(inspectStruct(img as Record<string, unknown>, 'image.InspectResponse', IMAGE_INSPECT));
      if (r.found.length > 0) continue;
      if (type === 'image') {
        errors.push(r.missing[0] as Error);
        continue;
      }
      const net = (await networkInspect([name])).found[0];
      if (net) {
        found.push(inspectStruct(net, 'network.Inspect'));
        continue;
      }
    }
    const vol = env ? await inspectVolume(env, name).catch((err: unknown) => err as Error) : undefined;
    if (vol && !(vol instanceof Error))
      found.push(inspectStruct(vol as unknown as Record<string, unknown>, 'volume.Volume'));
    else if (type === 'volume' && vol) errors.push(vol);
    else errors.push(new TsrunError('ERR_IMAGE_NOT_FOUND', `no such object: ${name}`));
  }
  const r = renderObjects(o.format, found);
  io.out.write(r.out);
  for (const e of [...errors, ...r.errors]) printError(e, io, false);
  errors.push(...r.errors);
  if (errors.length > 0) process.exitCode = 1;
}
