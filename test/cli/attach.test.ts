/**
 * src/cli/attach.ts: Docker's detach keys — the --detach-keys syntax (moby/term ToBytes) and the
 * stdin filter (moby copyEscapable: held back while matching, forwarded when the match breaks).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import { escapeFilter, parseDetachKeys } from '../../src/cli/attach.js';

test('--detach-keys syntax', () => {
  assert.equal([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
  assert.equal(
    [...parseDetachKeys('ctrl-a,b,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,ctrl-Z')],
    [1, 98, 0, 27, 28, 29, 30, 31, 26],
  );
  for (const bad of ['ctrl-1', 'ab', 'ctrl-', '']) {
    assert.throws(
      () => parseDetachKeys(bad),
      (e: unknown) => e instanceof TsrunError && e.code === 'ERR_USAGE',
      bad,
    );
  }
});

test('the filter holds a partial match back, forwards it when the match breaks, and detaches on the whole', () => {
  const f = escapeFilter(Buffer.from([16, 17]));
  assert.equal(f(Buffer.from('ab')), { forward: Buffer.from('ab'), detach: false });
  assert.equal(f(Buffer.from([0x63, 16])), { forward: Buffer.from('c'), detach: false });
  // The held Ctrl-P goes out with the byte that broke the match.
  assert.equal(f(Buffer.from('x')), { forward: Buffer.from([16, 0x78]), detach: false });
  // Ctrl-P Ctrl-P Ctrl-Q: the first is forwarded, the other two detach.
  assert.equal(f(Buffer.from([16, 16, 17])), { forward: Buffer.from([16]), detach: true });
  // Across reads.
  const g = escapeFilter(Buffer.from([16, 17]));
  assert.is(g(Buffer.from([16])).detach, false);
  assert.equal(g(Buffer.from([17, 0x7a])), { forward: Buffer.alloc(0), detach: true });
});

test.run();
