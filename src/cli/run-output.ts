/**
 * What `run` and `create` print on stderr besides the pull's progress, as a listener of their
 * events: Docker's "Unable to find image 'X' locally", the warnings about a damaged layer or a
 * local image of another platform, and the container's own warnings (published ports with the
 * host's network). `--debug` adds every event as a JSON line (withDebug).
 */
import { fanout, silentReporter, type Reporter, type TsrunEvent } from '../events.js';
import { debugReporter } from './progress.js';
import { explainListeners } from './explain/flag.js';
import type { CliIo } from './output.js';

/** The text line of an image-source event (app/image-source.ts), if it is one. */
export function imageSourceLine(e: TsrunEvent): string | undefined {
  switch (e.type) {
    case 'image-not-local':
      return `Unable to find image '${e.reference}' locally`;
    case 'image-damaged':
      return `WARNING: layer ${e.chainId.slice(7, 19)} of ${e.reference} is damaged (${e.reason}): pulling the image again`;
    case 'image-platform':
      return `WARNING: ${e.message}`;
    default:
      return undefined;
  }
}

export function runTextReporter(err: Pick<NodeJS.WritableStream, 'write'>): Reporter {
  return {
    emit: (e) => {
      const line = e.type === 'container-warning' ? `WARNING: ${e.message}` : imageSourceLine(e);
      if (line !== undefined) err.write(`${line}\n`);
    },
  };
}

/** `reporter`, plus every event as a JSON line on stderr with --debug. */
export function withDebug(io: CliIo, reporter?: Reporter): Reporter {
  // --explain (explain/flag.ts) listens beside the others.
  const all = [
    ...(reporter ? [reporter] : []),
    ...(io.globals().debug ? [debugReporter(io.err)] : []),
    ...explainListeners(),
  ];
  return all.length === 0 ? silentReporter : all.length === 1 ? (all[0] as Reporter) : fanout(...all);
}
