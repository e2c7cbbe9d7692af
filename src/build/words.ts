/**
 * Word splitting and variable substitution as Docker does them in a Dockerfile (reference:
 * "Environment replacement"; BuildKit's frontend/dockerfile/shell lexer). Used for the
 * instructions Docker expands: FROM, ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME,
 * WORKDIR, ARG, ONBUILD and flag values. RUN, CMD and ENTRYPOINT are never expanded here: their
 * shell does that, with the container's environment.
 *
 * Rules: `$NAME` and `${NAME}`; `${NAME:-word}` / `${NAME-word}` (default when empty / unset),
 * `${NAME:+word}` / `${NAME+word}` (alternative when set), `${NAME:?msg}` / `${NAME?msg}`
 * (error). Single quotes are literal; inside double quotes the escape character only escapes `"`,
 * `$` and itself; outside quotes it makes the next character literal. Expanded values are not
 * split again. Unset variables expand to nothing.
 */
import { TsrunError } from '../errors.js';

export type Vars = ReadonlyMap<string, string>;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const SPACE = /[ \t\r\n\f\v]/;

class Lexer {
  i = 0;
  /** `literal`: quotes are ordinary characters (heredoc bodies). */
  constructor(
    readonly s: string,
    readonly vars: Vars,
    readonly escape: string,
    readonly literal = false,
  ) {}

  peek(): string | undefined {
    return this.s[this.i];
  }

  fail(msg: string): never {
    throw new TsrunError('ERR_DOCKERFILE', `${msg} in "${this.s}"`);
  }

  /** Process until end (or, when `stop` is given, until an unquoted `stop` char, consumed). */
  words(split: boolean, stop?: string): { words: string[]; stopped: boolean } {
    const words: string[] = [];
    let cur = '';
    let has = false;
    const flush = () => {
      if (has) words.push(cur);
      cur = '';
      has = false;
    };
    while (this.i < this.s.length) {
      const ch = this.s[this.i] as string;
      if (stop !== undefined && ch === stop) {
        this.i++;
        flush();
        return { words, stopped: true };
      }
      if (split && SPACE.test(ch)) {
        this.i++;
        flush();
        continue;
      }
      has = true;
      if (this.literal && (ch === "'" || ch === '"' || ch === this.escape)) {
        const next = this.s[this.i + 1];
        if (ch === this.escape && (next === '$' || next === this.escape)) {
          cur += next;
          this.i += 2;
        } else {
          cur += ch;
          this.i++;
        }
      } else if (ch === "'") {
        this.i++;
        const end = this.s.indexOf("'", this.i);
        if (end < 0) this.fail('unexpected end of statement while looking for matching single-quote');
        cur += this.s.slice(this.i, end);
        this.i = end + 1;
      } else if (ch === '"') {
        this.i++;
        cur += this.doubleQuoted();
      } else if (ch === this.escape) {
        this.i++;
        if (this.i < this.s.length) cur += this.s[this.i++];
      } else if (ch === '$') {
        cur += this.dollar();
      } else {
        cur += ch;
        this.i++;
      }
    }
    flush();
    return { words, stopped: false };
  }

  doubleQuoted(): string {
    let out = '';
    for (;;) {
      const ch = this.s[this.i];
      if (ch === undefined) this.fail('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.i++;
        return out;
      }
      if (ch === this.escape) {
        const next = this.s[this.i + 1];
        if (next === undefined) {
          this.i++;
          continue;
        }
        if (next === '"' || next === '$' || next === this.escape) {
          out += next;
          this.i += 2;
        } else {
          out += ch + next;
          this.i += 2;
        }
      } else if (ch === '$') {
        out += this.dollar();
      } else {
        out += ch;
        this.i++;
      }
    }
  }

  /** At a `$`: the expansion (or a literal `$` when no name follows). */
  dollar(): string {
    this.i++;
    const ch = this.peek();
    if (ch === '{') {
      this.i++;
      const name = this.name();
      if (!name) this.fail('bad substitution: a variable name must follow "${"');
      const op = this.peek();
      if (op === undefined) this.fail(`missing "}" in substitution of ${name}`);
      if (op === '}') {
        this.i++;
        return this.vars.get(name) ?? '';
      }
      let modifier = '';
      if (op === ':') {
        this.i++;
        modifier = ':';
      }
      const kind = this.peek();
      if (kind !== '-' && kind !== '+' && kind !== '?')
        this.fail(`unsupported modifier (${modifier}${kind ?? 'end'}) in substitution of ${name}`);
      this.i++;
      const { words, stopped } = this.words(false, '}');
      if (!stopped) this.fail(`missing "}" in substitution of ${name}`);
      const word = words.join('');
      const value = this.vars.get(name);
      const set = modifier === ':' ? value !== undefined && value !== '' : value !== undefined;
      if (kind === '-') return set ? (value as string) : word;
      if (kind === '+') return set ? word : '';
      if (!set) throw new TsrunError('ERR_DOCKERFILE', `${name}: ${word || 'is not allowed to be unset'}`);
      return value as string;
    }
    const name = this.name();
    return name ? (this.vars.get(name) ?? '') : '$';
  }

  name(): string {
    const start = this.i;
    if (!NAME_START.test(this.s[this.i] ?? '')) return '';
    while (NAME_CHAR.test(this.s[this.i] ?? '')) this.i++;
    return this.s.slice(start, this.i);
  }
}

/** Quotes removed and variables expanded, without splitting: one word (ENV values, WORKDIR, USER). */
export function expandWord(text: string, vars: Vars, escape = '\\'): string {
  return new Lexer(text, vars, escape).words(false).words.join('');
}

/** Split on unquoted whitespace, each word expanded (FROM, COPY sources, EXPOSE, VOLUME). */
export function expandWords(text: string, vars: Vars, escape = '\\'): string[] {
  return new Lexer(text, vars, escape).words(true).words;
}

/** A heredoc body with an unquoted delimiter: variables expanded, quotes kept as written. */
export function expandHeredoc(text: string, vars: Vars, escape = '\\'): string {
  return new Lexer(text, vars, escape, true).words(false).words.join('');
}

/**
 * Split without processing: quotes and escapes kept, so each word can be split at its first `=`
 * before it is expanded (ENV, LABEL, ARG name=value lists).
 */
export function rawWords(text: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quote) {
      cur += ch;
      if (ch === escape && quote === '"' && i + 1 < text.length) cur += text[++i];
      else if (ch === quote) quote = undefined;
    } else if (SPACE.test(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else {
      cur += ch;
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === escape && i + 1 < text.length) cur += text[++i];
    }
  }
  if (quote) throw new TsrunError('ERR_DOCKERFILE', `unterminated quote in "${text}"`);
  if (cur) out.push(cur);
  return out;
}

/**
 * `key=value key2="v 2"` (or the legacy `key value with spaces` when the first word has no `=`),
 * keys and values expanded with `vars` as they were before this instruction.
 */
export function keyValues(text: string, vars: Vars, escape = '\\', what = 'ENV'): [string, string][] {
  const words = rawWords(text, escape);
  if (words.length === 0) throw new TsrunError('ERR_DOCKERFILE', `${what} needs at least one argument`);
  if (!(words[0] as string).includes('=')) {
    if (words.length < 2)
      throw new TsrunError('ERR_DOCKERFILE', `${what} ${words[0]} needs a value (${what} key=value)`);
    const key = words[0] as string;
    const rest = text.trimStart().slice(key.length).trim();
    return [[expandWord(key, vars, escape), expandWord(rest, vars, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new TsrunError('ERR_DOCKERFILE', `${what}: "${w}" is not key=value`);
    return [expandWord(w.slice(0, eq), vars, escape), expandWord(w.slice(eq + 1), vars, escape)];
  });
}
