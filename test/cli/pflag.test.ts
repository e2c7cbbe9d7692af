/**
 * src/cli/pflag.ts: pflag's syntax rewritten for commander, then parsed by commander itself, as
 * main.ts does (the overrides applied in a preAction hook).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from 'commander';
import fc from 'fast-check';
import { normalize } from '../../src/cli/pflag.js';
import { TsrunError } from '../../src/errors.js';
import { registerContainerCommands } from '../../src/cli/commands/containers.js';
import type { CliIo } from '../../src/cli/output.js';

function program(seen: { args?: unknown[]; opts?: Record<string, unknown> }): Command {
  const p = new Command('tsrun').option('--root <dir>').option('--debug').enablePositionalOptions().exitOverride();
  const run = (c: Command) =>
    c
      .argument('<image>')
      .argument('[command...]')
      .option('-d, --detach')
      .option('-i, --interactive')
      .option('-t, --tty')
      .option('--rm')
      .option('-e, --env <kv>', '', (v: string, a: string[]) => [...a, v], [] as string[])
      .option('-p, --publish <p>')
      .option('--name <n>')
      .option('--no-sig-proxy')
      .passThroughOptions()
      .action((image: string, args: string[], o: Record<string, unknown>) => {
        seen.args = [image, args];
        seen.opts = o;
      });
  run(p.command('run'));
  run(p.command('container').command('run'));
  p.command('ps')
    .option('-a, --all')
    .option('-q, --quiet')
    .option('--no-trunc')
    .option('--format <f>')
    .action((o: Record<string, unknown>) => {
      seen.opts = o;
    });
  return p;
}

async function parse(argv: string[]): Promise<{ args?: unknown[]; opts?: Record<string, unknown> }> {
  const seen: { args?: unknown[]; opts?: Record<string, unknown> } = {};
  const p = program(seen);
  const n = normalize(p, argv);
  p.hook('preAction', (_t, action) => {
    for (let c: Command | null = action; c; c = c.parent)
      for (const [k, v] of Object.entries(n.overrides.get(c) ?? {})) c.setOptionValueWithSource(k, v, 'cli');
  });
  await p.parseAsync(n.argv, { from: 'user' });
  return seen;
}

test('boolean flags with values: --rm=true, --tty=false, -a=false, --sig-proxy=false, --no-trunc=false', async () => {
  let s = await parse(['run', '--rm=true', '--tty=false', '-i=true', 'img']);
  assert.is(s.opts?.['rm'], true);
  assert.is(s.opts?.['tty'], false);
  assert.is(s.opts?.['interactive'], true);
  s = await parse(['run', '--sig-proxy=false', 'img']);
  assert.is(s.opts?.['sigProxy'], false);
  s = await parse(['run', '--sig-proxy=true', 'img']);
  assert.is(s.opts?.['sigProxy'], true);
  s = await parse(['ps', '-a=false', '--no-trunc=false', '-q=1']);
  assert.is(s.opts?.['all'], false);
  assert.is(s.opts?.['trunc'], true);
  assert.is(s.opts?.['quiet'], true);
  s = await parse(['ps', '--all=false', '-a']);
  assert.is(s.opts?.['all'], true, 'the last occurrence wins');
});

test("values: --flag=value, -f=value, stacked short flags, and words after the image are the container's", async () => {
  let s = await parse([
    'run',
    '-dit',
    '--name=web',
    '-e=A=1',
    '-eB=2',
    '-dp',
    '80:80',
    'img',
    'ls',
    '--tty=false',
    '-l',
  ]);
  assert.equal(s.opts, {
    detach: true,
    interactive: true,
    tty: true,
    name: 'web',
    env: ['A=1', 'B=2'],
    publish: '80:80',
    sigProxy: true,
  });
  assert.equal(s.args, ['img', ['ls', '--tty=false', '-l']]);
  s = await parse(['container', 'run', '--rm=false', '-t', 'img']);
  assert.is(s.opts?.['rm'], false);
  assert.is(s.opts?.['tty'], true);
  s = await parse(['ps', '--format={{.ID}}={{.Names}}']);
  assert.is(s.opts?.['format'], '{{.ID}}={{.Names}}');
});

test("a bad boolean is pflag's error, exit 125", () => {
  try {
    normalize(program({}), ['ps', '--all=maybe']);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TsrunError);
    assert.is(
      (e as Error).message,
      'invalid argument "maybe" for "--all" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
    );
    assert.is((e as TsrunError).detail?.exitCode, 125);
  }
});

/** The words of the property below that take the next word as their value. */
const VALUE_FLAGS = new Set(['-e', '--name', '-p', '--format']);

test('a value-taking flag takes `--` as its value, as pflag does', () => {
  const n = normalize(program({}), ['ps', '--format', '--', '--no-trunc=true']);
  assert.equal(n.argv.slice(0, 3), ['ps', '--format', '--']);
  assert.not.ok(n.argv.includes('--no-trunc=true'), 'the flag after the value is parsed, not kept as given');
});

test('any argv: normalize either rewrites it or throws TsrunError; words after `--` and after the image are kept as given', () => {
  const word = fc.oneof(
    fc.constantFrom(
      'run',
      'ps',
      'container',
      '-d',
      '-it',
      '-dit',
      '--rm',
      '--rm=false',
      '--tty=maybe',
      '-a=false',
      '-e',
      '-e=A=1',
      '--name',
      '--name=x',
      '-p',
      '--sig-proxy=false',
      '--no-trunc=true',
      '--',
      '-',
      'img',
      '--format',
      '--format={{.ID}}',
      '-q=1',
      '--bogus=1',
    ),
    fc.string({ maxLength: 8 }),
  );
  fc.assert(
    fc.property(fc.array(word, { maxLength: 12 }), (argv) => {
      try {
        const n = normalize(program({}), argv);
        assert.ok(Array.isArray(n.argv));
        const dd = argv.indexOf('--');
        // After a flag that takes a value, `--` is that value (pflag: `ps --format -- --no-trunc=true`
        // sets the format to "--" and parses on), not the end of the options: nothing to compare.
        const isValue = dd > 0 && VALUE_FLAGS.has(argv[dd - 1] ?? '');
        if (dd >= 0 && !isValue && n.argv.includes('--'))
          assert.equal(n.argv.slice(n.argv.indexOf('--')), argv.slice(dd));
      } catch (e) {
        if (!(e instanceof TsrunError)) throw e;
      }
    }),
    { numRuns: 3000 },
  );
});

test('the real run command: --sig-proxy bare or =true forwards signals, =false and --no-sig-proxy do not, the default does', async () => {
  const cases: Array<[string[], boolean]> = [
    [[], true],
    [['--sig-proxy'], true],
    [['--sig-proxy=true'], true],
    [['--sig-proxy=false'], false],
    [['--no-sig-proxy'], false],
  ];
  for (const [flags, want] of cases) {
    const p = new Command('tsrun').option('--root <dir>').option('--debug').enablePositionalOptions().exitOverride();
    registerContainerCommands(p, {
      out: process.stdout,
      err: process.stderr,
      globals: () => ({}),
      version: '0',
    } as unknown as CliIo);
    const n = normalize(p, ['run', ...flags, 'img']);
    let got: unknown;
    p.hook('preAction', (_t, action) => {
      for (let c: Command | null = action; c; c = c.parent)
        for (const [k, v] of Object.entries(n.overrides.get(c) ?? {})) c.setOptionValueWithSource(k, v, 'cli');
      got = action.opts()['sigProxy'];
      throw new Error('stop before running');
    });
    await p.parseAsync(n.argv, { from: 'user' }).catch((e: Error) => {
      if (e.message !== 'stop before running') throw e;
    });
    assert.is(got, want, flags.join(' ') || '(default)');
  }
});

test('the real run command: --explain takes a mode only after `=`; `<a[:b]>` flags (--ulimit, --tmpfs, --device) take the next word', async () => {
  for (const [flags, want] of [
    [['--explain'], { explain: '', ulimit: [] }],
    [['--explain=full'], { explain: 'full', ulimit: [] }],
    [
      ['--ulimit', 'nofile=10:20', '--tmpfs', '/t', '--device', '/dev/null'],
      { ulimit: ['nofile=10:20'], tmpfs: ['/t'], device: ['/dev/null'] },
    ],
  ] as [string[], Record<string, unknown>][]) {
    const p = new Command('tsrun').option('--root <dir>').option('--debug').enablePositionalOptions().exitOverride();
    registerContainerCommands(p, {
      out: process.stdout,
      err: process.stderr,
      globals: () => ({}),
      version: '0',
    } as unknown as CliIo);
    const n = normalize(p, ['run', ...flags, 'img']);
    let got: Record<string, unknown> = {};
    let image: unknown;
    p.hook('preAction', (_t, action) => {
      for (let c: Command | null = action; c; c = c.parent)
        for (const [k, v] of Object.entries(n.overrides.get(c) ?? {})) c.setOptionValueWithSource(k, v, 'cli');
      got = action.opts();
      image = action.args[0];
      throw new Error('stop before running');
    });
    await p.parseAsync(n.argv, { from: 'user' }).catch((e: Error) => {
      if (e.message !== 'stop before running') throw e;
    });
    assert.is(image, 'img', flags.join(' '));
    for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${flags.join(' ')}: ${k}`);
  }
});

test.run();
