/**
 * src/cli/template.ts: the --format subset, checked against what docker prints for the same
 * template (docker/cli formatter + Go text/template printing rules).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import { goString, renderFormat } from '../../src/cli/template.js';

interface Row { id: string; name: string; args: string[]; labels: Record<string, string>; up: boolean }
const rows: Row[] = [
  { id: 'abc123', name: 'web', args: ['sh', '-c', 'x'], labels: { tier: 'front', a: '1' }, up: true },
  { id: 'def456', name: 'database', args: [], labels: {}, up: false },
];
const spec = {
  fields: { ID: (r: Row) => r.id, Names: (r: Row) => r.name, Args: (r: Row) => r.args, Labels: (r: Row) => r.labels, Up: (r: Row) => r.up },
  headers: { ID: 'CONTAINER ID' },
};

function usageError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.is((err as TsrunError).code, 'ERR_USAGE');
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected a template error');
}

test('fields and literal text, one line per row', () => {
  assert.is(renderFormat('{{.ID}}: {{ .Names }}', rows, spec), 'abc123: web\ndef456: database\n');
});

test('Go printing: lists, maps (sorted keys), booleans, missing values', () => {
  assert.is(renderFormat('{{.Args}} {{.Labels}} {{.Up}}', rows.slice(0, 1), spec), '[sh -c x] map[a:1 tier:front] true\n');
  assert.is(goString(undefined), '<no value>');
});

test('functions and pipelines: json, join, index, len, upper, printf', () => {
  const out = renderFormat('{{json .Args}}|{{join .Args ","}}|{{index .Labels "tier"}}|{{len .Args}}|{{.Names | upper}}|{{printf "%s=%d" .Names 7}}', rows.slice(0, 1), spec);
  assert.is(out, '["sh","-c","x"]|sh,-c,x|front|3|WEB|web=7\n');
});

test('table: header from the fields, columns aligned as docker does', () => {
  const out = renderFormat('table {{.ID}}\\t{{.Names}}', rows, spec);
  assert.is(out, 'CONTAINER ID   NAMES\nabc123         web\ndef456         database\n');
});

test('json: one object per line', () => {
  const out = renderFormat('json', rows.slice(0, 1), { ...spec, toJSON: (r: Row) => ({ Names: r.name }) });
  assert.is(out, '{"Names":"web"}\n');
});

test('nested fields on plain objects (inspect --format)', () => {
  const obj = [{ State: { Status: 'running', Pid: 42 }, Name: '/web' }];
  assert.is(renderFormat('{{.State.Status}} {{.State.Pid}} {{.Name}}', obj, { fields: {} }), 'running 42 /web\n');
});

test('errors: unknown field, unclosed action, unknown function, unsupported actions', () => {
  usageError(() => renderFormat('{{.Nope}}', rows, spec), /can't evaluate field Nope/);
  usageError(() => renderFormat('{{.ID', rows, spec), /unclosed action/);
  usageError(() => renderFormat('{{frobnicate .ID}}', rows, spec), /function "frobnicate" not defined/);
  usageError(() => renderFormat('{{range .Args}}x{{end}}', rows, spec), /"range" is not supported/);
});

test.run();
