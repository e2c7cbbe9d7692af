/**
 * `ps` / `container ls` and `inspect` / `container inspect` / `image inspect` output, as
 * Docker's CLI prints them (docker/cli cli/command/container/list.go, cli/command/inspect):
 * `--format` on Docker's typed structs (cli/views.ts), `-q`, `--no-trunc`, `-s`, `-n`, `-l`,
 * `--filter`, `psFormat` from the client config.json; inspect's `--type` and `--size`.
 */
import type { CliIo } from '../main.js';
import { printError } from '../main.js';

export interface PsFlags {
  all?: boolean; quiet?: boolean; format?: string; trunc: boolean; latest?: boolean; size?: boolean;
  filter: string[]; last?: string;
}

/** The client config.json (`--config DIR`, $DOCKER_CONFIG, ~/.docker), for psFormat / imagesFormat. */
export async function clientConfig(): Promise<Record<string, unknown>> {
  const { promises: fs } = await import('node:fs');
  const path = await import('node:path');
  const os = await import('node:os');
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  try {
    const v = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function psAction(io: CliIo, o: PsFlags): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  const { processContext } = await import('../../app/context.js');
  const { openEnv } = await import('../../app/containers.js');
  const { listContainers } = await import('../../app/ps.js');
  const { renderList, fieldsUsed } = await import('../template.js');
  const { containerContext, PS_FORMAT } = await import('../views.js');
  let last = o.last === undefined ? undefined : Number(o.last);
  if (last !== undefined && !Number.isInteger(last)) throw new TsrunError('ERR_USAGE', `invalid argument "${o.last}" for "-n, --last" flag: strconv.ParseInt: parsing "${o.last}": invalid syntax`, { detail: { exitCode: 125 } });
  if (o.latest && (last === undefined || last === -1)) last = 1;
  let format = o.format;
  if (format && o.quiet) io.err.write('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
  if (!format) format = (await clientConfig())['psFormat'] as string | undefined;
  if (o.quiet) format = '{{.ID}}';
  const spec = { ...PS_FORMAT, toStruct: (c: Parameters<typeof containerContext>[0]) => containerContext(c, o.trunc) };
  let size = Boolean(o.size);
  if (format && !o.quiet && o.size === undefined) {
    const probe = { id: '', names: [], image: '', imageId: '', command: '', created: new Date().toISOString(), state: '', exitCode: 0, ports: [], labels: {}, mounts: [], networks: [] };
    size = fieldsUsed(format, probe, spec).has('Size');
  } else if (format) {
    fieldsUsed(format, { id: '', names: [], image: '', imageId: '', command: '', created: new Date().toISOString(), state: '', exitCode: 0, ports: [], labels: {}, mounts: [], networks: [] }, spec);
  }
  const env = await openEnv(processContext({ root: io.globals().root }));
  const rows = await listContainers(env, { all: o.all, last, filters: o.filter, size });
  const table = !format || format === 'table' ? `${PS_FORMAT.defaultTable}${size ? '\t{{.Size}}' : ''}` : format;
  io.out.write(renderList(table, rows, spec));
}

export interface InspectFlags { format?: string; type?: string; size?: boolean }

/**
 * `inspect NAME...`: containers first, then images (Docker's order), or only the `--type` asked
 * for; `imagesOnly` for `image inspect`, `containersOnly` for `container inspect`. Objects found
 * print even when others are missing; then the errors, exit 1.
 */
export async function inspectAction(io: CliIo, names: string[], o: InspectFlags, only?: 'image' | 'container'): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  const type = only ?? o.type;
  if (type !== undefined && type !== 'container' && type !== 'image') {
    throw new TsrunError('ERR_USAGE', `"${type}" is not a valid value for --type`, { hint: 'container or image (tsrun has no networks, volumes, nodes …)' });
  }
  const { processContext } = await import('../../app/context.js');
  const { inspectImages } = await import('../../app/images.js');
  const { openEnv, inspectView } = await import('../../app/containers.js');
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
      if (o.size) Object.assign(view, await containerSizes(env, c).then((s) => ({ SizeRw: s.sizeRw, SizeRootFs: s.sizeRootFs })));
      found.push(inspectStruct(view, 'container.InspectResponse', CONTAINER_INSPECT));
      continue;
    }
    if (type === 'container') { errors.push(new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${name}`)); continue; }
    const r = await inspectImages(ctx, [name]);
    for (const img of r.found) found.push(inspectStruct(img as Record<string, unknown>, 'image.InspectResponse', IMAGE_INSPECT));
    if (r.missing.length > 0) errors.push(type === 'image' ? r.missing[0] as Error : new TsrunError('ERR_IMAGE_NOT_FOUND', `no such object: ${name}`));
  }
  const r = renderObjects(o.format, found);
  io.out.write(r.out);
  for (const e of [...errors, ...r.errors]) printError(e, io, false);
  errors.push(...r.errors);
  if (errors.length > 0) process.exitCode = 1;
}
