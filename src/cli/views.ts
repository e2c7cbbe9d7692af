/**
 * What a `--format` template sees: each object as Docker's Go struct for it, so the names
 * Docker's templates use work (`{{.ID}}` where the JSON says `Id`, `{{.Label "k"}}`, `{{.Size}}`,
 * `{{.LocalVolumes}}`), `{{json .}}` prints exactly Docker's keys (never tsrun's own records:
 * host paths, monitor pids), and an unknown field is Go's error.
 *
 * - ps rows: formatter.ContainerContext (docker/cli cli/command/formatter/container.go)
 * - images rows: formatter.imageContext (formatter/image.go)
 * - history rows: image.historyContext (cli/command/image/formatter_history.go)
 * - inspect objects: the API's JSON, readable by Go field name (typed) or JSON key (Docker's
 *   raw fallback), an unknown key failing as `map has no entry for key "X"`
 *
 * Contract: pure; the caller gathers the data.
 */
import { humanDuration, humanSize } from './format.js';
import { GoStruct } from './gotemplate/value.js';
import type { ListFormat } from './template.js';
import { GO_NAMES, type TypeShape } from './docker-types.js';
import type { ContainerSummary, PortSummary } from '../app/ps.js';

/** Docker's formatter.Ellipsis: cut to `max` columns, the last one "…". */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/** Docker's TruncateID: without "sha256:", 12 characters. */
export function truncateID(id: string): string {
  const i = id.indexOf(':');
  return id.slice(i + 1, i + 13);
}

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  const esc: Record<string, string> = {
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
    '"': '\\"',
    '\\': '\\\\',
  };
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (esc[ch]) out += esc[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp >= 0x80 && cp < 0xa0) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's time.Time.String() in local time: "2006-01-02 15:04:05 -0700 MST". */
export function goTime(iso: string | undefined): string {
  const t = new Date(iso ?? 0);
  if (Number.isNaN(t.getTime())) return '';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -t.getTimezoneOffset();
  const zone =
    new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(t).find((x) => x.type === 'timeZoneName')
      ?.value ?? '';
  const name = off === 0 && /^(GMT|UTC)$/.test(zone) ? 'UTC' : zone;
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())} ${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${name}`;
}

/** Docker's DisplayablePorts: "0.0.0.0:8000-8002->8000-8002/tcp, 0.0.0.0:9090->80/tcp, 443/tcp". */
export function displayablePorts(ports: PortSummary[]): string {
  const sorted = [...ports].sort(
    (a, b) =>
      a.privatePort - b.privatePort ||
      (a.ip ?? '').localeCompare(b.ip ?? '') ||
      (a.publicPort ?? 0) - (b.publicPort ?? 0) ||
      a.type.localeCompare(b.type),
  );
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const join = (ip: string, port: string) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  const form = (key: string, g: { first: number; last: number }) => {
    const [a, b] = key.split('/') as [string, string | undefined];
    const range = g.first === g.last ? String(g.first) : `${g.first}-${g.last}`;
    return b === undefined ? `${range}/${a}` : `${join(a, range)}->${range}/${b}`;
  };
  for (const p of sorted) {
    let key = p.type;
    if (p.ip) {
      if (p.publicPort !== p.privatePort) {
        hostMappings.push(`${join(p.ip, String(p.publicPort))}->${p.privatePort}/${p.type}`);
        continue;
      }
      key = `${p.ip}/${p.type}`;
    }
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { first: p.privatePort, last: p.privatePort });
      continue;
    }
    if (p.privatePort === g.last + 1) {
      g.last = p.privatePort;
      continue;
    }
    result.push(form(key, g));
    groups.set(key, { first: p.privatePort, last: p.privatePort });
  }
  for (const [k, g] of groups) result.push(form(k, g));
  return [...result, ...hostMappings].join(', ');
}

/** Docker's IMAGE column: an image named by id is shown truncated, a digest dropped (tag kept). */
function psImage(c: ContainerSummary, trunc: boolean): string {
  if (!c.image) return '<no image>';
  if (!trunc) return c.image;
  if (truncateID(c.imageId) === truncateID(c.image)) return truncateID(c.image);
  const at = c.image.indexOf('@');
  return at < 0 ? c.image : c.image.slice(0, at);
}

/** Docker's Status column: "Up 5 minutes", "Exited (0) 2 hours ago", "Created". */
export function psStatus(c: ContainerSummary, now = Date.now()): string {
  const ago = (iso: string | undefined) => `${humanDuration(Math.max(0, now - Date.parse(iso ?? c.created)))} ago`;
  const up = `Up ${humanDuration(Math.max(0, now - Date.parse(c.startedAt ?? c.created)))}`;
  if (c.state === 'running') {
    // Docker's State.String: "(health: starting)", "(healthy)", "(unhealthy)".
    if (!c.health || c.health === 'none') return up;
    return `${up} (${c.health === 'starting' ? 'health: starting' : c.health})`;
  }
  if (c.state === 'paused') return `${up} (Paused)`;
  if (c.state === 'created') return 'Created';
  return `Exited (${c.exitCode}) ${ago(c.finishedAt)}`;
}

function sortedMarshal(s: GoStruct): () => unknown {
  return () =>
    Object.fromEntries(
      Object.keys(s.spec.fields)
        .sort()
        .map((k) => [k, s.field(k)]),
    );
}

export function containerContext(c: ContainerSummary, trunc: boolean, now = Date.now()): GoStruct {
  const s: GoStruct = new GoStruct({
    type: '*formatter.ContainerContext',
    fields: {
      ID: () => (trunc ? truncateID(c.id) : c.id),
      Names: () => (trunc ? (c.names.find((n) => !n.includes('/')) ?? '') : c.names.join(',')),
      Image: () => psImage(c, trunc),
      Command: () => goQuote(trunc ? ellipsis(c.command, 20) : c.command),
      CreatedAt: () => goTime(c.created),
      RunningFor: () => `${humanDuration(Math.max(0, now - Date.parse(c.created)))} ago`,
      Platform: null,
      Ports: () => displayablePorts(c.ports),
      State: c.state,
      Status: () => psStatus(c, now),
      Size: () => {
        const rw = humanSize(c.sizeRw ?? 0);
        return (c.sizeRootFs ?? 0) > 0 ? `${rw} (virtual ${humanSize(c.sizeRootFs ?? 0)})` : rw;
      },
      Labels: () =>
        Object.entries(c.labels)
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(','),
      Mounts: () => c.mounts.map((m) => (trunc ? ellipsis(m.name || m.source, 15) : m.name || m.source)).join(','),
      LocalVolumes: () => String(c.mounts.filter((m) => m.driver === 'local').length),
      Networks: () => c.networks.join(','),
      HealthStatus: c.health && c.health !== 'none' ? c.health : '',
    },
    methods: { Label: { params: ['string'], fn: (k) => c.labels[k as string] ?? '' } },
  });
  s.spec.json = sortedMarshal(s);
  return s;
}

export const PS_FORMAT: Omit<ListFormat<ContainerSummary>, 'toStruct'> = {
  defaultTable: 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}',
  headers: {
    ID: 'CONTAINER ID',
    Names: 'NAMES',
    Image: 'IMAGE',
    Command: 'COMMAND',
    CreatedAt: 'CREATED AT',
    RunningFor: 'CREATED',
    Ports: 'PORTS',
    State: 'STATE',
    Status: 'STATUS',
    Size: 'SIZE',
    Labels: 'LABELS',
    Mounts: 'MOUNTS',
    LocalVolumes: 'LOCAL VOLUMES',
    Networks: 'NETWORKS',
    Platform: 'PLATFORM',
    HealthStatus: 'HEALTH STATUS',
  },
  parsePrefix: 'failed to parse template',
  execPrefix: 'failed to execute template',
};

export interface ImageSummaryRow {
  repository: string;
  tag: string;
  digest: string;
  id: string;
  created?: string;
  size: number;
  containers?: number;
}

export function imageContext(r: ImageSummaryRow, trunc: boolean, now = Date.now()): GoStruct {
  const s: GoStruct = new GoStruct({
    type: '*formatter.imageContext',
    fields: {
      ID: () => (trunc ? truncateID(r.id) : r.id),
      Repository: r.repository,
      Tag: r.tag,
      Digest: r.digest,
      CreatedSince: () =>
        r.created && Date.parse(r.created) > 0 ? `${humanDuration(Math.max(0, now - Date.parse(r.created)))} ago` : '',
      CreatedAt: () => (r.created && Date.parse(r.created) > 0 ? goTime(r.created) : goTime('1970-01-01T00:00:00Z')),
      Size: () => humanSize(r.size),
      Containers: () => (r.containers === undefined ? 'N/A' : String(r.containers)),
      SharedSize: 'N/A',
      UniqueSize: 'N/A',
    },
  });
  s.spec.json = sortedMarshal(s);
  return s;
}

export const IMAGES_HEADERS = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
};

/** Docker's NewImageFormat: the default table (with digests), and --digests added to a custom table. */
export function imagesFormat(format: string | undefined, digests: boolean): string {
  const created = '{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}';
  if (format === undefined || format === '' || format === 'table') {
    return digests
      ? `table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t${created}\t{{.Size}}`
      : `table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t${created}\t{{.Size}}`;
  }
  if (format.startsWith('table') && digests && !format.includes('{{.Digest}}')) return `${format}\t{{.Digest}}`;
  return format;
}

export interface HistorySummaryRow {
  id?: string;
  created?: string;
  createdBy: string;
  size: number;
  comment: string;
}

export function historyContext(h: HistorySummaryRow, trunc: boolean, human: boolean, now = Date.now()): GoStruct {
  const createdAt = () =>
    h.created ? new Date(h.created).toISOString().replace(/\.\d{3}Z$/, 'Z') : '0001-01-01T00:00:00Z';
  const s: GoStruct = new GoStruct({
    type: '*image.historyContext',
    fields: {
      ID: () => (h.id ? (trunc ? truncateID(h.id) : h.id) : '<missing>'),
      CreatedSince: () => {
        if (!human) return createdAt();
        if (!h.created || Number.isNaN(Date.parse(h.created)) || Date.parse(h.created) <= 0) return 'N/A';
        return `${humanDuration(Math.max(0, now - Date.parse(h.created)))} ago`;
      },
      CreatedAt: createdAt,
      CreatedBy: () => {
        const t = h.createdBy.replace(/\t/g, ' ');
        return trunc ? ellipsis(t, 45) : t;
      },
      Size: () => (human ? humanSize(h.size) : String(h.size)),
      Comment: h.comment,
    },
  });
  s.spec.json = sortedMarshal(s);
  return s;
}

export const HISTORY_HEADERS = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

export function historyFormat(format: string | undefined, human: boolean): string {
  if (format === undefined || format === '' || format === 'table') {
    return `table {{.ID}}\t{{${human ? '.CreatedSince' : '.CreatedAt'}}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}`;
  }
  return format;
}

/** JSON keys whose values are Go maps in Docker's types (a missing key reads ""). */
const MAP_KEYS = new Set([
  'Labels',
  'Data',
  'Networks',
  'Ports',
  'ExposedPorts',
  'Volumes',
  'PortBindings',
  'Options',
  'DriverOpts',
  'Sysctls',
  'Annotations',
  'StorageOpt',
  'Tmpfs',
  'Metadata',
  'Details',
  'Runtimes',
]);

const isMapShape = (sh: unknown): boolean =>
  typeof sh === 'object' && sh !== null && !Array.isArray(sh) && ('*' in sh || Object.keys(sh).length === 0);
const isStructShape = (sh: unknown): sh is TypeShape =>
  typeof sh === 'object' && sh !== null && !Array.isArray(sh) && !isMapShape(sh);

/** Go's nil slice / nil map: prints "[]" / "map[]", is false and empty, and is null in JSON. */
function nil<T extends object>(empty: T): T {
  return Object.defineProperty(empty, 'toJSON', { value: () => null, enumerable: false });
}

function wrap(v: unknown, key: string, shape: unknown, type: string): unknown {
  if (v === null && Array.isArray(shape)) return nil([]);
  if (v === null && isMapShape(shape)) return nil({});
  if (Array.isArray(v)) return v.map((x) => wrap(x, '', Array.isArray(shape) ? shape[0] : undefined, type));
  if (v && typeof v === 'object') {
    if (isMapShape(shape) || (shape === undefined && MAP_KEYS.has(key))) {
      const each = (shape as { '*'?: unknown } | undefined)?.['*'];
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wrap(x, '', each, type)]));
    }
    return inspectStruct(v as Record<string, unknown>, type, isStructShape(shape) ? shape : undefined, key);
  }
  return v;
}

/** Go's zero value of a field the JSON left out. */
function zero(shape: unknown, key: string, type: string): unknown {
  if (Array.isArray(shape)) return nil([]);
  if (isMapShape(shape)) return nil({});
  if (isStructShape(shape)) return inspectStruct({}, type, shape, key);
  return shape;
}

/**
 * An inspect object (already Docker's JSON): readable by Go field name (`ID`) or JSON key (`Id`),
 * nested objects likewise, fields of Docker's struct that the JSON lacks as zero values
 * (`shape`, src/cli/docker-types.ts); Go maps stay maps. `json .` prints the JSON unchanged.
 */
export function inspectStruct(json: Record<string, unknown>, type: string, shape?: TypeShape, key = ''): GoStruct {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) fields[k] = () => wrap(v, k, shape?.[k], type);
  for (const [k, sh] of Object.entries(shape ?? {})) if (!(k in json)) fields[k] = () => zero(sh, k, type);
  for (const [alias, k] of Object.entries(GO_NAMES[key] ?? {})) if (k in fields) fields[alias] = fields[k];
  return new GoStruct({ type, fields, json: () => json, missing: (name) => `map has no entry for key "${name}"` });
}
