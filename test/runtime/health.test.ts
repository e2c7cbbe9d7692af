import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  healthFromFlags,
  imageHealth,
  mergeHealth,
  monitorTimings,
  parseGoDuration,
  probeArgv,
} from '../../src/runtime/health.js';

const H = suite('runtime/health: flags, merge and probe as Docker');

H("Go durations, with Go's errors", () => {
  assert.is(parseGoDuration('1m30s'), 90e9);
  assert.is(parseGoDuration('500ms'), 500e6);
  assert.is(parseGoDuration('1.5s'), 1.5e9);
  assert.is(parseGoDuration('-1s'), -1e9);
  assert.is(parseGoDuration('0'), 0);
  assert.throws(() => parseGoDuration('5'), /time: missing unit in duration "5"/);
  assert.throws(() => parseGoDuration('abc'), /time: invalid duration "abc"/);
  assert.throws(() => parseGoDuration('5x'), /time: unknown unit "x" in duration "5x"/);
});

H('flags: CMD-SHELL, only the values given; none; the conflicts and limits', () => {
  assert.is(healthFromFlags({}), undefined);
  assert.equal(healthFromFlags({ cmd: 'curl -f localhost', interval: '2s', retries: '4' }), {
    Test: ['CMD-SHELL', 'curl -f localhost'],
    Interval: 2e9,
    Retries: 4,
  });
  assert.equal(healthFromFlags({ none: true }), { Test: ['NONE'] });
  assert.throws(
    () => healthFromFlags({ none: true, timeout: '1s' }),
    /--no-healthcheck conflicts with --health-\* options/,
  );
  assert.throws(() => healthFromFlags({ startPeriod: '-1s' }), /--health-start-period cannot be negative/);
  assert.throws(() => healthFromFlags({ interval: '10us' }), /Interval in Healthcheck cannot be less than 1ms/);
  assert.throws(
    () => healthFromFlags({ startInterval: '1ns' }),
    /StartInterval in Healthcheck cannot be less than 1ms/,
  );
});

H("merge: the container's values, the image's where unset", () => {
  const image = imageHealth({ Test: ['CMD', 'check'], Interval: 5e9, Retries: 2, Junk: 1 });
  assert.equal(image, { Test: ['CMD', 'check'], Interval: 5e9, Retries: 2 });
  assert.equal(mergeHealth({ Retries: 9 }, image), { Test: ['CMD', 'check'], Interval: 5e9, Retries: 9 });
  assert.equal(mergeHealth({ Test: ['CMD-SHELL', 'x'] }, image), {
    Test: ['CMD-SHELL', 'x'],
    Interval: 5e9,
    Retries: 2,
  });
  assert.equal(mergeHealth(undefined, image), image);
  assert.is(imageHealth('nonsense'), undefined);
});

H('probe argv: CMD, CMD-SHELL with the image shell, NONE and unknown types run nothing', () => {
  assert.equal(probeArgv({ Test: ['CMD', 'a', 'b c'] }), ['a', 'b c']);
  assert.equal(probeArgv({ Test: ['CMD-SHELL', 'exit 1'] }), ['/bin/sh', '-c', 'exit 1']);
  assert.equal(probeArgv({ Test: ['CMD-SHELL', 'x'] }, ['/bin/bash', '-ec']), ['/bin/bash', '-ec', 'x']);
  assert.is(probeArgv({ Test: ['NONE'] }), undefined);
  assert.is(probeArgv({ Test: ['WHAT', 'x'] }), undefined);
  assert.is(probeArgv({ Interval: 1e9 }), undefined);
  assert.equal(monitorTimings({ Interval: 1.5e6 }), {
    intervalMs: 2,
    timeoutMs: 30000,
    startPeriodMs: 0,
    startIntervalMs: 5000,
    retries: 3,
  });
});

H.run();
