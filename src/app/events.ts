/**
 * `tsrun events`: what happened to the containers (and images) of this store, in `docker
 * events`'s shape — as far as a tool without a daemon can know. Nothing listens while no tsrun
 * command runs, so events are read back from what the store keeps:
 *
 *   container create   the record's creation time
 *   container start    the last start (a restarted container shows only its latest)
 *   container pause    while it is paused (the time `tsrun pause` froze it)
 *   container die      the last exit, with its exitCode
 *   container health_status: S   the last change of a running container's health (app/healthcheck.ts)
 *   image pull         when an image that came from a registry was stored
 *   image tag          an image's last tagging (build, tag, load, import, commit)
 *
 * Not known: destroy (a removed container leaves nothing), stop/kill as separate from die,
 * exec, attach, network and volume events, and starts before the latest. With --since the
 * known past is replayed; without --until the command then follows (polling the store every
 * second) until interrupted, as docker events streams.
 */
import { TsrunError } from '../errors.js';
import { familiarName, parseReference } from '../reference/reference.js';
import { tagsOf } from '../store/images.js';
import { pausedMarker } from '../runtime/records.js';
import { readFileSync } from 'node:fs';
import type { AppContext } from './context.js';
import { openEnv, type Env } from './containers.js';
import { healthChange } from './healthcheck.js';

export interface TsrunEventRecord {
  Type: 'container' | 'image';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Seconds and nanoseconds since the epoch. */
  time: number;
  timeNano: number;
  /** Legacy fields docker still prints in JSON. */
  status?: string;
  id?: string;
  from?: string;
}

/** A time as docker events takes it: RFC 3339 / a date, unix seconds (with fraction), or a duration ago ("10m"). */
export function parseEventTime(s: string, now = Date.now()): number {
  const dur = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(s);
  if (dur) {
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    return now - Number(dur[1]) * (mult[dur[2] as string] as number);
  }
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new TsrunError('ERR_USAGE', `invalid time "${s}"`, {
      hint: 'use a time (2024-01-02T15:04:05Z), unix seconds, or a duration ago (10m, 1h)',
    });
  return t;
}

function event(
  type: TsrunEventRecord['Type'],
  action: string,
  id: string,
  attrs: Record<string, string>,
  iso: string,
): TsrunEventRecord | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  const e: TsrunEventRecord = {
    Type: type,
    Action: action,
    Actor: { ID: id, Attributes: attrs },
    scope: 'local',
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
  if (type === 'container') Object.assign(e, { status: action, id, from: attrs.image });
  return e;
}

/** Every event the store can tell of, oldest first. */
export async function knownEvents(env: Env): Promise<TsrunEventRecord[]> {
  const out: (TsrunEventRecord | undefined)[] = [];
  for (const c of await env.containers.list()) {
    const r = c.record;
    const attrs = { ...r.config.labels, image: r.image, name: r.name };
    out.push(event('container', 'create', r.id, attrs, r.created));
    const finished = c.observed.finishedAt ?? r.state.finishedAt;
    const exited = c.observed.status === 'exited' && finished !== undefined;
    // The start time is written just after `runtime start`: a command that exits at once can
    // be recorded as dying before it started. The order is known, so keep it.
    let started = c.observed.startedAt ?? r.state.startedAt;
    if (started && exited && Date.parse(started) > Date.parse(finished)) started = finished;
    if (started) out.push(event('container', 'start', r.id, attrs, started));
    const health = healthChange(c);
    if (health) out.push(event('container', `health_status: ${health.status}`, r.id, attrs, health.at));
    if (c.observed.paused) {
      try {
        out.push(event('container', 'pause', r.id, attrs, readFileSync(pausedMarker(c.paths), 'utf8').trim()));
      } catch {
        /* unpaused meanwhile */
      }
    }
    if (exited)
      out.push(event('container', 'die', r.id, { ...attrs, exitCode: String(c.observed.exitCode) }, finished));
  }
  const file = await env.store.readImages();
  for (const img of Object.values(file.images)) {
    const names = tagsOf(file, img.id).map((t) => familiarName(parseReference(t)));
    if (img.repoDigests.length > 0)
      out.push(event('image', 'pull', img.id, { name: names[0] ?? (img.repoDigests[0] as string) }, img.storedAt));
    if (img.lastTagTime && names[0]) out.push(event('image', 'tag', img.id, { name: names[0] }, img.lastTagTime));
  }
  return out.filter((e): e is TsrunEventRecord => e !== undefined).sort((a, b) => a.timeNano - b.timeNano);
}

/** docker events --filter: the same key ORs, different keys AND. */
export function eventFilter(filters: readonly string[]): (e: TsrunEventRecord) => boolean {
  const by = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i <= 0) throw new TsrunError('ERR_USAGE', `bad format of filter (expected name=value): ${f}`);
    const k = f.slice(0, i).toLowerCase();
    if (!['container', 'event', 'type', 'image', 'label', 'scope'].includes(k))
      throw new TsrunError('ERR_USAGE', `invalid filter '${k}'`, {
        hint: 'filters: container, event, type, image, label',
      });
    by.set(k, [...(by.get(k) ?? []), f.slice(i + 1)]);
  }
  const match: Record<string, (e: TsrunEventRecord, v: string) => boolean> = {
    container: (e, v) => e.Type === 'container' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v),
    event: (e, v) => e.Action === v,
    type: (e, v) => e.Type === v,
    image: (e, v) =>
      (e.Type === 'container' ? e.Actor.Attributes.image : e.Actor.Attributes.name) === v || e.Actor.ID === v,
    label: (e, v) => {
      const j = v.indexOf('=');
      return j < 0 ? v in e.Actor.Attributes : e.Actor.Attributes[v.slice(0, j)] === v.slice(j + 1);
    },
    scope: (_e, v) => v === 'local',
  };
  return (e) =>
    [...by].every(([k, vs]) => vs.some((v) => (match[k] as (e: TsrunEventRecord, v: string) => boolean)(e, v)));
}

export interface EventsOptions {
  since?: string;
  until?: string;
  filters?: string[];
}

/**
 * Emit the events: the known past within --since/--until, then (without --until, or an --until
 * in the future) new ones as they appear, until `signal` aborts or --until passes.
 */
export async function streamEvents(
  ctx: AppContext,
  o: EventsOptions,
  emit: (e: TsrunEventRecord) => void,
  signal?: AbortSignal,
): Promise<void> {
  const env = await openEnv(ctx);
  const started = Date.now();
  const since = o.since !== undefined ? parseEventTime(o.since, started) : started;
  const until = o.until !== undefined ? parseEventTime(o.until, started) : Infinity;
  const keep = eventFilter(o.filters ?? []);
  const seen = new Set<string>();
  const key = (e: TsrunEventRecord) => `${e.Type} ${e.Action} ${e.Actor.ID} ${e.timeNano}`;
  // Without --since, what already happened is not shown (docker shows only new events).
  if (o.since === undefined) for (const e of await knownEvents(env)) seen.add(key(e));
  for (;;) {
    for (const e of await knownEvents(env)) {
      const k = key(e);
      if (seen.has(k)) continue;
      seen.add(k);
      const ms = e.timeNano / 1e6;
      if (ms < since || ms > until || !keep(e)) continue;
      emit(e);
    }
    if (Date.now() > until || signal?.aborted) return;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(10, until - Date.now() + 1))));
  }
}
