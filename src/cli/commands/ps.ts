/**
 * `ps` / `container ls` output as Docker's CLI prints it (docker/cli cli/command/container/list.go):
 * `--format` on Docker's typed structs (cli/views.ts), `-q`, `--no-trunc`, `-s`, `-n`, `-l`,
 * `--filter`, `psFormat` from the client config.json.
 */
import type { CliIo } from '../output.js';

export interface PsFlags {
  all?: boolean;
  quiet?: boolean;
  format?: string;
  trunc: boolean;
  latest?: boolean;
  size?: boolean;
  filter: string[];
  last?: string;
}

/** The client config.json (`--config DIR`, $DOCKER_CONFIG, ~/.docker), for psFormat / imagesFormat. */
export async function clientConfig(): Promise<Record<string, unknown>> {
  // Read synchronously: a small file, and node:fs/promises is ~3 ms of a listing to load.
  const { readFileSync } = await import('node:fs');
  const path = await import('node:path');
  const os = await import('node:os');
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  try {
    const v = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function psAction(io: CliIo, o: PsFlags): Promise<void> {
  const { TsrunError } = await import('../../errors.js');
  const { processContext } = await import('../../app/context.js');
  const { openEnv } = await import('../../app/env.js');
  const { listContainers } = await import('../../app/ps.js');
  const { renderList, fieldsUsed } = await import('../template.js');
  const { containerContext, PS_FORMAT } = await import('../views.js');
  let last = o.last === undefined ? undefined : Number(o.last);
  if (last !== undefined && !Number.isInteger(last))
    throw new TsrunError(
      'ERR_USAGE',
      `invalid argument "${o.last}" for "-n, --last" flag: strconv.ParseInt: parsing "${o.last}": invalid syntax`,
      { detail: { exitCode: 125 } },
    );
  if (o.latest && (last === undefined || last === -1)) last = 1;
  let format = o.format;
  if (format && o.quiet) io.err.write('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
  if (!format) format = (await clientConfig())['psFormat'] as string | undefined;
  if (o.quiet) format = '{{.ID}}';
  const spec = { ...PS_FORMAT, toStruct: (c: Parameters<typeof containerContext>[0]) => containerContext(c, o.trunc) };
  let size = Boolean(o.size);
  if (format && !o.quiet && o.size === undefined) {
    const probe = {
      id: '',
      names: [],
      image: '',
      imageId: '',
      command: '',
      created: new Date().toISOString(),
      state: '',
      exitCode: 0,
      ports: [],
      labels: {},
      mounts: [],
      networks: [],
    };
    size = fieldsUsed(format, probe, spec).has('Size');
  } else if (format) {
    fieldsUsed(
      format,
      {
        id: '',
        names: [],
        image: '',
        imageId: '',
        command: '',
        created: new Date().toISOString(),
        state: '',
        exitCode: 0,
        ports: [],
        labels: {},
        mounts: [],
        networks: [],
      },
      spec,
    );
  }
  const env = await openEnv(processContext({ root: io.globals().root }));
  const rows = await listContainers(env, { all: o.all, last, filters: o.filter, size });
  const table = !format || format === 'table' ? `${PS_FORMAT.defaultTable}${size ? '\t{{.Size}}' : ''}` : format;
  io.print(renderList(table, rows, spec));
}
