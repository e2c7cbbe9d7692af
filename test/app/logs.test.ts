/**
 * src/app/logs.ts: reading the k8s-file log format the monitor writes (CRI logging format:
 * "<time> <stream> <F|P> <text>"; P pieces continue in the next record of the same stream).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LineAssembler, parseRecord } from '../../src/app/logs.js';

const rec = (s: string) => {
  const r = parseRecord(Buffer.from(s));
  assert.ok(r, s);
  return r!;
};

test('parseRecord: fields, binary-safe text, malformed lines refused', () => {
  const r = rec('2026-11-22T14:00:00.000000001Z stderr F hello  world');
  assert.is(r.time, '2026-11-22T14:00:00.000000001Z');
  assert.is(r.stream, 'stderr');
  assert.is(r.partial, false);
  assert.is(r.text.toString(), 'hello  world');
  assert.is(rec('t stdout F ').text.length, 0, 'an empty line');
  assert.is(parseRecord(Buffer.from('garbage')), undefined);
  assert.is(parseRecord(Buffer.from('t stdin F x')), undefined);
  assert.is(parseRecord(Buffer.from('t stdout X x')), undefined);
});

test("LineAssembler joins partial pieces per stream and keeps the first piece's time", () => {
  const a = new LineAssembler();
  assert.is(a.push(rec('t1 stdout P abc')), undefined);
  const err = a.push(rec('t2 stderr F oops'));
  assert.is(err?.text.toString(), 'oops', 'another stream is not held up');
  const line = a.push(rec('t3 stdout F def'));
  assert.is(line?.text.toString(), 'abcdef');
  assert.is(line?.time, 't1');
  assert.is(a.push(rec('t4 stdout P tail')), undefined);
  const rest = a.flush();
  assert.is(rest.length, 1);
  assert.is(rest[0]?.text.toString(), 'tail');
  assert.is(rest[0]?.newline, false);
});

test.run();
