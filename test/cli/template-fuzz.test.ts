/**
 * Property-based tests (fast-check) for the --format engine: on any input — random strings,
 * strings built from the template language's own tokens, and mutations of Docker's real
 * templates — parsing and executing either return a string or throw TemplateError; never any
 * other exception, never a hang. Counterexamples found are kept below as named regressions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Template } from '../../src/cli/gotemplate/exec.js';
import { TemplateError } from '../../src/cli/gotemplate/errors.js';
import { GoStruct } from '../../src/cli/gotemplate/value.js';
import { renderList } from '../../src/cli/template.js';
import { containerContext, PS_FORMAT } from '../../src/cli/views.js';
import { TsrunError } from '../../src/errors.js';

const row = new GoStruct({
  type: '*formatter.ContainerContext',
  fields: { ID: 'abc', Names: 'web', Labels: 'a=b', Size: () => '0B', N: 3, L: ['x', 'y'], M: { k: 'v', n: null } },
  methods: { Label: { params: ['string'], fn: (k) => String(k) } },
});
const data = { A: 'str', B: 0, C: [1, 'two', null, { D: true }], E: { F: { G: [] } }, S: row, Z: null };

/** Only a TemplateError may escape; returns what happened for the property's own checks. */
function attempt(src: string, d: unknown = data): 'ok' | 'parse' | 'exec' {
  let t: Template;
  try {
    t = Template.parse(src);
  } catch (e) {
    if (!(e instanceof TemplateError))
      throw new Error(`parse of ${JSON.stringify(src)} threw ${String(e)}`, { cause: e });
    assert.match(e.message, /^template: :\d+: /);
    return 'parse';
  }
  try {
    const out = t.execute(d);
    assert.type(out, 'string');
    return 'ok';
  } catch (e) {
    if (!(e instanceof TemplateError))
      throw new Error(`execute of ${JSON.stringify(src)} threw ${String(e)}`, { cause: e });
    assert.match(e.message, /^template: :\d+(:\d+)?: /);
    return 'exec';
  }
}

const TOKENS = [
  '{{',
  '}}',
  '{{-',
  '-}}',
  ' ',
  '.',
  '.A',
  '.B',
  '.C',
  '.E.F.G',
  '.S',
  '.S.ID',
  '.S.Label',
  '.Z',
  '.Nope',
  '$',
  '$x',
  ':=',
  '=',
  '|',
  '(',
  ')',
  ',',
  '"s"',
  '`raw`',
  "'c'",
  '1',
  '-1',
  '0x1f',
  '1.5',
  '1e3',
  'true',
  'false',
  'nil',
  'if',
  'else',
  'end',
  'range',
  'with',
  'break',
  'continue',
  'define',
  'template',
  'block',
  '"t"',
  'and',
  'or',
  'not',
  'len',
  'index',
  'slice',
  'print',
  'printf',
  'println',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'json',
  'join',
  'split',
  'lower',
  'upper',
  'title',
  'pad',
  'truncate',
  'html',
  'js',
  'urlquery',
  '/*',
  '*/',
  '\n',
  '\t',
  'x',
  '%s',
  '%d',
  '%v',
  '"%q %5.2f %-3x %!"',
];

const DOCKER_TEMPLATES = [
  'table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}',
  '{{range .C}}{{if .}}{{.}}{{else}}-{{end}},{{end}}',
  '{{range $i, $e := .C}}{{$i}}={{json $e}} {{end}}',
  '{{with .E.F}}{{len .G}}{{end}}',
  '{{json .}}',
  '{{.S.Label "com.x"}}',
  '{{join .S.L ","}} {{index .S.M "k"}}',
  '{{printf "%s %d" .A .B}}',
  '{{if and .A (not .B)}}{{upper .A}}{{end}}',
  '{{- range .C -}} {{.}} {{- end}}',
];

test('any string: only TemplateError, never another exception', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      attempt(s);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
      attempt(s);
    }),
    { numRuns: 1000 },
  );
});

test('strings of template tokens: only TemplateError', () => {
  const tmpl = fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 }).map((ts) => ts.join(''));
  const inAction = fc
    .array(fc.constantFrom(...TOKENS.filter((t) => !t.includes('{') && !t.includes('}'))), { maxLength: 12 })
    .map((ts) => `a{{${ts.join(' ')}}}b`);
  fc.assert(
    fc.property(tmpl, (s) => {
      attempt(s);
    }),
    { numRuns: 4000 },
  );
  fc.assert(
    fc.property(inAction, (s) => {
      attempt(s);
    }),
    { numRuns: 4000 },
  );
});

test("mutations of Docker's templates: only TemplateError", () => {
  const mutated = fc
    .tuple(fc.constantFrom(...DOCKER_TEMPLATES), fc.nat(), fc.nat({ max: 5 }), fc.constantFrom(...TOKENS, ''))
    .map(([t, at, del, ins]) => {
      const i = at % (t.length + 1);
      return t.slice(0, i) + ins + t.slice(i + del);
    });
  fc.assert(
    fc.property(mutated, (s) => {
      attempt(s);
    }),
    { numRuns: 4000 },
  );
});

test('any JSON data: well-formed templates only fail with TemplateError', () => {
  fc.assert(
    fc.property(fc.constantFrom(...DOCKER_TEMPLATES), fc.jsonValue(), (t, d) => {
      attempt(t.replace(/^table /, ''), d);
    }),
    { numRuns: 1500 },
  );
});

test('renderList (table, json, header) on random formats: TsrunError(ERR_USAGE) or output', () => {
  const rows = [
    {
      id: 'a'.repeat(64),
      names: ['web'],
      image: 'busybox',
      imageId: 'sha256:1',
      command: 'sh -c x',
      created: '2024-01-01T00:00:00Z',
      state: 'running',
      exitCode: 0,
      ports: [],
      labels: {},
      mounts: [],
      networks: ['bridge'],
    },
  ];
  const spec = { ...PS_FORMAT, toStruct: (r: (typeof rows)[number]) => containerContext(r, true) };
  const fmt = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc
      .array(fc.constantFrom(...TOKENS, 'table ', '\\t', '.ID', '.Names', '.Size'), { maxLength: 20 })
      .map((x) => x.join('')),
  );
  fc.assert(
    fc.property(fmt, (f) => {
      try {
        assert.type(renderList(f, rows, spec), 'string');
      } catch (e) {
        if (!(e instanceof TsrunError) || e.code !== 'ERR_USAGE') throw e;
      }
    }),
    { numRuns: 3000 },
  );
});

// Counterexamples found while writing the engine, kept as named regressions.
test('regression: a lone "{{-" followed by "}}" is an empty action, not a crash', () => {
  assert.is(attempt('{{- }}'), 'parse');
});
test('regression: "{{.}}" on a struct whose field is a function prints its value', () => {
  assert.is(Template.parse('{{.S.Size}}').execute(data), '0B');
});
test('regression: ")" with no "(" and "(" with no ")" are parse errors', () => {
  assert.is(attempt('{{)}}'), 'parse');
  assert.is(attempt('{{(}}'), 'parse');
});
test('regression: "range $i, $e := ." on an int is an execution error', () => {
  assert.is(attempt('{{range $i, $e := 3}}{{end}}'), 'exec');
});

test.run();
