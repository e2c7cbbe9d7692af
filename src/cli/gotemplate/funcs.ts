/**
 * Functions a template can call: Go's builtins (text/template funcs.go: and, or, not, len, index,
 * slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery) and Docker's
 * (docker/cli templates/templates.go: json, split, join, title, lower, upper, pad, truncate).
 *
 * A function receives evaluated arguments and throws FuncError with Go's wording ("wrong type for
 * value; expected string; got int"); the executor adds "error calling X: " and the position.
 * `and` / `or` are special: the executor evaluates their arguments lazily, as Go 1.18+ does.
 */
import { GoStruct, goString, isMap, toJSON, truth, typeName } from './value.js';

export class FuncError extends Error {
  /** Go reports argument conversions without the "error calling" prefix. */
  constructor(
    message: string,
    readonly bare = false,
  ) {
    super(message);
  }
}

export type Func = (args: unknown[]) => unknown;

function str(v: unknown): string {
  if (typeof v !== 'string') throw new FuncError(`wrong type for value; expected string; got ${typeName(v)}`, true);
  return v;
}

function int(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new FuncError(`wrong type for value; expected int; got ${typeName(v)}`, true);
  return v;
}

function arity(name: string, args: unknown[], want: number, variadic = false): void {
  if (variadic ? args.length < want : args.length !== want) {
    throw new FuncError(
      `wrong number of args for ${name}: want ${variadic ? 'at least ' : ''}${want} got ${args.length}`,
      true,
    );
  }
}

type Kind = 'bool' | 'number' | 'string' | 'nil' | 'other';
function kind(v: unknown): Kind {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  return 'other';
}

function eq(args: unknown[]): boolean {
  arity('eq', args, 1, true);
  const [a, ...rest] = args;
  if (rest.length === 0) throw new FuncError('missing argument for comparison');
  const ka = kind(a);
  if (ka === 'other' && !(a instanceof GoStruct))
    throw new FuncError(`non-comparable type ${goString(a)}: ${typeName(a)}`);
  for (const b of rest) {
    const kb = kind(b);
    if (ka === 'nil' || kb === 'nil') {
      if (ka === kb) return true;
      continue;
    }
    if (kb === 'other' && !(b instanceof GoStruct))
      throw new FuncError(`non-comparable type ${goString(b)}: ${typeName(b)}`);
    if (ka !== kb) throw new FuncError('incompatible types for comparison');
    if (a === b) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = kind(a);
  const kb = kind(b);
  if ((ka !== 'number' && ka !== 'string') || (kb !== 'number' && kb !== 'string'))
    throw new FuncError('invalid type for comparison');
  if (ka !== kb) throw new FuncError('incompatible types for comparison');
  return (a as number | string) < (b as number | string);
}

function indexOne(v: unknown, i: unknown): unknown {
  if (Array.isArray(v) || typeof v === 'string') {
    if (typeof i !== 'number' || !Number.isInteger(i))
      throw new FuncError(`cannot index slice/array with type ${typeName(i)}`);
    if (i < 0 || i >= v.length) throw new FuncError(`index out of range: ${i}`);
    return typeof v === 'string' ? Buffer.from(v)[i] : v[i];
  }
  if (isMap(v)) {
    if (typeof i !== 'string') throw new FuncError(`value has type ${typeName(i)}; should be string`);
    return Object.prototype.hasOwnProperty.call(v, i) ? v[i] : '';
  }
  if (v === null || v === undefined) throw new FuncError('index of untyped nil');
  throw new FuncError(`can't index item of type ${typeName(v)}`);
}

function len(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (isMap(v)) return Object.keys(v).length;
  throw new FuncError(`len of ${v === null || v === undefined ? 'nil pointer' : `type ${typeName(v)}`}`);
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += goString(a);
  });
  return out;
}

const VERB = /%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])/g;

/** fmt.Sprintf for the verbs templates use: %v %s %d %q %x %X %f %e %g %t %c %o %b %%. */
export function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  const out = format.replace(
    VERB,
    (whole, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
      if (verb === '%' && whole === '%%') return '%';
      const w = width === '*' ? Number(args[n++]) : width === undefined ? undefined : Number(width);
      const pr =
        prec === '*' ? Number(args[n++]) : prec === undefined ? (whole.includes('.') ? 0 : undefined) : Number(prec);
      if (n >= args.length) return `%!${verb}(MISSING)`;
      const v = args[n++];
      let s: string;
      const bad = (): string => `%!${verb}(${typeName(v)}=${goString(v)})`;
      switch (verb) {
        case 'v':
          s =
            flags.includes('+') && v instanceof GoStruct
              ? `{${Object.keys(v.spec.fields)
                  .map((k) => `${k}:${goString(v.field(k))}`)
                  .join(' ')}}`
              : goString(v);
          break;
        case 's':
          s = typeof v === 'number' || typeof v === 'boolean' ? bad() : goString(v);
          if (pr !== undefined) s = [...s].slice(0, pr).join('');
          break;
        case 'q':
          s =
            typeof v === 'string'
              ? JSON.stringify(v)
              : typeof v === 'number' && Number.isInteger(v)
                ? `'${String.fromCodePoint(v)}'`
                : bad();
          break;
        case 'd':
          s = typeof v === 'number' && Number.isInteger(v) ? String(v) : bad();
          break;
        case 'c':
          s = typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x10ffff ? String.fromCodePoint(v) : bad();
          break;
        case 'o':
          s = typeof v === 'number' && Number.isInteger(v) ? v.toString(8) : bad();
          break;
        case 'b':
          s = typeof v === 'number' && Number.isInteger(v) ? v.toString(2) : bad();
          break;
        case 'x':
        case 'X':
          s =
            typeof v === 'number' && Number.isInteger(v)
              ? v.toString(16)
              : typeof v === 'string'
                ? Buffer.from(v).toString('hex')
                : bad();
          if (verb === 'X') s = s.toUpperCase();
          break;
        case 'f':
        case 'F':
          s = typeof v === 'number' ? v.toFixed(Math.min(pr ?? 6, 100)) : bad();
          break;
        case 'e':
          s = typeof v === 'number' ? v.toExponential(Math.min(pr ?? 6, 100)).replace(/e([+-])(\d)$/, 'e$10$2') : bad();
          break;
        case 'g':
          s = typeof v === 'number' ? goString(v) : bad();
          break;
        case 't':
          s = typeof v === 'boolean' ? String(v) : bad();
          break;
        default:
          s = `%!${verb}(${typeName(v)}=${goString(v)})`;
      }
      if (flags.includes('+') && typeof v === 'number' && v >= 0 && 'dfeg'.includes(verb)) s = `+${s}`;
      if (w !== undefined && Number.isFinite(w) && w > [...s].length) {
        const pad = Math.min(w, 10_000) - [...s].length;
        if (flags.includes('-')) s += ' '.repeat(pad);
        else if (flags.includes('0') && typeof v === 'number')
          s = s.startsWith('-') ? `-${'0'.repeat(pad)}${s.slice(1)}` : '0'.repeat(pad) + s;
        else s = ' '.repeat(pad) + s;
      }
      return s;
    },
  );
  const extra = args.slice(n);
  return extra.length > 0 ? `${out}%!(EXTRA ${extra.map((e) => `${typeName(e)}=${goString(e)}`).join(', ')})` : out;
}

function join(args: unknown[]): string {
  arity('join', args, 2);
  const [elems, sep] = args;
  const s = str(sep);
  if (elems === null || elems === undefined) return '';
  if (Array.isArray(elems)) return elems.map(goString).join(s);
  if (isMap(elems)) return Object.values(elems).map(goString).sort().join(s);
  throw new FuncError(`expected slice, got ${typeName(elems)}`);
}

function title(s: string): string {
  // strings.Title: upper-case the first letter of each word; letters, digits, _ and ' join words.
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    const sep = !/[\p{L}\p{N}_']/u.test(prev);
    out += sep ? ch.toUpperCase() : ch;
    prev = ch;
  }
  return out;
}

/** Replace characters one by one (no control characters in a regular expression). */
function mapChars(s: string, f: (c: string) => string | undefined): string {
  let out = '';
  for (const c of s) out += f(c) ?? c;
  return out;
}

function escapeJS(s: string): string {
  return mapChars(s, (c) => {
    if (c === '\\') return '\\\\';
    if (c === "'") return "\\'";
    if (c === '"') return '\\"';
    if ('<>&='.includes(c) || c.charCodeAt(0) < 0x20)
      return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    return undefined;
  });
}

const HTML: Record<string, string> = {
  '&': '&amp;',
  "'": '&#39;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  '\u0000': '\uFFFD',
};

export const FUNCS: Record<string, Func> = {
  // and / or are evaluated lazily by the executor; these are for completeness.
  and: (a) => {
    arity('and', a, 1, true);
    return a.find((x) => !truth(x)) ?? a[a.length - 1];
  },
  or: (a) => {
    arity('or', a, 1, true);
    return a.find((x) => truth(x)) ?? a[a.length - 1];
  },
  not: (a) => {
    arity('not', a, 1);
    return !truth(a[0]);
  },
  len: (a) => {
    arity('len', a, 1);
    return len(a[0]);
  },
  index: (a) => {
    arity('index', a, 1, true);
    return a.slice(1).reduce((v, i) => indexOne(v, i), a[0]);
  },
  slice: (a) => {
    arity('slice', a, 1, true);
    const [v, ...idx] = a;
    if (typeof v !== 'string' && !Array.isArray(v)) throw new FuncError(`can't slice item of type ${typeName(v)}`);
    if (idx.length > (typeof v === 'string' ? 2 : 3)) throw new FuncError(`too many slice indexes: ${idx.length}`);
    const [lo = 0, hi = v.length] = idx.map(int);
    if (lo < 0 || hi < lo || hi > v.length) throw new FuncError(`index out of range: ${hi > v.length ? hi : lo}`);
    return v.slice(lo, hi);
  },
  print: (a) => sprint(a),
  printf: (a) => {
    arity('printf', a, 1, true);
    return sprintf(str(a[0]), a.slice(1));
  },
  println: (a) => `${a.map(goString).join(' ')}\n`,
  eq: (a) => eq(a),
  ne: (a) => {
    arity('ne', a, 2);
    return !eq(a);
  },
  lt: (a) => {
    arity('lt', a, 2);
    return lt(a[0], a[1]);
  },
  le: (a) => {
    arity('le', a, 2);
    return lt(a[0], a[1]) || eq(a);
  },
  gt: (a) => {
    arity('gt', a, 2);
    return !lt(a[0], a[1]) && !eq(a);
  },
  ge: (a) => {
    arity('ge', a, 2);
    return !lt(a[0], a[1]);
  },
  html: (a) => mapChars(sprint(a), (c) => HTML[c]),
  js: (a) => escapeJS(sprint(a)),
  urlquery: (a) => encodeURIComponent(sprint(a)).replace(/%20/g, '+'),
  call: () => {
    throw new FuncError('call of a function value is not supported');
  },
  // Docker's (templates.basicFunctions).
  json: (a) => {
    arity('json', a, 1);
    return toJSON(a[0]);
  },
  split: (a) => {
    arity('split', a, 2);
    const s = str(a[0]);
    const sep = str(a[1]);
    return sep === '' ? [...s] : s.split(sep);
  },
  join: (a) => join(a),
  title: (a) => {
    arity('title', a, 1);
    return title(str(a[0]));
  },
  lower: (a) => {
    arity('lower', a, 1);
    return str(a[0]).toLowerCase();
  },
  upper: (a) => {
    arity('upper', a, 1);
    return str(a[0]).toUpperCase();
  },
  pad: (a) => {
    arity('pad', a, 3);
    const s = str(a[0]);
    const pre = Math.min(int(a[1]), 10_000);
    const suf = Math.min(int(a[2]), 10_000);
    if (pre < 0 || suf < 0) throw new FuncError('strings: negative Repeat count');
    return s === '' ? s : ' '.repeat(pre) + s + ' '.repeat(suf);
  },
  truncate: (a) => {
    arity('truncate', a, 2);
    const s = str(a[0]);
    const n = int(a[1]);
    const b = Buffer.from(s);
    if (b.length < n) return s;
    if (n < 0) throw new FuncError(`slice bounds out of range [:${n}]`);
    return b.subarray(0, n).toString();
  },
};

/**
 * Docker's templates.HeaderFunctions: used when a `table` format renders its header row, so
 * `{{upper .Names}}` prints the header NAMES unchanged.
 */
export const HEADER_FUNCS: Record<string, Func> = {
  ...FUNCS,
  json: (a) => a[0],
  split: (a) => a[0],
  join: (a) => a[0],
  title: (a) => a[0],
  lower: (a) => a[0],
  upper: (a) => a[0],
  truncate: (a) => a[0],
};
