/**
 * runProgram (src/util/exec.ts) over the addon's posix_spawn, against what execFile gave its
 * callers: exit status (1 for a signal's death), stdout and stderr whole, stdin from `input` (or
 * at its end at once), the environment given and nothing else, the timeout, a rejection only
 * when the program cannot start, and no zombie left behind.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { runProgram } from '../../src/util/exec.js';

const E = suite('util exec');

E('exit status, stdout and stderr, input on stdin', async () => {
  assert.equal(await runProgram('echo', ['a', 'b c']), { code: 0, stdout: 'a b c\n', stderr: '' });
  const r = await runProgram('sh', ['-c', 'cat; echo to-err >&2; exit 3'], { input: 'in\n' });
  assert.equal(r, { code: 3, stdout: 'in\n', stderr: 'to-err\n' });
  // Without input, stdin is at its end: a program reading it does not wait.
  assert.equal((await runProgram('cat', [])).stdout, '');
  // Large both ways, through the pipes.
  const big = 'x'.repeat(3 << 20);
  assert.is((await runProgram('cat', [], { input: big })).stdout.length, big.length);
  // A program that exits without reading its input is no error.
  assert.is((await runProgram('true', [], { input: big })).code, 0);
});

E('environment: exactly the one given', async () => {
  const r = await runProgram('/usr/bin/env', [], { env: { ONLY: 'this', PATH: '/usr/bin:/bin' } });
  assert.equal(r.stdout.trim().split('\n').sort(), ['ONLY=this', 'PATH=/usr/bin:/bin']);
});

E('a signal, the timeout: code 1; a program that cannot start: rejected with its errno', async () => {
  assert.is((await runProgram('sh', ['-c', 'kill -9 $$'])).code, 1);
  const t0 = Date.now();
  assert.is((await runProgram('sleep', ['10'], { timeoutMs: 100 })).code, 1);
  assert.ok(Date.now() - t0 < 5000);
  for (const [file, code] of [
    ['no-such-program-here', 'ENOENT'],
    ['/no/such/file', 'ENOENT'],
    ['/etc/passwd', 'EACCES'],
  ]) {
    const e = await runProgram(file, []).then(
      () => undefined,
      (err: unknown) => err as NodeJS.ErrnoException,
    );
    assert.is(e?.code, code, file);
  }
});

E('no zombie: every child is reaped', async () => {
  const mine = () =>
    readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8')
      .trim()
      .split(' ')
      .filter(Boolean);
  const before = mine();
  await Promise.all(Array.from({ length: 20 }, () => runProgram('true', [])));
  assert.equal(mine(), before);
});

E.run();
