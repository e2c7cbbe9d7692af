/**
 * The Go template engine (src/cli/gotemplate/) against Go's text/template documentation and
 * Docker's "Format command and log output" page: each expected string is what Go/Docker print
 * for the same template and data.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Template } from '../../src/cli/gotemplate/exec.js';
import { TemplateError } from '../../src/cli/gotemplate/errors.js';
import { GoStruct } from '../../src/cli/gotemplate/value.js';
import { sprintf } from '../../src/cli/gotemplate/funcs.js';

const run = (src: string, data: unknown = {}): string => Template.parse(src).execute(data);

function fails(src: string, data: unknown, re: RegExp, phase?: 'parse' | 'exec'): void {
  try {
    run(src, data);
  } catch (err) {
    assert.instance(err, TemplateError, String(err));
    assert.match((err as Error).message, re);
    if (phase) assert.is((err as TemplateError).phase, phase);
    return;
  }
  assert.unreachable(`expected an error for ${src}`);
}

const container = {
  Name: '/web',
  Args: ['-g', 'daemon off;'],
  LogPath: '/var/log/x.log',
  Config: { Image: 'nginx:1', Labels: { tier: 'front', 'com.example.v': '2' }, Env: ['A=1', 'B=2'] },
  State: { Running: true, Pid: 42, Status: 'running' },
  NetworkSettings: {
    Networks: { bridge: { IPAddress: '10.88.0.2' } },
    Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '443/tcp': null },
  },
};

test("Docker's formatting page: join, json, lower, split, title, upper, println, pad, truncate", () => {
  assert.is(run('{{join .Args " , "}}', container), '-g , daemon off;');
  assert.is(run('{{json .Config.Env}}', container), '["A=1","B=2"]');
  assert.is(
    run('{{lower "ROOT"}} {{upper .State.Status}} {{title "hello big world"}}', container),
    'root RUNNING Hello Big World',
  );
  assert.is(run('{{split .Config.Image ":"}}', container), '[nginx 1]');
  assert.is(run('{{range .Args}}{{println .}}{{end}}', container), '-g\ndaemon off;\n');
  assert.is(run('[{{pad "x" 2 1}}][{{pad "" 2 1}}] {{truncate "abcdef" 3}} {{truncate "ab" 3}}'), '[  x ][] abc ab');
});

test('docker inspect examples: nested fields, range over a map, index, variables, (…).Field', () => {
  assert.is(run('{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container), '10.88.0.2');
  assert.is(
    run('{{.LogPath}} {{.Config.Image}} {{.State.Running}} {{.State.Pid}}', container),
    '/var/log/x.log nginx:1 true 42',
  );
  assert.is(
    run(
      '{{range $p, $conf := .NetworkSettings.Ports}}{{if $conf}} {{$p}} -> {{(index $conf 0).HostPort}}{{end}}{{end}}',
      container,
    ),
    ' 80/tcp -> 8080',
  );
  assert.is(
    run('{{index .Config.Labels "com.example.v"}}|{{.Config.Labels.tier}}|{{.Config.Labels.nope}}|', container),
    '2|front||',
  );
  assert.is(run('{{json .State}}', container), '{"Running":true,"Pid":42,"Status":"running"}');
});

test('control structures: if / else if / else, with / else, range / else, break, continue, range over an int', () => {
  const t = '{{if eq .N 1}}one{{else if eq .N 2}}two{{else}}many{{end}}';
  assert.is([1, 2, 3].map((N) => run(t, { N })).join(','), 'one,two,many');
  assert.is(
    run('{{with .A}}[{{.}}]{{else}}none{{end}} {{with .B}}[{{.}}]{{else}}none{{end}}', { A: 'a', B: '' }),
    '[a] none',
  );
  assert.is(run('{{with .A}}a{{else with .B}}b:{{.}}{{end}}', { A: 0, B: 'x' }), 'b:x');
  assert.is(run('{{range .L}}{{.}}{{else}}empty{{end}}', { L: [] }), 'empty');
  assert.is(
    run('{{range .L}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}', {
      L: [0, 1, 2, 3, 4],
    }),
    '02',
  );
  assert.is(run('{{range $i, $e := .L}}{{$i}}:{{$e}} {{end}}', { L: ['a', 'b'] }), '0:a 1:b ');
  assert.is(
    run('{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}', { M: { b: 2, a: 1 } }),
    'a=1;b=2;',
    'maps range in key order',
  );
  assert.is(run('{{range 3}}{{.}}{{end}}'), '012');
});

test('variables: $ is the data, := declares, = assigns, scope ends at {{end}}', () => {
  assert.is(run('{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{$y}}{{end}}{{$x}}'), '32');
  assert.is(run('{{range .L}}{{$.Name}}-{{.}} {{end}}', { Name: 'n', L: [1, 2] }), 'n-1 n-2 ');
  fails('{{if true}}{{$y := 3}}{{end}}{{$y}}', {}, /undefined variable "\$y"/, 'parse');
});

test('pipelines, comparisons, and/or (lazy), not, len, index, slice, printf, print', () => {
  assert.is(run('{{.S | printf "%s-%s" "a"}}', { S: 'b' }), 'a-b');
  assert.is(run('{{"x" | upper | printf "<%s>"}}'), '<X>');
  assert.is(run('{{and 1 0 .Missing.Deep}} {{or 0 "" "z"}} {{not 0}}', {}), '0 z true');
  assert.is(
    run('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}} {{ne "a" "b"}} {{eq 1 2 3 1}}'),
    'true true true false true true',
  );
  assert.is(
    run('{{len .L}} {{len "héllo"}} {{len .M}} {{index .L 1}} {{index .N 1 0}} {{slice .L 1 2}}', {
      L: [1, 2, 3],
      M: { a: 1 },
      N: [[0], [9]],
    }),
    '3 6 1 2 9 [2]',
  );
  assert.is(
    run('{{printf "%5s|%-5s|%05d|%.2f|%q|%v|%x|%t|%%" "a" "b" 42 3.14159 "q" .L 255 true}}', { L: [1, 2] }),
    '    a|b    |00042|3.14|"q"|[1 2]|ff|true|%',
  );
  assert.is(run('{{print 1 2 "a" "b" 3}}'), '1 2ab3');
  assert.is(sprintf('%d %s', [1]), '1 %!s(MISSING)');
  assert.is(sprintf('%d', [1, 'x']), '1%!(EXTRA string=x)');
});

test('text/template trim markers and comments (Go docs: "{{23 -}} < {{- 45}}" is "23<45")', () => {
  assert.is(run('{{23 -}} < {{- 45}}'), '23<45');
  assert.is(run('a {{/* a comment */}} b'), 'a  b');
  assert.is(run('a  {{- /* trimmed */ -}}  b'), 'ab');
  assert.is(run('{{- "x" -}}\n\n'), 'x');
  assert.is(run('{{-3}}'), '-3', 'a dash without a space is a number');
});

test('Go printing of values: slices, maps in key order, nil, floats, structs', () => {
  assert.is(
    run('{{.L}} {{.M}} {{.N}} {{.F}} {{.B}}', { L: ['a', 'b'], M: { z: 1, a: [2] }, N: null, F: 1.5, B: false }),
    '[a b] map[a:[2] z:1] <nil> 1.5 false',
  );
  const s = new GoStruct({ type: '*t.S', fields: { A: 'x', B: () => 2 } });
  assert.is(run('{{.}} {{.B}}', s), '{x 2} 2');
  assert.is(run('{{json .}}', s), '{"A":"x","B":2}');
});

test('structs: unknown fields fail as Go says, methods take arguments', () => {
  const s = new GoStruct({
    type: '*formatter.ContainerContext',
    fields: { ID: 'abc' },
    methods: { Label: { params: ['string'], fn: (k) => (k === 'a' ? 'b' : '') } },
  });
  assert.is(run('{{.ID}} {{.Label "a"}}|{{.Label "z"}}|', s), 'abc b||');
  fails(
    '{{.Foo}}',
    s,
    /^template: :1:2: executing "" at <\.Foo>: can't evaluate field Foo in type \*formatter\.ContainerContext$/,
    'exec',
  );
  fails('{{.Label}}', s, /wrong number of args for Label: want 1 got 0/);
  fails('{{.Label 1}}', s, /wrong type for value; expected string; got int/);
  fails('{{.ID "x"}}', s, /ID has arguments but cannot be invoked as function/);
});

test('errors: parse errors name the line, execution errors the position and the action', () => {
  fails('{{.A', {}, /^template: :1: unclosed action$/, 'parse');
  fails('x\n{{frob .A}}', {}, /^template: :2: function "frob" not defined$/, 'parse');
  fails('{{end}}', {}, /unexpected \{\{end\}\}/, 'parse');
  fails('{{if .A}}x', {}, /unexpected EOF/, 'parse');
  fails('{{else}}', {}, /unexpected \{\{else\}\}/, 'parse');
  fails('{{break}}', {}, /\{\{break\}\} outside \{\{range\}\}/, 'parse');
  fails('{{/* open', {}, /unclosed comment/, 'parse');
  fails('{{"abc}}', {}, /unterminated quoted string/, 'parse');
  fails('{{.A | 3}}', {}, /non executable command in pipeline stage 2/, 'parse');
  fails('{{}}', {}, /missing value for command/, 'parse');
  fails(
    '{{index .L 5}}',
    { L: [1] },
    /^template: :1:2: executing "" at <index \.L 5>: error calling index: index out of range: 5$/,
    'exec',
  );
  fails(
    'ab\n  {{.A.B}}',
    { A: 'str' },
    /^template: :2:4: executing "" at <\.A\.B>: can't evaluate field B in type string$/,
    'exec',
  );
  fails('{{.A.B}}', { A: null }, /nil pointer evaluating interface \{\}\.B/, 'exec');
  fails('{{lt 1 "a"}}', {}, /incompatible types for comparison/, 'exec');
  fails('{{range .S}}{{end}}', { S: 'str' }, /range can't iterate over str/, 'exec');
  fails('{{join .S ","}}', { S: 5 }, /error calling join: expected slice, got int/, 'exec');
  fails('{{nil}}', {}, /nil is not a command/, 'exec');
});

test('define / template / block', () => {
  assert.is(run('{{define "row"}}<{{.}}>{{end}}{{range .L}}{{template "row" .}}{{end}}', { L: [1, 2] }), '<1><2>');
  assert.is(run('{{block "b" .X}}[{{.}}]{{end}}', { X: 'x' }), '[x]');
  fails('{{template "nope"}}', {}, /no template "nope"/, 'exec');
  fails('{{define "r"}}{{template "r"}}{{end}}{{template "r"}}', {}, /exceeded maximum template depth/, 'exec');
});

test('bounded: deep nesting and endless output are errors, not crashes', () => {
  fails(`${'{{if 1}}'.repeat(500)}${'{{end}}'.repeat(500)}`, {}, /nested too deeply/, 'parse');
  fails(`{{${'('.repeat(300)}1${')'.repeat(300)}}}`, {}, /nested too deeply/, 'parse');
  fails('{{range 100000000}}{{end}}', {}, /more than \d+ steps/, 'exec');
});

test.run();
