/**
 * Volume mounts of `run`/`create`: `-v` told apart into binds and volumes as Docker's Linux
 * parser does (moby volume/mounts/linux_parser.go), `--mount type=volume`, and the image's
 * `VOLUME` entries, merged into one list of `VolumeMount`s.
 *
 *   -v /ctr            an anonymous volume          -v /ctr:ro     the same, read-only
 *   -v NAME:/ctr[:o]   the named volume NAME        -v /host:/ctr  a bind (mount-flags.ts)
 *
 * Modes on volumes: ro/rw, nocopy (no copy of the image's content into an empty volume), and
 * the words Docker accepts and which mean nothing here (z, Z, consistency, propagation).
 *
 * Contract: pure. Names are checked here with Docker's message; the volumes themselves are made
 * by app/volumes.ts.
 */
import { posix } from 'node:path';
import { TsrunError } from '../errors.js';
import { checkVolumeName } from '../store/volumes.js';
import { parseVolume, type ParsedMount } from './mount-flags.js';
import type { BindMount } from './options.js';

export interface VolumeMount {
  /** Undefined: an anonymous volume (named when the container is made). */
  name?: string;
  destination: string;
  readonly: boolean;
  /** Do not copy the image's content at the destination into an empty volume. */
  nocopy: boolean;
  /** `volume-driver=`; only `local` exists. */
  driver?: string;
  /** `volume-label=`: labels of a volume this mount creates. */
  labels?: Record<string, string>;
  /** `volume-opt=`: the local driver takes none. */
  options?: Record<string, string>;
}

const MODE = /^(ro|rw|z|Z|nocopy|consistent|cached|delegated|r?shared|r?slave|r?private)$/;

function invalid(spec: string, why?: string): TsrunError {
  return new TsrunError('ERR_USAGE', `invalid volume specification: '${spec}'${why ? `: ${why}` : ''}`, {
    hint: 'use -v NAME:/container/path[:ro], -v /container/path, or -v /host/path:/container/path',
  });
}

function modes(spec: string, mode: string | undefined): string[] {
  const opts = mode === undefined ? [] : mode.split(',');
  for (const m of opts) if (!MODE.test(m)) throw invalid(spec, `invalid mode: ${m}`);
  return opts;
}

function isHostPath(src: string): boolean {
  return src.startsWith('/') || src === '.' || src === '..' || /^(\.\.?|~)(\/|$)/.test(src);
}

/** One `-v` value: a bind, or a volume (named or anonymous). */
export function parseVolumeFlag(
  spec: string,
  cwd: string,
  home = '/',
): { bind: BindMount; volume?: undefined } | { volume: VolumeMount; bind?: undefined } {
  const parts = spec.split(':');
  if (parts.some((p) => p === '') || parts.length > 3) throw invalid(spec);
  // `/ctr` or `/ctr:MODE`: anonymous.
  if (parts.length === 1 || (parts.length === 2 && MODE.test(parts[1] ?? '') && !(parts[1] ?? '').startsWith('/'))) {
    const destination = parts[0] ?? '';
    if (!destination.startsWith('/')) throw invalid(spec, 'the container path must be absolute');
    const opts = modes(spec, parts[1]);
    return { volume: { destination, readonly: opts.includes('ro'), nocopy: opts.includes('nocopy') } };
  }
  const [src, destination, mode] = parts as [string, string, string | undefined];
  if (isHostPath(src)) return { bind: parseVolume(spec, cwd, home) };
  if (!destination.startsWith('/')) throw invalid(spec, 'the container path must be absolute');
  checkVolumeName(src);
  const opts = modes(spec, mode);
  return { volume: { name: src, destination, readonly: opts.includes('ro'), nocopy: opts.includes('nocopy') } };
}

/** `--mount type=volume,…` as parsed by mount-flags.ts. */
export function volumeFromMount(m: ParsedMount): VolumeMount {
  if (m.source !== undefined) checkVolumeName(m.source);
  return {
    ...(m.source !== undefined ? { name: m.source } : {}),
    destination: m.destination,
    readonly: m.readonly,
    nocopy: Boolean(m.nocopy),
    ...(m.driver !== undefined ? { driver: m.driver } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    ...(m.volumeOptions ? { options: m.volumeOptions } : {}),
  };
}

function clean(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * The image's `VOLUME` entries as anonymous volumes, except where the user mounts something
 * (a bind, a volume, a tmpfs) at the same place (moby daemon/create_unix.go: a mount point the
 * user gave wins over the image's).
 */
export function imageVolumes(imageVolumes: Record<string, unknown> | null | undefined, taken: readonly string[]) {
  const used = new Set(taken.map(clean));
  const out: VolumeMount[] = [];
  for (const v of Object.keys(imageVolumes ?? {})) {
    if (!v.startsWith('/')) continue;
    const destination = clean(v);
    if (used.has(destination) || destination === '/') continue;
    used.add(destination);
    out.push({ destination, readonly: false, nocopy: false });
  }
  return out;
}

/** A volume as a container record keeps it (runtime/records.ts `host.volumes`). */
export interface VolumeRef {
  name: string;
  destination: string;
  readonly: boolean;
  /** The container made it and owns it: `rm -v` and `run --rm` remove it. */
  anonymous: boolean;
  nocopy?: boolean;
}
