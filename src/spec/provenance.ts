/**
 * Where each part of a container's spec came from — the image's config, a flag of `run`/`create`
 * (which one), the command line after the image, or tsrun's default — for the `container-create`
 * event (events.ts `SpecProvenance`), so `--explain` can say "args: from the image's CMD" or
 * "env FOO: from -e".
 *
 * Pure, and computed beside the spec builder (app/run.ts) from the same inputs: the image config,
 * the options, and the finished spec (for the names actually present). It never sees a value of
 * the environment, only names: `-e` values may be secrets.
 */
import type { Provenance, SpecProvenance } from '../events.js';
import type { ContainerConfig } from '../oci/schemas.js';
import type { Spec } from './types.js';

/** The flags that shape the spec, as given (undefined: not given). */
export interface ProvenanceFlags {
  /** The arguments after the image. */
  args: readonly string[];
  entrypoint?: string;
  /** Names given with -e and in --env-file files (a bare `-e K` counts too). */
  envFlagNames?: readonly string[];
  envFileNames?: readonly string[];
  user?: string;
  workdir?: string;
  hostname?: string;
  network?: string;
  pid?: string;
  ipc?: string;
  uts?: string;
  userns?: string;
  privileged?: boolean;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  securityOpt?: readonly string[];
  ulimit?: readonly string[];
  init?: boolean;
  rootless?: boolean;
  /** Mount destinations by the flag that asked for them. */
  mounts?: { flag: string; destinations: readonly string[] }[];
  /** Destinations of the image's VOLUME entries that became anonymous volumes. */
  imageVolumes?: readonly string[];
  /** Destinations tsrun binds for the network (/etc/hosts, /etc/hostname, /etc/resolv.conf). */
  etcFiles?: readonly string[];
}

const DEFAULT: Provenance = { from: 'default' };
const flag = (name: string, detail?: string): Provenance => ({
  from: 'flag',
  flag: name,
  ...(detail ? { detail } : {}),
});
const given = (v: readonly unknown[] | undefined) => (v?.length ?? 0) > 0;
const envKey = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

export function specProvenance(image: ContainerConfig, o: ProvenanceFlags, spec: Spec): SpecProvenance {
  return {
    args: argsProvenance(image, o),
    env: envProvenance(image, o, spec),
    user: o.user !== undefined ? flag('--user') : image.User ? { from: 'image', detail: 'USER' } : DEFAULT,
    cwd:
      o.workdir !== undefined && o.workdir !== ''
        ? flag('--workdir')
        : image.WorkingDir
          ? { from: 'image', detail: 'WORKDIR' }
          : DEFAULT,
    hostname:
      o.hostname !== undefined
        ? flag('--hostname')
        : o.network === 'host'
          ? flag('--network', "the host's hostname")
          : o.uts === 'host'
            ? flag('--uts', "the host's hostname")
            : { from: 'default', detail: "the container id's first 12 characters" },
    mounts: mountsProvenance(o, spec),
    capabilities: o.privileged
      ? flag('--privileged', 'every capability')
      : given(o.capAdd) || given(o.capDrop)
        ? flag([given(o.capAdd) ? '--cap-add' : '', given(o.capDrop) ? '--cap-drop' : ''].filter(Boolean).join(' '))
        : { from: 'default', detail: "Docker's default capability set" },
    namespaces: namespacesProvenance(o, spec),
    rlimits: given(o.ulimit) ? flag('--ulimit') : DEFAULT,
    maskedPaths: o.privileged
      ? flag('--privileged', 'nothing masked')
      : (o.securityOpt ?? []).some((s) => /^systempaths[=:]unconfined$/.test(s))
        ? flag('--security-opt', 'systempaths=unconfined: nothing masked')
        : DEFAULT,
    cgroupsPath: { from: 'default', detail: '/tsrun/<container id>' },
  };
}

/** Docker's rules (spec/options.ts resolveProcessArgs): --entrypoint drops the image's CMD too. */
function argsProvenance(image: ContainerConfig, o: ProvenanceFlags): Provenance {
  const init = o.init ? ' (after the init process, --init)' : '';
  if (o.entrypoint !== undefined) {
    return flag(
      '--entrypoint',
      `${o.entrypoint === '' ? 'no entrypoint' : 'the entrypoint'}${o.args.length > 0 ? ', then the command line' : ''}${init}`,
    );
  }
  const hasEntrypoint = (image.Entrypoint ?? []).length > 0;
  if (o.args.length > 0) {
    return {
      from: 'command line',
      detail: `${hasEntrypoint ? "the image's ENTRYPOINT, then the command line in place of CMD" : 'the command line in place of CMD'}${init}`,
    };
  }
  const parts = [hasEntrypoint ? 'ENTRYPOINT' : '', (image.Cmd ?? []).length > 0 ? 'CMD' : ''].filter(Boolean);
  return { from: 'image', detail: `${parts.join(' + ') || 'nothing'}${init}` };
}

/** Per variable name in the final environment: -e wins over --env-file, which wins over the image. */
function envProvenance(image: ContainerConfig, o: ProvenanceFlags, spec: Spec): Record<string, Provenance> {
  const fromFlag = new Set(o.envFlagNames ?? []);
  const fromFile = new Set(o.envFileNames ?? []);
  const fromImage = new Set((image.Env ?? []).map(envKey));
  const out: Record<string, Provenance> = {};
  for (const e of spec.process.env) {
    const k = envKey(e);
    out[k] = fromFlag.has(k)
      ? flag('-e')
      : fromFile.has(k)
        ? flag('--env-file')
        : fromImage.has(k)
          ? { from: 'image', detail: 'ENV' }
          : { from: 'default', detail: k === 'PATH' ? "Docker's default PATH" : undefined };
    if (out[k].detail === undefined) delete out[k].detail;
  }
  return out;
}

function mountsProvenance(o: ProvenanceFlags, spec: Spec): Record<string, Provenance> {
  const by = new Map<string, Provenance>();
  for (const d of o.etcFiles ?? []) by.set(d, { from: 'default', detail: 'written by tsrun for the network' });
  for (const d of o.imageVolumes ?? []) by.set(d, { from: 'image', detail: 'VOLUME: an anonymous volume' });
  for (const m of o.mounts ?? []) for (const d of m.destinations) by.set(d, flag(m.flag));
  const out: Record<string, Provenance> = {};
  for (const m of spec.mounts) out[m.destination] = by.get(m.destination) ?? DEFAULT;
  return out;
}

/** Each namespace type: a flag that set it (joined, host, or private on request), else the default. */
function namespacesProvenance(o: ProvenanceFlags, spec: Spec): Record<string, Provenance> {
  const flags: Record<string, [string, string | undefined]> = {
    network: ['--network', o.network !== undefined && o.network !== 'bridge' ? o.network : undefined],
    pid: ['--pid', o.pid],
    ipc: ['--ipc', o.ipc],
    uts: ['--uts', o.uts],
    user: ['--userns', o.userns],
  };
  const out: Record<string, Provenance> = {};
  const types = new Set([...spec.linux.namespaces.map((n) => n.type), ...Object.keys(flags)]);
  for (const t of types) {
    const [name, value] = flags[t] ?? ['', undefined];
    const present = spec.linux.namespaces.some((n) => n.type === t);
    if (value) out[t] = flag(name, present ? value : `${value}: the host's`);
    else if (t === 'user' && o.rootless) out[t] = { from: 'default', detail: 'rootless: the user namespace of tsrun' };
    else if (present) out[t] = { from: 'default', detail: t === 'network' ? 'the bridge network' : undefined };
    else continue;
    if (out[t].detail === undefined) delete out[t].detail;
  }
  return out;
}
