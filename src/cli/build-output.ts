/**
 * Docker's classic builder text, as a listener of the build's events (build/builder.ts):
 * `Step n/m : INSTRUCTION`, ` ---> Using cache`, ` ---> Running in ID`, ` ---> ID`, the base
 * image's "Unable to find image" on the same stream, and unused build-args on stderr (even with
 * -q, as Docker). The RUN steps' own output is written by the caller, between these lines.
 */
import type { Reporter } from '../events.js';
import { imageSourceLine } from './run-output.js';

const short = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 12);

export function buildTextReporter(out: NodeJS.WritableStream, err: NodeJS.WritableStream, quiet: boolean): Reporter {
  const line = (t: string) => {
    if (!quiet) out.write(`${t}\n`);
  };
  return {
    emit: (e) => {
      switch (e.type) {
        case 'build-step':
          return line(`Step ${e.step}/${e.total} : ${e.instruction}`);
        case 'build-triggers':
          return line(`# Executing ${e.count} build trigger${e.count > 1 ? 's' : ''}`);
        case 'build-trigger':
          return line(` ---> Running trigger: ${e.instruction}`);
        case 'build-cache-hit':
          return line(' ---> Using cache');
        case 'build-run':
          return line(` ---> Running in ${e.id.slice(0, 12)}`);
        case 'build-step-done':
          return line(` ---> ${short(e.id)}`);
        case 'build-unused-arg':
          err.write(`[Warning] One or more build-args [${e.name}] were not consumed\n`);
          return;
        default: {
          const text = imageSourceLine(e);
          if (text !== undefined) line(text);
        }
      }
    },
  };
}
