/**
 * src/app/log-times.ts: `logs --since/--until` values as Docker reads them (Go durations, Unix
 * timestamps, RFC 3339 with and without a zone), checked against values computed by hand.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import { parseGoDuration, parseLogTime, recordTime } from '../../src/app/log-times.js';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0); // 2024-05-01T12:00:00Z
const ns = (ms: number) => BigInt(ms) * 1_000_000n;
const utc = () => 0;

test('Go durations', () => {
  assert.is(parseGoDuration('10m'), 600_000_000_000n);
  assert.is(parseGoDuration('1h30m'), 5_400_000_000_000n);
  assert.is(parseGoDuration('1.5s'), 1_500_000_000n);
  assert.is(parseGoDuration('250ms'), 250_000_000n);
  assert.is(parseGoDuration('-2s'), -2_000_000_000n);
  assert.is(parseGoDuration('10'), undefined);
  assert.is(parseGoDuration('m'), undefined);
  assert.is(parseGoDuration('10x'), undefined);
});

test('a duration counts back from now; Unix timestamps and RFC 3339 are absolute', () => {
  assert.is(parseLogTime('since', '10m', NOW, utc), ns(NOW - 600_000));
  assert.is(parseLogTime('since', '1714564800', NOW, utc), ns(NOW));
  assert.is(parseLogTime('since', '1714564800.25', NOW, utc), ns(NOW) + 250_000_000n);
  assert.is(parseLogTime('since', '0', NOW, utc), 0n);
  assert.is(parseLogTime('since', '2024-05-01T12:00:00Z', NOW, utc), ns(NOW));
  assert.is(parseLogTime('since', '2024-05-01T12:00:00.000000001Z', NOW, utc), ns(NOW) + 1n);
  assert.is(parseLogTime('since', '2024-05-01T14:00:00+02:00', NOW, utc), ns(NOW));
  assert.is(parseLogTime('since', '2024-05-01', NOW, utc), ns(Date.UTC(2024, 4, 1)));
  assert.is(parseLogTime('since', '2024-05-01T12', NOW, utc), ns(NOW));
  assert.is(parseLogTime('since', '2024-05-01T12:00', NOW, utc), ns(NOW));
  // Without a zone: local time (here a zone 2 hours east of UTC).
  assert.is(
    parseLogTime('since', '2024-05-01T14:00:00', NOW, () => 120),
    ns(NOW),
  );
});

test('anything else is a usage error naming the flag', () => {
  try {
    parseLogTime('until', 'yesterday', NOW, utc);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TsrunError);
    assert.is((e as TsrunError).code, 'ERR_USAGE');
    assert.match(
      (e as Error).message,
      /invalid value for "until": failed to parse value as time or duration: "yesterday"/,
    );
  }
});

test('log record times (the monitor writes RFC3339Nano, UTC)', () => {
  assert.is(recordTime('2024-05-01T12:00:00.123456789Z'), ns(NOW) + 123_456_789n);
  assert.is(recordTime('garbage'), undefined);
});

test.run();
