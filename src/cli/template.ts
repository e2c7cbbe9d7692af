/**
 * `--format` for ps / inspect: the subset of Go's text/template that Docker's formatting uses
 * (docker/cli cli/command/formatter: `table` prefix and header row, `json`; templates package:
 * json, lower, upper, join, index, len, printf, println, pipelines).
 *
 * Supported: literal text; `{{.Field}}`, `{{.A.B}}` (into objects), `{{.}}`; function calls
 * `{{json .X}}`, `{{join .Args " "}}`, `{{index .Labels "k"}}`, `{{printf "%s-%d" .A .B}}`
 * (%s %d %v %q); pipelines `{{.X | upper}}`; the user's "\t" and "\n" as tab and newline;
 * `table ...` (a header row from each field's header, columns aligned as docker's tabwriter);
 * `json` alone (one JSON object per row). if/range/with and variables are refused.
 * Values print as Go prints them: nil as "<no value>", lists as "[a b]", maps as "map[k:v]".
 *
 * Contract: pure (no I/O); a template error is TsrunError('ERR_USAGE', 'template parsing
 * error: ...'), raised before any row is printed.
 */
import { TsrunError } from '../errors.js';
import { table } from './format.js';

export interface FormatSpec<Row> {
  /** Field name → value getter; a field not listed is read from the row's own properties. */
  fields: Record<string, (row: Row) => unknown>;
  /** Field name → table header; default: the field name upper-cased. */
  headers?: Record<string, string>;
  toJSON?: (row: Row) => unknown;
}

type Arg = { kind: 'field'; path: string[] } | { kind: 'lit'; value: string | number } | { kind: 'fn'; name: string };
type Command = Arg[];
type Node = { text: string } | { pipeline: Command[]; src: string };

const FUNCS = new Set(['json', 'lower', 'upper', 'join', 'index', 'len', 'printf', 'println', 'title']);
const REFUSED = new Set(['if', 'range', 'with', 'else', 'end', 'define', 'template', 'block']);

function parseError(msg: string): TsrunError {
  return new TsrunError('ERR_USAGE', `template parsing error: ${msg}`, { hint: 'e.g. --format "{{.ID}} {{.Names}}", "table {{.ID}}\\t{{.Status}}" or json' });
}

function tokenize(src: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|"`]+)/y;
  let pos = 0;
  for (let m = re.exec(src); m !== null && m[1] !== undefined; m = re.exec(src)) {
    out.push(m[1]);
    pos = re.lastIndex;
  }
  if (src.slice(pos).trim() !== '') throw parseError(`unterminated quoted string in "{{${src}}}"`);
  return out;
}

function parseAction(src: string): Command[] {
  const pipeline: Command[] = [[]];
  for (const tok of tokenize(src)) {
    const cmd = pipeline[pipeline.length - 1] as Command;
    if (tok === '|') {
      if (cmd.length === 0) throw parseError(`missing command before | in "{{${src}}}"`);
      pipeline.push([]);
    } else if (tok === '.') cmd.push({ kind: 'field', path: [] });
    else if (tok.startsWith('.')) cmd.push({ kind: 'field', path: tok.slice(1).split('.') });
    else if (tok.startsWith('"')) cmd.push({ kind: 'lit', value: JSON.parse(tok) as string });
    else if (tok.startsWith('`')) cmd.push({ kind: 'lit', value: tok.slice(1, -1) });
    else if (/^-?\d+(\.\d+)?$/.test(tok)) cmd.push({ kind: 'lit', value: Number(tok) });
    else if (REFUSED.has(tok)) throw parseError(`"${tok}" is not supported by tsrun`);
    else if (FUNCS.has(tok)) cmd.push({ kind: 'fn', name: tok });
    else throw parseError(`function "${tok}" not defined`);
  }
  if (pipeline.some((c) => c.length === 0)) throw parseError(`empty command in "{{${src}}}"`);
  return pipeline;
}

export function parseTemplate(format: string): Node[] {
  const src = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const nodes: Node[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) { nodes.push({ text: src.slice(i) }); break; }
    if (open > i) nodes.push({ text: src.slice(i, open) });
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw parseError(`unclosed action in "${format}"`);
    const inner = src.slice(open + 2, close).replace(/^-\s/, '').replace(/\s-$/, '');
    nodes.push({ pipeline: parseAction(inner), src: inner.trim() });
    i = close + 2;
  }
  return nodes;
}

/** Go's %v. */
export function goString(v: unknown): string {
  if (v === null || v === undefined) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    return `map[${Object.keys(v).sort().map((k) => `${k}:${goString((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function printf(fmt: string, args: unknown[]): string {
  let n = 0;
  return fmt.replace(/%([sdvq%])/g, (_, c: string) => {
    if (c === '%') return '%';
    const v = args[n++];
    if (c === 'd') return String(Math.trunc(Number(v)));
    if (c === 'q') return JSON.stringify(goString(v));
    return goString(v);
  });
}

function call(name: string, args: unknown[]): unknown {
  const [a, b] = args;
  switch (name) {
    case 'json': return JSON.stringify(a ?? null);
    case 'lower': return goString(a).toLowerCase();
    case 'upper': return goString(a).toUpperCase();
    case 'title': return goString(a).replace(/\b\w/g, (ch) => ch.toUpperCase());
    case 'join': return Array.isArray(a) ? a.map(goString).join(String(b ?? '')) : goString(a);
    case 'len': return Array.isArray(a) || typeof a === 'string' ? a.length : (a && typeof a === 'object' ? Object.keys(a).length : 0);
    case 'index': return a && typeof a === 'object' ? (a as Record<string, unknown>)[String(b)] : undefined;
    case 'printf': return printf(goString(a), args.slice(1));
    case 'println': return `${args.map(goString).join(' ')}\n`;
    default: throw parseError(`function "${name}" not defined`);
  }
}

type Lookup = (path: string[], src: string) => unknown;

function evalNode(node: Extract<Node, { pipeline: Command[] }>, lookup: Lookup): unknown {
  let piped: unknown;
  let first = true;
  for (const cmd of node.pipeline) {
    const values = cmd.map((arg) => (arg.kind === 'field' ? lookup(arg.path, node.src) : arg.kind === 'lit' ? arg.value : undefined));
    const head = cmd[0] as Arg;
    let result: unknown;
    if (head.kind === 'fn') {
      const args = values.slice(1);
      if (!first) args.push(piped);
      result = call(head.name, args);
    } else {
      if (cmd.length > 1 || !first) throw parseError(`can't give argument to non-function in "{{${node.src}}}"`);
      result = values[0];
    }
    piped = result;
    first = false;
  }
  return piped;
}

function render(nodes: Node[], lookup: Lookup): string {
  return nodes.map((n) => ('text' in n ? n.text : goString(evalNode(n, lookup)))).join('');
}

function rowLookup<Row>(row: Row, spec: FormatSpec<Row>): Lookup {
  return (p, src) => {
    if (p.length === 0) return row;
    const [top, ...rest] = p as [string, ...string[]];
    let v: unknown;
    const getter = spec.fields[top];
    if (getter) v = getter(row);
    else if (row && typeof row === 'object' && Object.prototype.hasOwnProperty.call(row, top)) v = (row as Record<string, unknown>)[top];
    else throw parseError(`template: :1: executing "" at <${src}>: can't evaluate field ${top}`);
    for (const key of rest) {
      if (v === null || v === undefined) return undefined;
      if (typeof v !== 'object') throw parseError(`template: :1: executing "" at <${src}>: can't evaluate field ${key}`);
      v = (v as Record<string, unknown>)[key];
    }
    return v;
  };
}

export function renderFormat<Row>(format: string, rows: readonly Row[], spec: FormatSpec<Row>): string {
  if (format.trim() === 'json') {
    const toJSON = spec.toJSON ?? ((r: Row) => (Object.keys(spec.fields).length
      ? Object.fromEntries(Object.entries(spec.fields).map(([k, f]) => [k, f(r)]))
      : r));
    return rows.map((r) => `${JSON.stringify(toJSON(r))}\n`).join('');
  }
  const isTable = /^table(\s|$)/.test(format);
  const nodes = parseTemplate(isTable ? format.replace(/^table\s?/, '') : format);
  const lines = rows.map((r) => render(nodes, rowLookup(r, spec)));
  if (!isTable) return lines.map((l) => `${l}\n`).join('');
  const header = render(nodes, (p) => (p.length === 0 ? '' : spec.headers?.[p[0] as string] ?? (p[p.length - 1] as string).toUpperCase()));
  return table(header.split('\t'), lines.map((l) => l.split('\t')));
}
