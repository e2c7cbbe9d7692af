/**
 * `tsrun images` filters, as Docker's daemon applies them (moby daemon/images/images.go):
 * `dangling=true|false` (untagged images only / tagged only), `reference=PATTERN` (a glob,
 * Go's path.Match, against `name:tag` and `name` in their familiar form; also what the
 * `images REPOSITORY[:TAG]` argument means), `before=IMAGE` / `since=IMAGE` (created before /
 * after that image), `label=KEY` or `label=KEY=VALUE` (the image config's labels).
 * Several values of one key: any may match (label: all must); different keys: all must.
 */
import { TsrunError } from '../errors.js';

export interface ImageFilters {
  dangling?: boolean;
  reference: string[];
  before?: string;
  since?: string;
  label: string[];
}

const usage = (message: string) =>
  new TsrunError('ERR_USAGE', message, {
    hint: 'filters: dangling=true|false, reference=NAME[:TAG], before=IMAGE, since=IMAGE, label=KEY[=VALUE]',
    detail: { exitCode: 1 },
  });

export function parseImageFilters(args: string[]): ImageFilters {
  const f: ImageFilters = { reference: [], label: [] };
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw usage(`bad format of filter (expected name=value): ${a}`);
    const key = a.slice(0, eq).toLowerCase();
    const value = a.slice(eq + 1);
    switch (key) {
      case 'dangling':
        if (!/^(true|false|1|0)$/i.test(value)) throw usage(`invalid filter 'dangling=${value}'`);
        f.dangling = /^(true|1)$/i.test(value);
        break;
      case 'reference':
        f.reference.push(value);
        break;
      case 'before':
        f.before = value;
        break;
      case 'since':
        f.since = value;
        break;
      case 'label':
        f.label.push(value);
        break;
      default:
        throw usage(`invalid filter '${key}'`);
    }
  }
  return f;
}

/** Go's path.Match: `*` any run of non-'/' characters, `?` one, `[...]` a class; `\` escapes. */
export function globMatch(pattern: string, text: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return false;
      let cls = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (cls.startsWith('^')) cls = `^${cls.slice(1)}`;
      re += `[${cls}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`).test(text);
  } catch {
    return false;
  }
}

/** Docker's reference.FamiliarMatch: the pattern against `name:tag`, else against `name`. */
export function referenceMatches(pattern: string, familiarRepo: string, tag: string): boolean {
  return globMatch(pattern, `${familiarRepo}:${tag}`) || globMatch(pattern, familiarRepo);
}

/** Whether labels satisfy every `KEY` / `KEY=VALUE` filter. */
export function labelsMatch(filters: string[], labels: Record<string, string> | null | undefined): boolean {
  return filters.every((f) => {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    if (!labels || !(key in labels)) return false;
    return eq < 0 || labels[key] === f.slice(eq + 1);
  });
}
