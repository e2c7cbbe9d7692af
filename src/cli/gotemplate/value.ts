/**
 * How template data looks to the engine, and how values print (Go's fmt %v).
 *
 * - A plain JS object is a Go map (map[string]…): `.Key` reads a key; a missing key is the empty
 *   string (Docker's maps are map[string]string, and tsrun prints "" rather than "<no value>").
 * - A GoStruct is one of Docker's typed structs (formatter.ContainerContext, image.InspectResponse,
 *   …): `.Field` reads a field or calls a method (`{{.Label "k"}}`); an unknown name is an error
 *   worded as Go words it. `json` prints what the struct's MarshalJSON would.
 * - Arrays are slices, strings, numbers and booleans are themselves, null is nil.
 */

export type Method = (...args: unknown[]) => unknown;

export interface GoStructSpec {
  /** Go type name for errors: "*formatter.ContainerContext". */
  type: string;
  /** Field or zero-argument method name → value (a function is called when read). */
  fields: Record<string, unknown>;
  /** Methods that take arguments, with their arity and Go parameter types. */
  methods?: Record<string, { params: ('string' | 'int')[]; fn: Method }>;
  /** What `json .` prints; default: every field. */
  json?: () => unknown;
  /** An unknown field reads as "" (Docker's header maps) instead of failing. */
  lenient?: boolean;
  /** Error for an unknown field; default Go's "can't evaluate field X in type T". */
  missing?: (name: string) => string;
}

export class GoStruct {
  constructor(readonly spec: GoStructSpec) {}

  has(name: string): boolean {
    return (
      Object.prototype.hasOwnProperty.call(this.spec.fields, name) ||
      Boolean(this.spec.methods && Object.prototype.hasOwnProperty.call(this.spec.methods, name))
    );
  }

  field(name: string): unknown {
    const v = this.spec.fields[name];
    return typeof v === 'function' ? (v as () => unknown)() : v;
  }

  toJSON(): unknown {
    if (this.spec.json) return this.spec.json();
    return Object.fromEntries(Object.keys(this.spec.fields).map((k) => [k, this.field(k)]));
  }
}

export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoStruct);
}

/** The Go type a value stands for, as error messages name it. */
export function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (v instanceof GoStruct) return v.spec.type;
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x === 'string') ? '[]string' : '[]interface {}';
  if (isMap(v)) {
    const vals = Object.values(v);
    return vals.length > 0 && vals.every((x) => typeof x === 'string')
      ? 'map[string]string'
      : 'map[string]interface {}';
  }
  return typeof v;
}

/** Go's truth: false, 0, "", nil, and empty slices and maps are false. */
export function truth(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v for a float64: shortest representation, exponent outside [-4, 21). */
export function formatFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const s = n.toExponential();
  const [mant, exp] = s.split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 21) return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(n);
}

/** Go's fmt.Sprint of one value (%v). */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatFloat(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (v instanceof GoStruct)
    return `{${Object.keys(v.spec.fields)
      .map((k) => goString(v.field(k)))
      .join(' ')}}`;
  if (isMap(v))
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goString(v[k])}`)
      .join(' ')}]`;
  return String(v);
}

/** Docker's `json` function: encoding/json without HTML escaping, structs through toJSON. */
export function toJSON(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v, (_k, x: unknown) => (x === undefined ? null : x))
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
