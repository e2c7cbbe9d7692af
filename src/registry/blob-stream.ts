/**
 * A blob download that finishes on a flaky link: when the connection drops, ends early or
 * stalls (no byte for `stallMs`), the blob is asked for again from the byte already received with
 * an HTTP `Range: bytes=N-` request (RFC 9110 §14), and the new bytes continue the same stream.
 * Every request goes to the registry's blob URL again, so a CDN redirect whose signed URL expired
 * is simply followed anew.
 *
 * A registry that ignores Range answers 200 with the whole blob: that answer is read from its
 * first byte and the part already delivered is dropped, which is the blob started over without
 * the consumer seeing it. The consumer (the digest and size check, the ingest file, the
 * unpacker) sees one continuous byte stream either way, so the digest still covers the whole blob.
 *
 * Contract: `out` receives exactly the blob's bytes in order and is ended only after `size` bytes
 * arrived; at most `maxResumes` new requests are made, then `out` is destroyed with an
 * ERR_NETWORK naming the blob, the byte reached and what was tried (not retryable: the retries
 * were these). Destroying `out`, or aborting `signal`, stops the download. Backpressure is
 * honoured, and time spent waiting for a slow consumer never counts as a stall.
 */
import type { Readable, Writable } from 'node:stream';
import { TsrunError } from '../errors.js';

export interface BlobRange {
  body: Readable;
  /** Leading bytes of `body` that were already delivered (the registry ignored Range). */
  skip: number;
}

export interface ResumeOptions {
  /** What is being done, for messages: "fetching blob sha256:… from host/repo". */
  action: string;
  size: number;
  stallMs: number;
  maxResumes: number;
  signal?: AbortSignal;
  /** Told before each new request, with the offset it starts from. */
  onResume?: (offset: number, attempt: number, reason: string) => void;
}

/** Defaults, and the environment's say: TSRUN_STALL_TIMEOUT (seconds), TSRUN_BLOB_RESUMES. */
export function resumeSettings(env: NodeJS.ProcessEnv): { stallMs: number; maxResumes: number } {
  const stall = Number(env.TSRUN_STALL_TIMEOUT);
  const resumes = Number(env.TSRUN_BLOB_RESUMES);
  return {
    stallMs: Number.isFinite(stall) && stall > 0 ? stall * 1000 : 30_000,
    maxResumes: Number.isInteger(resumes) && resumes >= 0 ? resumes : 5,
  };
}

export function pumpResumable(
  first: Readable,
  open: (offset: number) => Promise<BlobRange>,
  out: Writable,
  o: ResumeOptions,
): void {
  let received = 0;
  let resumes = 0;
  let current: Readable | undefined;
  let finished = false;

  const fail = (err: Error) => {
    if (finished) return;
    finished = true;
    current?.destroy();
    out.destroy(err);
  };

  const onAbort = () => {
    const e = new Error('aborted');
    e.name = 'AbortError';
    current?.destroy(e);
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  out.once('close', () => {
    finished = true;
    o.signal?.removeEventListener('abort', onAbort);
    if (current && !current.destroyed) current.destroy();
  });

  const interrupted = (body: Readable, err: Error & { code?: string }) => {
    if (finished || body !== current) return;
    if (err.name === 'AbortError' || o.signal?.aborted) {
      fail(new TsrunError('ERR_NETWORK', `${o.action}: aborted`, { cause: err, retryable: false }));
      return;
    }
    const reason = err.code ?? err.message;
    if (resumes >= o.maxResumes) {
      fail(
        new TsrunError(
          'ERR_NETWORK',
          `${o.action}: the connection failed at byte ${received} of ${o.size} (${reason}); ${o.maxResumes} resumed requests did not finish it`,
          {
            cause: err,
            retryable: false,
            hint: 'check the connection to the registry; TSRUN_BLOB_RESUMES and TSRUN_STALL_TIMEOUT tune how hard tsrun tries',
          },
        ),
      );
      return;
    }
    resumes++;
    o.onResume?.(received, resumes, reason);
    const delay = Math.min(200 * 2 ** (resumes - 1), 5000);
    setTimeout(() => {
      if (finished) return;
      open(received).then(
        (next) => {
          if (finished) next.body.destroy();
          else attach(next.body, next.skip);
        },
        (e: Error) =>
          fail(
            e instanceof TsrunError
              ? e
              : new TsrunError('ERR_NETWORK', `${o.action}: resuming at byte ${received}: ${e.message}`, {
                  cause: e,
                  retryable: false,
                }),
          ),
      );
    }, delay); // not unref'd: this timer is what keeps the process waiting for the rest
  };

  const attach = (body: Readable, skip: number) => {
    current = body;
    let toSkip = skip;
    let timer: NodeJS.Timeout | undefined;
    const disarm = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    const arm = () => {
      disarm();
      timer = setTimeout(() => {
        body.destroy(Object.assign(new Error(`no data for ${Math.round(o.stallMs / 1000)} s`), { code: 'ETIMEDOUT' }));
      }, o.stallMs);
      timer.unref();
    };
    arm();
    body.on('data', (chunk: Buffer) => {
      if (toSkip > 0) {
        if (chunk.length <= toSkip) {
          toSkip -= chunk.length;
          arm();
          return;
        }
        chunk = chunk.subarray(toSkip);
        toSkip = 0;
      }
      received += chunk.length;
      if (out.write(chunk)) {
        arm();
        return;
      }
      // A slow consumer is not a stalled registry: stop the clock until it drains.
      disarm();
      body.pause();
      out.once('drain', () => {
        if (!body.destroyed && body === current) {
          arm();
          body.resume();
        }
      });
    });
    body.once('end', () => {
      disarm();
      if (body !== current || finished) return;
      if (received < o.size) {
        interrupted(body, new Error(`the connection ended after ${received} of ${o.size} bytes`));
        return;
      }
      finished = true;
      o.signal?.removeEventListener('abort', onAbort);
      out.end();
    });
    body.once('error', (err: Error) => {
      disarm();
      interrupted(body, err);
    });
  };

  attach(first, 0);
}
