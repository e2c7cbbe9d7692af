import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { expandHeredoc, expandWord, expandWords, keyValues, rawWords } from '../../src/build/words.js';

const W = suite('build/words: Docker environment replacement');
const vars = new Map([
  ['A', 'x'],
  ['EMPTY', ''],
  ['SP', 'a b'],
]);

W('$VAR and ${VAR}; unset expands to nothing', () => {
  assert.is(expandWord('$A-${A}_$NOPE.', vars), 'x-x_.');
});
W('${VAR:-d} / ${VAR-d}: default when empty / when unset', () => {
  assert.is(expandWord('${EMPTY:-d}|${EMPTY-d}|${NOPE-d}|${A:-d}', vars), 'd||d|x');
});
W('${VAR:+alt} / ${VAR+alt}: alternative when set (and non-empty with :)', () => {
  assert.is(expandWord('${A:+y}|${EMPTY:+y}|${EMPTY+y}|${NOPE+y}', vars), 'y||y|');
});
W('${VAR:?msg} fails with the message', () => {
  assert.throws(() => expandWord('${NOPE:?must be set}', vars), /NOPE: must be set/);
});
W('single quotes are literal; double quotes expand; escapes', () => {
  assert.is(expandWord(`'$A' "$A" \\$A "\\$A" "a\\b"`, vars), `$A x $A $A a\\b`);
});
W('words split on unquoted space only; expanded values are not split again', () => {
  assert.equal(expandWords('a "b c" $SP d\\ e', vars), ['a', 'b c', 'a b', 'd e']);
});
W('the escape directive changes the escape character', () => {
  assert.is(expandWord('C:\\dir `$A', vars, '`'), 'C:\\dir $A');
});
W('a lone $ is literal; bad substitutions are errors naming the text', () => {
  assert.is(expandWord('cost $5 $', vars), 'cost $5 $');
  assert.throws(() => expandWord('${A', vars), /missing "}"/);
  assert.throws(() => expandWord('${A%x}', vars), /unsupported modifier/);
});
W('heredoc bodies: variables expanded, quotes kept', () => {
  assert.is(expandHeredoc(`say "$A" '\${A}' \\$A\n`, vars), `say "x" 'x' $A\n`);
});
W('rawWords keeps quotes so key=value can be split before expansion', () => {
  assert.equal(rawWords('a="x y" b=\'$z\' c'), ['a="x y"', "b='$z'", 'c']);
});
W('ENV/LABEL see values from before the instruction; legacy "key value" form', () => {
  assert.equal(keyValues('A=new B=$A C="${A}!"', vars), [
    ['A', 'new'],
    ['B', 'x'],
    ['C', 'x!'],
  ]);
  assert.equal(keyValues('K  some value  $A', vars), [['K', 'some value  x']]);
  assert.throws(() => keyValues('=x', vars), /not key=value/);
});
W.run();
