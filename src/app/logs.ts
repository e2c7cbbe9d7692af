/**
 * `tsrun logs`: read a container's log, which the monitor writes in the k8s-file format
 * (conmon's, CRI's): "<RFC3339Nano> <stdout|stderr> <F|P> <text>", a P record being a piece of
 * a line continued by the next record of that stream.
 *
 * Contract: yields whole lines (P pieces joined) in file order, each with the time of its first
 * piece; `since`/`until` keep the lines whose time is within them (Docker: not before since, not
 * after until); `tail` then counts lines, an unfinished last line included (so `--tail 0` prints
 * nothing); `follow` keeps reading until the container is no longer running (or `until` has
 * passed) and the file has no more to give. Partial trailing records are held until completed.
 */
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import type { Env } from './containers.js';
import { recordTime } from './log-times.js';

export interface LogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  /** The line's bytes, without the final newline; `newline` is false for a last, unfinished line. */
  text: Buffer;
  newline: boolean;
}

interface Parsed {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: Buffer;
}

export function parseRecord(line: Buffer): Parsed | undefined {
  const a = line.indexOf(0x20);
  const b = line.indexOf(0x20, a + 1);
  const c = line.indexOf(0x20, b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const stream = line.subarray(a + 1, b).toString();
  const tag = line.subarray(b + 1, c).toString();
  if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) return undefined;
  return { time: line.subarray(0, a).toString(), stream, partial: tag === 'P', text: line.subarray(c + 1) };
}

/** Joins P pieces per stream; feed records in order, get complete lines. */
export class LineAssembler {
  private pending = new Map<string, { time: string; parts: Buffer[] }>();

  push(r: Parsed): LogLine | undefined {
    const p = this.pending.get(r.stream);
    if (r.partial) {
      if (p) p.parts.push(r.text);
      else this.pending.set(r.stream, { time: r.time, parts: [r.text] });
      return undefined;
    }
    this.pending.delete(r.stream);
    return {
      time: p?.time ?? r.time,
      stream: r.stream,
      text: p ? Buffer.concat([...p.parts, r.text]) : r.text,
      newline: true,
    };
  }

  /** Unfinished lines, at the very end of a log. */
  flush(): LogLine[] {
    const out = [...this.pending.entries()].map(([stream, p]) => ({
      time: p.time,
      stream: stream as LogLine['stream'],
      text: Buffer.concat(p.parts),
      newline: false,
    }));
    this.pending.clear();
    return out;
  }
}

export interface LogOptions {
  follow?: boolean;
  /** Only the last N lines (Docker's --tail; undefined or 'all' for everything). */
  tail?: number;
  /** Nanoseconds since the epoch (log-times.ts). */
  since?: bigint;
  until?: bigint;
}

export async function* readLogs(env: Env, query: string, o: LogOptions = {}): AsyncGenerator<LogLine> {
  const c = await env.containers.find(query);
  const file = c.paths.log;
  const asm = new LineAssembler();
  let offset = 0;
  let carry = Buffer.alloc(0);
  const readMore = async (): Promise<LogLine[]> => {
    const fh = await fs.open(file, 'r').catch(() => undefined);
    if (!fh) return [];
    try {
      const { size } = await fh.stat();
      if (size <= offset) return [];
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      offset += bytesRead;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const lines: LogLine[] = [];
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; start = nl + 1, nl = data.indexOf(0x0a, start)) {
        const r = parseRecord(data.subarray(start, nl));
        const l = r && asm.push(r);
        if (l) lines.push(l);
      }
      carry = Buffer.from(data.subarray(start));
      return lines;
    } finally {
      await fh.close();
    }
  };

  const within = (l: LogLine) => {
    if (o.since === undefined && o.until === undefined) return true;
    const t = recordTime(l.time);
    if (t === undefined) return true;
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
  };
  const lastN = (lines: LogLine[]) =>
    o.tail !== undefined && o.tail >= 0 ? (o.tail === 0 ? [] : lines.slice(-o.tail)) : lines;
  const first = (await readMore()).filter(within);
  if (!o.follow) {
    yield* lastN([...first, ...asm.flush().filter(within)]);
    return;
  }
  yield* lastN(first);
  const nowNs = () => BigInt(Date.now()) * 1_000_000n;
  // A write to the log wakes the follower at once (inotify): a waiter for a log line (a test's
  // "ready" message) otherwise lost 50 ms on average to the poll. The 100 ms poll stays for what
  // the watch does not see: the container's exit, a log file made after this started.
  let wake: (() => void) | undefined;
  let written: boolean | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(file, { persistent: false }, () => {
      written = true;
      wake?.();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  try {
    for (;;) {
      written = false;
      const record = await env.containers.read(c.record.id);
      const live = record !== undefined && env.containers.observe(record).observed.status === 'running';
      const more = await readMore();
      yield* more.filter(within);
      if (!live && more.length === 0) break;
      if (o.until !== undefined && nowNs() > o.until) return;
      // A write while this read is not waited for: read again at once.
      if (written) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    watcher?.close();
  }
  yield* asm.flush().filter(within);
}
