/**
 * The one event interface every pipeline stage reports through.
 *
 * Stages never print: they call `reporter.emit(event)`. The CLI attaches listeners (a progress
 * display on a terminal, plain lines otherwise, nothing with -q, everything with --debug, and
 * later --explain). Events are plain data so they can be logged as JSON.
 */

export type PullEvent =
  | { type: 'resolve'; reference: string; registry: string; repository: string; endpoint: string; mirror?: boolean }
  | { type: 'manifest'; digest: string; mediaType: string; platform?: string; fromIndex?: string }
  | { type: 'config'; digest: string }
  | { type: 'layer-start'; digest: string; size: number; chainId: string }
  | { type: 'layer-exists'; digest: string; chainId: string }
  | { type: 'layer-wait'; digest: string; chainId: string }
  | { type: 'layer-progress'; digest: string; done: number; size: number }
  | { type: 'layer-verifying'; digest: string }
  | { type: 'layer-done'; digest: string; chainId: string; diffId: string; unpackedBytes: number }
  | { type: 'layer-retry'; digest: string; attempt: number; reason: string }
  | { type: 'blob-resume'; digest: string; offset: number; size: number; attempt: number; reason: string }
  | { type: 'image-stored'; id: string; name?: string; digest: string; fresh: boolean };

export type PushEvent =
  | { type: 'push-start'; repository: string; tag: string }
  | {
      type: 'push-blob';
      digest: string;
      outcome: 'exists' | 'mounted' | 'pushed';
      from?: string;
      /** The image config (Docker lists only layers). */ config?: boolean;
    }
  | { type: 'push-manifest'; tag: string; digest: string; size: number };

/**
 * A build's steps (build/builder.ts). `id` of build-step-done and build-cache-hit is the state's
 * id (build/cache.ts: what Docker prints as ` ---> 1a2b3c4d5e6f`); build-run names the step's
 * runtime container, its argv, network, the names (never the values) of the build arguments in
 * scope, and its RUN --mount targets.
 */
export type BuildEvent =
  | { type: 'build-step'; step: number; total: number; instruction: string }
  | { type: 'build-triggers'; count: number }
  | { type: 'build-trigger'; instruction: string }
  | { type: 'build-cache-hit'; key: string; id: string }
  | {
      type: 'build-run';
      id: string;
      argv: string[];
      network: string;
      buildArgs: string[];
      mounts: { type: string; target: string }[];
    }
  | { type: 'build-step-done'; id: string }
  | { type: 'build-unused-arg'; name: string };

/**
 * An image by reference for run, create and build's FROM (app/image-source.ts): not in the store
 * (so pulled), a damaged layer (pulled again), or a local image of another platform.
 */
export type ImageSourceEvent =
  | { type: 'image-not-local'; reference: string }
  | { type: 'image-damaged'; reference: string; chainId: string; reason: string }
  | { type: 'image-platform'; reference: string; message: string };

export type WarningEvent = { type: 'warning'; message: string };

export type DebugEvent = { type: 'debug'; scope: string; message: string; data?: unknown };

export type TsrunEvent = PullEvent | PushEvent | BuildEvent | ImageSourceEvent | WarningEvent | DebugEvent;

export interface Reporter {
  emit(event: TsrunEvent): void;
}

/** A reporter that drops everything (the default for library callers and tests). */
export const silentReporter: Reporter = { emit() {} };

/** Fan out to several listeners. */
export function fanout(...reporters: Reporter[]): Reporter {
  return {
    emit: (e) => {
      for (const r of reporters) r.emit(e);
    },
  };
}

/** Collects events into an array (tests, --explain). */
export function collectingReporter(): Reporter & { events: TsrunEvent[] } {
  const events: TsrunEvent[] = [];
  return {
    events,
    emit: (e) => {
      events.push(e);
    },
  };
}
