/**
 * Listeners on the event stream for `pull`: a per-layer progress display on a terminal, Docker's
 * plain status lines otherwise, nothing with -q, and every event as a JSON line with --debug.
 * This is presentation only: it never changes what the pipeline does.
 */
import type { Reporter, TsrunEvent } from '../events.js';
import { humanSize } from './format.js';

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** Plain lines in the shape of `docker pull` on a non-terminal. */
export function plainPullReporter(
  out: Pick<NodeJS.WritableStream, 'write'>,
  err: Pick<NodeJS.WritableStream, 'write'>,
): Reporter {
  const started = new Set<string>();
  return {
    emit(e: TsrunEvent) {
      switch (e.type) {
        case 'layer-exists':
          out.write(`${short(e.digest)}: Already exists\n`);
          break;
        case 'layer-start':
          if (!started.has(e.digest)) {
            started.add(e.digest);
            out.write(`${short(e.digest)}: Pulling fs layer\n`);
          }
          break;
        case 'layer-retry':
          out.write(`${short(e.digest)}: Retrying (attempt ${e.attempt + 1}): ${e.reason}\n`);
          break;
        case 'blob-resume':
          out.write(`${short(e.digest)}: Resuming at ${humanSize(e.offset)} (${e.reason})\n`);
          break;
        case 'layer-done':
          out.write(`${short(e.digest)}: Pull complete\n`);
          break;
        case 'warning':
          err.write(`WARNING: ${e.message}\n`);
          break;
        default:
          break;
      }
    },
  };
}

/** A live per-layer display for terminals (cli-progress), loaded only when used. */
export async function ttyPullReporter(
  stream: NodeJS.WriteStream,
  err: NodeJS.WritableStream,
): Promise<Reporter & { stop(): void }> {
  const { MultiBar, Presets } = (await import('cli-progress')).default;
  const bars = new MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      barsize: 30,
      format: '{id}: {status} {bar} {sizes}',
      autopadding: true,
      forceRedraw: true,
    },
    Presets.shades_classic,
  );
  const byDigest = new Map<string, ReturnType<typeof bars.create>>();
  const bar = (digest: string, total: number) => {
    let b = byDigest.get(digest);
    if (!b) {
      b = bars.create(Math.max(total, 1), 0, { id: short(digest), status: 'Waiting', sizes: '' });
      byDigest.set(digest, b);
    }
    return b;
  };
  return {
    emit(e: TsrunEvent) {
      switch (e.type) {
        case 'layer-wait':
          bar(e.digest, 1).update(0, { status: 'Waiting      ' });
          break;
        case 'layer-exists': {
          const b = bar(e.digest, 1);
          b.update(b.getTotal(), { status: 'Already exists', sizes: '' });
          break;
        }
        case 'layer-start': {
          const b = bar(e.digest, e.size);
          b.setTotal(Math.max(e.size, 1));
          b.update(0, { status: 'Downloading  ', sizes: `0B/${humanSize(e.size)}` });
          break;
        }
        case 'layer-progress':
          bar(e.digest, e.size).update(e.done, {
            status: 'Downloading  ',
            sizes: `${humanSize(e.done)}/${humanSize(e.size)}`,
          });
          break;
        case 'layer-retry':
          bar(e.digest, 1).update(0, { status: `Retrying (${e.attempt + 1})` });
          break;
        case 'blob-resume':
          bar(e.digest, e.size).update(e.offset, { status: 'Resuming     ' });
          break;
        case 'layer-verifying':
          bar(e.digest, 1).update({ status: 'Verifying    ' });
          break;
        case 'layer-done': {
          const b = bar(e.digest, 1);
          b.update(b.getTotal(), { status: 'Pull complete', sizes: humanSize(e.unpackedBytes) });
          break;
        }
        case 'warning':
          bars.log(`WARNING: ${e.message}\n`);
          break;
        default:
          break;
      }
    },
    stop() {
      bars.update();
      bars.stop();
      void err;
    },
  };
}

/** Every event as one JSON line (--debug). */
export function debugReporter(err: NodeJS.WritableStream): Reporter {
  return {
    detailed: true,
    emit: (e) => {
      err.write(`DEBU ${JSON.stringify(e)}\n`);
    },
  };
}
