/**
 * `--explain`: a listener on the one event stream (src/events.ts) that tells a command's stages
 * on stderr as they happen, `[n/N] Stage  …` — or, with json, one object per event.
 *
 * A stage is told when an event closes it (stages.ts: closesStage, so "Start" comes before the
 * container's output) or when an event of a later stage arrives; stages that saw no event say
 * why (already in the store, --network none, the container runs on). At the end (finish), what is
 * left is told: reached or not. Presentation only: it never changes what the pipeline does, and
 * it writes nothing on stdout, so the container's own output is unchanged on its own streams.
 *
 * brief has no timings and is deterministic for the same run (ids, pids and addresses aside);
 * full adds every runtime argv, each CNI plugin's input and result, and timings (ms per stage).
 */
import type { Reporter, TsrunEvent } from '../../events.js';
import { layoutNote } from './layout.js';
import { genericLine, renderStage } from './render.js';
import { closesStage, COMMAND_STAGES, DEFERRED, stageIndex, type ExplainVerb } from './stages.js';

export type ExplainMode = 'brief' | 'full' | 'json';

export const SCHEMA = 'tsrun.explain/v1';

export interface ExplainReporter extends Reporter {
  /** Tell the stages not told yet (once; `failed`: the command failed). */
  finish(failed: boolean): void;
}

export interface ExplainOptions {
  verb: ExplainVerb;
  mode: ExplainMode;
  err: NodeJS.WritableStream;
  color: boolean;
  now?: () => number;
}

/** Events never told: many per second, and never the same twice (json says so too). */
const SKIPPED = new Set(['layer-progress']);

export function explainReporter(o: ExplainOptions): ExplainReporter {
  const stages = COMMAND_STAGES[o.verb];
  const total = stages.length;
  const buckets: TsrunEvent[][] = stages.map(() => []);
  // Events of no stage (registry requests, warnings, new types), told with the stage they came in.
  const extras: TsrunEvent[][] = stages.map(() => []);
  let current = 0;
  const seen: TsrunEvent[] = [];
  const now = o.now ?? (() => Date.now());
  // full's timings: from the stage before being told to this one being told.
  let last = now();
  let next = 0;
  let finished = false;
  let failed = false;

  const write = (lines: string[]) => {
    if (lines.length > 0) o.err.write(`${lines.join('\n')}\n`);
  };

  const tell = (i: number) => {
    const key = stages[i];
    if (key === undefined) return;
    const t = now();
    const ms = o.mode === 'full' ? Math.max(0, t - last) : undefined;
    last = t;
    const mode = o.mode === 'full' ? 'full' : 'brief';
    write(
      renderStage(i + 1, total, key, buckets[i] ?? [], extras[i] ?? [], {
        mode,
        verb: o.verb,
        seen,
        failed,
        color: o.color,
        ms,
      }),
    );
  };

  /** Tell every stage before `upTo`. */
  const tellUpTo = (upTo: number) => {
    while (next < upTo) tell(next++);
  };

  const json = (e: TsrunEvent) => {
    let i = stageIndex(stages, e);
    if (i < 0) i = Math.min(next, total - 1);
    o.err.write(
      `${JSON.stringify({ schema: SCHEMA, command: o.verb, stage: stages[i], n: i + 1, N: total, event: e })}\n`,
    );
  };

  return {
    detailed: true,
    emit(e: TsrunEvent) {
      if (finished || SKIPPED.has(e.type)) return;
      if (o.mode === 'json') return json(e);
      seen.push(e);
      const i = stageIndex(stages, e);
      if (i < 0 || i < next) {
        // A stage already told (events of parallel steps), or no stage: told where the walk is.
        if (next >= total || (i >= 0 && i < next)) {
          const l = genericLine(e, o.mode === 'full' ? 'full' : 'brief');
          if (l && (o.mode === 'full' || i < 0)) write(layoutNote(l.label, l.text));
        } else extras[Math.max(current, next)]?.push(e);
        return;
      }
      if (DEFERRED.has(e.type)) {
        buckets[i]?.push(e);
        return;
      }
      tellUpTo(i);
      current = i;
      buckets[i]?.push(e);
      if (closesStage(e)) tellUpTo(i + 1);
    },
    finish(f: boolean) {
      if (finished) return;
      failed = f;
      if (o.mode !== 'json') tellUpTo(total);
      finished = true;
    },
  };
}
