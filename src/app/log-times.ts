/**
 * `logs --since/--until` values, read as Docker reads them (docker/api types/time GetTimestamp):
 *   - a Go duration ("10m", "1h30m", "1.5s"), counted back from now;
 *   - a Unix timestamp, seconds with up to 9 decimals ("1700000000", "1700000000.5");
 *   - an RFC 3339 date or time: "2006-01-02", "2006-01-02T15", "2006-01-02T15:04",
 *     "2006-01-02T15:04:05", with fractions, and with "Z" or "±07:00"; without a zone it is
 *     local time (as Docker's ParseInLocation with the local zone).
 * Times are nanoseconds since the epoch, as bigints (log records carry nanoseconds).
 *
 * Contract: pure apart from the clock and zone passed in; a value that is none of these is an
 * ERR_USAGE error naming the flag.
 */
import { TsrunError } from '../errors.js';

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, to nanoseconds; undefined if it is not one. */
export function parseGoDuration(v: string): bigint | undefined {
  const m = /^([+-]?)(.+)$/.exec(v);
  if (!m || !m[2]) return undefined;
  const body = m[2];
  if (body === '0') return 0n;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let at = 0;
  for (let p = part.exec(body); p; p = part.exec(body)) {
    total += Number(p[1]) * (UNIT_NS[p[2] as string] ?? 0);
    at = part.lastIndex;
  }
  if (at !== body.length || at === 0) return undefined;
  const ns = BigInt(Math.round(total));
  return m[1] === '-' ? -ns : ns;
}

/** "2024-05-01T10:20:30.5Z" and friends → ns; undefined if not such a date. */
export function parseRfc3339(v: string, localOffsetMin: (utcMs: number) => number): bigint | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(utc)) return undefined;
  let offsetMin: number;
  if (zone === undefined) offsetMin = localOffsetMin(utc);
  else if (zone === 'Z' || zone === 'z') offsetMin = 0;
  else offsetMin = (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const ms = utc - offsetMin * 60_000;
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0') || '0');
}

/** The local zone's offset east of UTC, in minutes, at (about) that instant. */
function localOffset(utcMs: number): number {
  return -new Date(utcMs).getTimezoneOffset();
}

export function parseLogTime(
  flag: string,
  v: string,
  nowMs = Date.now(),
  zone: (utcMs: number) => number = localOffset,
): bigint {
  const d = parseGoDuration(v);
  if (d !== undefined && v !== '0') return BigInt(nowMs) * 1_000_000n - d;
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (unix) return BigInt(unix[1] as string) * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0') || '0');
  const t = parseRfc3339(v, zone);
  if (t !== undefined) return t;
  throw new TsrunError('ERR_USAGE', `invalid value for "${flag}": failed to parse value as time or duration: "${v}"`, {
    hint: 'a duration (10m, 1h30m), a Unix timestamp (1700000000) or an RFC 3339 time (2024-05-01T10:00:00Z)',
  });
}

/** A log record's RFC3339Nano time → ns (undefined for a malformed one). */
export function recordTime(t: string): bigint | undefined {
  return parseRfc3339(t, () => 0);
}
