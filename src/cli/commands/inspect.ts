/**
 * `inspect` / `container inspect` / `image inspect` as Docker's CLI prints them (docker/cli
 * cli/command/inspect/inspector.go): indented JSON, `json`, or a template on Docker's typed
 * structs (cli/views.ts, cli/docker-types.ts); `--type container|image`, `--size`.
 */
import type { CliIo } from '../output.js';
import { printError } from '../output.js';

export interface InspectFlags {
  format?: string;
  type?: string;
  size?: boolean;
}

/**
 * `inspect NAME...`: containers first, then images (Docker's order), or only the `--type` asked
 * for; `imagesOnly` for `image inspect`, `containersOnly` for `container inspect`. Objects found
 * print even when others are missing; then the errors, exit 1.
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
  if (type !== undefined && type !== 'container' && type !== 'image') {
    throw new TsrunError('ERR_USAGE', `"${type}" is not a valid value for --type`, {
      hint: 'container, image or network (for volumes: tsrun volume inspect)',
    });
  }
  const { processContext } = await import('../../app/context.js');
  const { inspectImages } = await import('../../app/images.js');
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
    const r = await inspectImages(ctx, [name]);
    for (const img of r.found)
      found.push(inspectStruct(img as Record<string, unknown>, 'image.InspectResponse', IMAGE_INSPECT));
    if (r.missing.length > 0)
      errors.push(
        type === 'image' ? (r.missing[0] as Error) : new TsrunError('ERR_IMAGE_NOT_FOUND', `no such object: ${name}`),
      );
  }
  const r = renderObjects(o.format, found);
  io.out.write(r.out);
  for (const e of [...errors, ...r.errors]) printError(e, io, false);
  errors.push(...r.errors);
  if (errors.length > 0) process.exitCode = 1;
}
