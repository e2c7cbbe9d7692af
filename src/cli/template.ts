/**
 * `--format` as Docker's CLI applies it (docker/cli cli/command/formatter/formatter.go and
 * cli/command/inspect/inspector.go), on top of the Go template engine in ./gotemplate/.
 *
 * Lists (ps, images, history): `json` is `{{json .}}` per row; `table …` renders a header row
 * from the command's header names (Docker's SubHeaderContext, with its HeaderFunctions) and
 * aligns columns with Docker's tabwriter; anything else is one rendered line per row; literal
 * `\t` and `\n` in the format become tab and newline; spaces around the format are trimmed.
 * Nothing is printed when any row fails: Docker renders into a buffer first.
 *
 * Single objects (inspect, info, version): empty format → indented JSON, `json` → compact JSON,
 * else the template once per object.
 *
 * Contract: pure. Errors are TsrunError('ERR_USAGE') with Docker's wording ("template parsing
 * error: template: :1:2: executing \"\" at <.Foo>: …"); `detail.exitCode` carries Docker's exit
 * code where it is not 1 (inspect's parse error: 64).
 */
import { TsrunError } from '../errors.js';
import { TemplateError } from './gotemplate/errors.js';
import { Template } from './gotemplate/exec.js';
import { HEADER_FUNCS } from './gotemplate/funcs.js';
import { GoStruct, toJSON } from './gotemplate/value.js';
import { tabwrite } from './tabwriter.js';

export { GoStruct } from './gotemplate/value.js';
export { goString } from './gotemplate/value.js';

export interface ListFormat<Row> {
  /** A row as Docker's typed struct (formatter.ContainerContext, imageContext, …). */
  toStruct(row: Row): GoStruct;
  /** Field → table header (Docker's SubHeaderContext). */
  headers: Record<string, string>;
  /** Docker's default table format for the command: used with no --format and with `table` alone. */
  defaultTable: string;
  /** Error prefixes: Docker's `ps` says "failed to parse template" / "failed to execute template". */
  parsePrefix?: string;
  execPrefix?: string;
}

function usage(prefix: string, err: TemplateError, exitCode?: number): TsrunError {
  return new TsrunError(
    'ERR_USAGE',
    `${prefix}: ${err.message}`,
    exitCode === undefined ? {} : { detail: { exitCode } },
  );
}

/** Docker's Format.templateString: the template text behind a --format value. */
export function templateText(format: string): string {
  if (format === 'json') return '{{json .}}';
  let out = format.startsWith('table') ? format.slice(5) : format;
  out = out.replace(/^ +| +$/g, '');
  return out.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

export function parseTemplate(text: string, prefix = 'template parsing error', exitCode?: number): Template {
  try {
    return Template.parse(text);
  } catch (e) {
    if (e instanceof TemplateError) throw usage(prefix, e, exitCode);
    throw e;
  }
}

/** Docker's header struct: the header names, `.Label "a.b-c"` → "b c". */
function headerStruct(headers: Record<string, string>): GoStruct {
  return new GoStruct({
    type: 'formatter.SubHeaderContext',
    fields: headers,
    methods: {
      Label: { params: ['string'], fn: (name) => (String(name).split('.').pop() as string).replace(/[-_]/g, ' ') },
    },
    lenient: true,
  });
}

/** Render rows with a --format value (undefined: the default table). */
export function renderList<Row>(format: string | undefined, rows: readonly Row[], spec: ListFormat<Row>): string {
  const f = format === undefined || format === '' || format === 'table' ? spec.defaultTable : format;
  const tmpl = parseTemplate(templateText(f), spec.parsePrefix);
  let body = '';
  for (const row of rows) {
    try {
      body += `${tmpl.execute(spec.toStruct(row))}\n`;
    } catch (e) {
      if (e instanceof TemplateError) throw usage(spec.execPrefix ?? 'template parsing error', e);
      throw e;
    }
  }
  if (!f.startsWith('table')) return body;
  let header: string;
  try {
    header = tmpl.execute(headerStruct(spec.headers), HEADER_FUNCS);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    header = e.partial; // Docker ignores the header's error and keeps what was written
  }
  return tabwrite(`${header}\n${body}`);
}

/**
 * Check a list format against an empty row before listing (Docker's ps does this to learn
 * whether `.Size` is used); returns the fields the template read.
 */
export function fieldsUsed<Row>(format: string, probe: Row, spec: ListFormat<Row>): Set<string> {
  const used = new Set<string>();
  const s = spec.toStruct(probe);
  const traced = new GoStruct({
    ...s.spec,
    fields: Object.fromEntries(
      Object.keys(s.spec.fields).map((k) => [
        k,
        () => {
          used.add(k);
          return s.field(k);
        },
      ]),
    ),
  });
  const tmpl = parseTemplate(templateText(format), spec.parsePrefix);
  try {
    tmpl.execute(traced);
  } catch (e) {
    if (e instanceof TemplateError) throw usage(spec.execPrefix ?? 'template parsing error', e);
    throw e;
  }
  return used;
}

/**
 * Docker's inspect output for objects: no format → a JSON array indented by 4, `json` → compact,
 * else the template per object. A parse error exits 64 as Docker's does (thrown); an object whose
 * execution fails is skipped and its error returned, the others still print (exit 1).
 */
export function renderObjects(
  format: string | undefined,
  objects: readonly GoStruct[],
  indent = 4,
): { out: string; errors: TsrunError[] } {
  if (!format) return { out: `${JSON.stringify(objects, null, indent)}\n`, errors: [] };
  if (format === 'json') return { out: `${toJSON(objects)}\n`, errors: [] };
  const tmpl = parseTemplate(format, 'template parsing error', 64);
  let out = '';
  const errors: TsrunError[] = [];
  for (const o of objects) {
    try {
      out += `${tmpl.execute(o)}\n`;
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      errors.push(usage('template parsing error', e));
    }
  }
  // Docker's Flush: an empty buffer still prints a newline.
  return { out: out === '' ? '\n' : out, errors };
}

/** One object (info, version): the template once; `json` prints the object as JSON. */
export function renderObject(format: string, obj: GoStruct): string {
  if (format === 'json') return `${toJSON(obj)}\n`;
  const tmpl = parseTemplate(templateText(format));
  try {
    return `${tmpl.execute(obj)}\n`;
  } catch (e) {
    if (e instanceof TemplateError) throw usage('template parsing error', e);
    throw e;
  }
}
