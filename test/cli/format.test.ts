import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { humanDuration, humanSize, table } from '../../src/cli/format.js';

test('humanSize uses decimal units with 3 significant digits, like docker images', () => {
  assert.is(humanSize(0), '0B');
  assert.is(humanSize(999), '999B');
  assert.is(humanSize(4261550), '4.26MB');
  assert.is(humanSize(72800), '72.8kB');
  assert.is(humanSize(1_200_000_000), '1.2GB');
});

test('humanDuration follows go-units', () => {
  assert.is(humanDuration(500), 'Less than a second');
  assert.is(humanDuration(30_000), '30 seconds');
  assert.is(humanDuration(60_000), 'About a minute');
  assert.is(humanDuration(3_600_000), 'About an hour');
  assert.is(humanDuration(5 * 3_600_000), '5 hours');
  assert.is(humanDuration(3 * 86_400_000), '3 days');
  assert.is(humanDuration(21 * 86_400_000), '3 weeks');
  assert.is(humanDuration(90 * 86_400_000), '3 months');
  assert.is(humanDuration(800 * 86_400_000), '2 years');
});

test('table pads columns to the widest cell plus three spaces', () => {
  const out = table(
    ['REPOSITORY', 'TAG'],
    [
      ['busybox', 'latest'],
      ['localhost:5000/a', '1'],
    ],
  );
  assert.is(out, 'REPOSITORY         TAG\nbusybox            latest\nlocalhost:5000/a   1\n');
});

test.run();
