/**
 * One stage of `--explain` as text: the stage's events → its summary and lines (the stage
 * modules), laid out to 100 columns (layout.ts). An event this module does not know is one
 * generic line — its type and its plain fields — so a new event never breaks an explanation.
 */
import type { TsrunEvent } from '../../events.js';
import {
  blobsText,
  imageText,
  layersText,
  manifestText,
  pushManifestText,
  pushTargetText,
  resolveText,
  resultText,
  stepsText,
  storeText,
} from './image-stages.js';
import {
  cleanupText,
  createText,
  execText,
  exitText,
  networkText,
  removeText,
  rootfsText,
  specText,
  startText,
  stopText,
} from './container-stages.js';
import { detail, layoutStage, raw, type Line, type StageText } from './layout.js';
import { STAGE_TITLES, type ExplainVerb, type StageKey } from './stages.js';

export interface TextCtx {
  mode: 'brief' | 'full';
  verb: ExplainVerb;
  /** Every event seen so far, of every stage. */
  seen: readonly TsrunEvent[];
  /** The command failed: stages without events were not reached. */
  failed: boolean;
}

function stageText(key: StageKey, ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  switch (key) {
    case 'image':
    case 'base':
      return imageText(ev, ctx);
    case 'resolve':
      return resolveText(ev);
    case 'manifest':
      return manifestText(ev, ctx.seen);
    case 'layers':
      return layersText(ev, ctx.seen, ctx);
    case 'store':
      return storeText(ev);
    case 'rootfs':
      return rootfsText(ev, ctx);
    case 'spec':
      return specText(ev, ctx);
    case 'network':
      return networkText(ev, ctx.seen, ctx);
    case 'create':
      return createText(ev, ctx.seen, ctx);
    case 'start':
      return startText(ev, ctx.seen, ctx);
    case 'exit':
      return exitText(ev, ctx);
    case 'cleanup':
      return cleanupText(ev, ctx.seen, ctx);
    case 'stop':
      return stopText(ev, ctx.seen, ctx);
    case 'remove':
      return removeText(ev);
    case 'exec':
      return execText(ev, ctx.seen, ctx);
    case 'steps':
      return stepsText(ev, ctx);
    case 'result':
      return resultText(ctx.seen);
    case 'target':
      return pushTargetText(ev);
    case 'blobs':
      return blobsText(ev, ctx.seen);
    case 'push-manifest':
      return pushManifestText(ev, ctx.seen);
  }
}

/** The plain fields of an event (strings, numbers, booleans), each cut to 60 characters. */
function plainFields(e: TsrunEvent): string {
  return Object.entries(e)
    .filter(([k, v]) => k !== 'type' && ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => {
      const s = String(v).replace(/\s*\n\s*/g, ' ⏎ ');
      return `${k}=${s.length > 60 ? `${s.slice(0, 59)}…` : s}`;
    })
    .join(' ');
}

/** A line for an event told outside its own stage (warnings, debug lines, new event types). */
export function genericLine(e: TsrunEvent, mode: 'brief' | 'full'): Line | undefined {
  switch (e.type) {
    case 'warning':
    case 'container-warning':
      return detail('warning', e.message);
    case 'debug':
      return mode === 'full' ? raw('debug', `${e.scope}: ${e.message}`) : undefined;
    case 'layer-progress':
    case 'layer-wait':
    case 'layer-verifying':
      return undefined;
    case 'registry-request': {
      // The raw HTTP line (full only): the URL has no credentials or query, auth is the scheme.
      if (mode === 'brief') return undefined;
      const answer = e.status !== undefined ? String(e.status) : `no answer: ${e.error ?? '?'}`;
      const extra = [
        e.auth !== 'none' ? `auth ${e.auth}` : '',
        e.redirects ? `${e.redirects} redirect(s)${e.blobStore ? ' to blob storage' : ''}` : '',
        e.bytes !== undefined ? `${e.bytes} bytes` : '',
        e.attempt ? `attempt ${e.attempt}` : '',
      ].filter(Boolean);
      return raw('http', `${e.method} ${e.url} → ${answer}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`);
    }
    case 'runtime':
    case 'monitor':
      if (mode === 'brief') return undefined;
      return raw(
        e.type === 'runtime' ? 'argv' : 'monitor',
        `${e.argv.join(' ')}${'exitCode' in e && e.exitCode !== undefined ? `  (exit ${e.exitCode})` : ''}`,
      );
    default:
      return detail(e.type, plainFields(e));
  }
}

export function renderStage(
  n: number,
  total: number,
  key: StageKey,
  ev: readonly TsrunEvent[],
  extra: readonly TsrunEvent[],
  ctx: TextCtx & { ms?: number; color: boolean },
): string[] {
  const t = stageText(key, ev, ctx);
  const head = `[${n}/${total}] ${STAGE_TITLES[key]}${ctx.ms !== undefined ? ` (${ctx.ms} ms)` : ''}`;
  const more = extra.flatMap((e) => genericLine(e, ctx.mode) ?? []);
  // Known events of the stage without a line of their own (new fields, new types) stay visible in full.
  const lines = [...more, ...t.lines];
  return layoutStage(head, { summary: t.summary, lines }, ctx.color);
}
