/**
 * src/cli/register.ts: a sole verb's program has that verb exactly as the full program has it
 * (its module alone, and its module told the verb), and the verb scan falls back to "everything"
 * for whatever is not a plain sole verb.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from 'commander';
import { MODULES, SOLE_VERBS, registerCommands, soleVerb } from '../../src/cli/register.js';
import type { CliIo } from '../../src/cli/output.js';

const io: CliIo = { out: process.stdout, err: process.stderr, print: () => {}, globals: () => ({}), version: 'test' };
const program = () => new Command('tsrun').enablePositionalOptions().option('--root <dir>');

function find(p: Command, verb: string): Command | undefined {
  return p.commands.find((c) => c.name() === verb || c.aliases().includes(verb));
}
/** What a user can type under a command: its names, options and subcommands, recursively. */
function shape(c: Command): unknown {
  return {
    names: [c.name(), ...c.aliases()],
    options: c.options.map((o) => o.flags),
    args: c.registeredArguments.map((a) => a.name()),
    commands: c.commands.map(shape),
  };
}

test('every sole verb is registered by its module exactly as in the full program, and by no other', async () => {
  const full = program();
  await registerCommands(full, io, []);
  const alone = new Map<string, Command>();
  for (const name of Object.keys(MODULES)) {
    const p = program();
    (await (MODULES[name] as () => Promise<(p: Command, io: CliIo) => void>)())(p, io);
    alone.set(name, p);
  }
  for (const [verb, mod] of Object.entries(SOLE_VERBS)) {
    const want = find(full, verb);
    assert.ok(want, `${verb} is a command of the full program`);
    const got = find(alone.get(mod) as Command, verb);
    assert.ok(got, `${verb} is registered by ${mod}`);
    assert.equal(shape(got as Command), shape(want as Command), verb);
    for (const [other, p] of alone) if (other !== mod) assert.not.ok(find(p, verb), `${other} also registers ${verb}`);
  }
});

test("a sole verb's own program (the module told the verb) has that verb as the full program has it", async () => {
  const full = program();
  await registerCommands(full, io, []);
  for (const verb of Object.keys(SOLE_VERBS)) {
    const p = program();
    await registerCommands(p, io, [verb]);
    const got = find(p, verb);
    assert.ok(got, `${verb} is registered for itself`);
    assert.equal(shape(got as Command), shape(find(full, verb) as Command), verb);
  }
});

test('the verb scan: globals skipped, anything unusual means every module', () => {
  assert.is(soleVerb(['ps', '-a']), 'ps');
  assert.is(soleVerb(['--root', '/x', '--debug', 'images', '-q']), 'images');
  assert.is(soleVerb(['--root=/x', '--config', 'd', 'rmi', 'a']), 'rmi');
  assert.is(soleVerb([]), undefined);
  assert.is(soleVerb(['--help']), undefined);
  assert.is(soleVerb(['-v']), undefined);
  assert.is(soleVerb(['container', 'ls']), undefined);
  assert.is(soleVerb(['image', 'ls']), undefined);
  assert.is(soleVerb(['pss']), undefined);
  assert.is(soleVerb(['--root']), undefined);
  assert.is(soleVerb(['constructor']), undefined);
});

test('a sole verb loads one module: ps does not register run, images does not register build', async () => {
  const p = program();
  await registerCommands(p, io, ['ps', '-a']);
  assert.ok(find(p, 'ps'));
  assert.not.ok(find(p, 'build'));
  assert.not.ok(find(p, 'run'));
  assert.not.ok(find(p, 'create'));
  assert.not.ok(find(p, 'container'));
  const r = program();
  await registerCommands(r, io, ['run', 'busybox']);
  assert.ok(find(r, 'run'));
  assert.not.ok(find(r, 'create'));
  const q = program();
  await registerCommands(q, io, ['images']);
  assert.ok(find(q, 'images'));
  assert.not.ok(find(q, 'run'));
  assert.not.ok(find(q, 'pull'));
  assert.not.ok(find(q, 'image'));
});

test.run();
