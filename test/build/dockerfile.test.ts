import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDockerfile } from '../../src/build/dockerfile.js';

const D = suite('build/dockerfile');

D('stages, global ARGs, flags, JSON and shell forms, continuations and comments', async () => {
  const df = await parseDockerfile(
    [
      'ARG BASE=busybox',
      '# a comment',
      'FROM ${BASE} AS Build',
      'RUN echo a \\',
      '# comment inside a continuation',
      '  b',
      'COPY --chown=1:2 ["a b", "/x/"]',
      'from scratch',
      'COPY --from=build /out /',
      'CMD ["run", "it"]',
      'CMD [not json]',
    ].join('\n'),
  );
  assert.is(df.escape, '\\');
  assert.equal(
    df.globalArgs.map((a) => a.args),
    ['BASE=busybox'],
  );
  assert.equal(
    df.stages.map((s) => [s.name, s.base]),
    [
      ['build', '${BASE}'],
      [undefined, 'scratch'],
    ],
  );
  const [run, copy] = df.stages[0]!.instructions;
  assert.is(run!.line, 4);
  assert.is(run!.args, 'echo a   b');
  assert.equal(copy!.flags, { chown: '1:2' });
  assert.equal(copy!.json, ['a b', '/x/']);
  const [, cmd, bad] = df.stages[1]!.instructions;
  assert.equal(cmd!.json, ['run', 'it']);
  assert.is(bad!.json, undefined);
  assert.is(bad!.args, '[not json]');
});

D('the escape directive', async () => {
  const df = await parseDockerfile('# escape=`\nFROM busybox\nRUN echo a `\n  b\n');
  assert.is(df.escape, '`');
  assert.is(df.stages[0]!.instructions[0]!.args, 'echo a   b');
});

D('errors name the file and the line', async () => {
  const cases: [string, RegExp][] = [
    ['FROM a\nFOO bar\n', /Dockerfile:2: unknown instruction: FOO/],
    ['RUN x\n', /Dockerfile:1: RUN before the first FROM/],
    ['# nothing\n', /no FROM instruction/],
    ['FROM a\nCOPY --bogus=1 a b\n', /Dockerfile:2: COPY does not take --bogus/],
    ['FROM a\nCOPY --mount=type=cache,target=/x a b\n', /COPY does not take --mount/],
    // Only RUN, COPY and ADD take heredocs: elsewhere the body lines are instructions (as in Docker).
    ['FROM a\nLABEL <<EOF\nx\nEOF\n', /Dockerfile:3: unknown instruction: x/],
    ['FROM a AS x\nFROM b AS X\n', /duplicate stage name "x"/],
    ['FROM a b c d\n', /FROM takes an image/],
    ['FROM a\nSHELL /bin/bash -c\n', /SHELL must be a JSON array/],
    ['FROM a\nENV\n', /ENV needs at least one argument/],
  ];
  for (const [text, re] of cases) {
    await parseDockerfile(text).then(
      () => assert.unreachable(text),
      (e: Error) => assert.match(e.message, re, text),
    );
  }
});
D.run();
