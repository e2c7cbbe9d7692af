/**
 * Lexer for Go's text/template language (go/src/text/template/parse/lex.go), as Docker's
 * `--format` uses it: `{{` `}}` delimiters, `{{-` / `-}}` trim markers (the dash must be followed,
 * or preceded, by a space), `{{/* comments *\/}}`, and inside actions: fields `.A`, variables
 * `$x` and `$`, identifiers and keywords, strings ("…" with Go escapes, `raw`), character
 * constants, numbers, `|`, `(`, `)`, `,`, `:=`, `=`.
 *
 * Contract: pure; input is untrusted (a user's --format); every malformed input ends in a
 * TemplateError (never another exception), with Go's message wording where scripts see it.
 */
import { TemplateError } from './errors.js';

/** An ASCII letter, `_`, or with `digits` a digit too (char codes). */
function wordChar(c: number, digits: boolean): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (digits && c >= 0x30 && c <= 0x39);
}

/**
 * Where the word at `from` ends: letters (\p{L}) and `_`, and digits past its first character
 * (anywhere with `digitFirst`). ASCII is told by char code: a `\p{L}` regular expression costs
 * ~0.2 ms to compile on first use (and `ps`/`images` tables are ASCII), so one runs only from
 * the first non-ASCII character on, as the whole-word expression did.
 */
function wordEnd(src: string, from: number, digitFirst: boolean): number {
  for (let j = from; j < src.length; j++) {
    const c = src.charCodeAt(j);
    if (c >= 0x80) {
      const re = j === from && !digitFirst ? /^[\p{L}_][\p{L}\d_]*/u : /^[\p{L}\d_]*/u;
      return j + (re.exec(src.slice(j))?.[0].length ?? 0);
    }
    if (!wordChar(c, j > from || digitFirst)) return j;
  }
  return src.length;
}

export type TokenType =
  | 'text'
  | 'left'
  | 'right'
  | 'field'
  | 'variable'
  | 'identifier'
  | 'keyword'
  | 'dot'
  | 'string'
  | 'number'
  | 'bool'
  | 'nil'
  | 'pipe'
  | 'lparen'
  | 'rparen'
  | 'comma'
  | 'declare'
  | 'assign'
  | 'eof';

export interface Token {
  type: TokenType;
  /** The token's text; for strings and characters, the decoded value. */
  value: string;
  /** Byte offset in the source (JS string index). */
  pos: number;
  /** Offset just past the token. */
  end: number;
  /** Whitespace came right before this token inside the action. */
  space: boolean;
}

export const KEYWORDS = new Set([
  'block',
  'break',
  'continue',
  'define',
  'else',
  'end',
  'if',
  'range',
  'template',
  'with',
]);
const SPACE = ' \t\r\n';

function lineOf(src: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src.charCodeAt(i) === 10) n++;
  return n;
}

export function lexError(src: string, pos: number, msg: string): TemplateError {
  return new TemplateError('parse', `template: :${lineOf(src, pos)}: ${msg}`);
}

const ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
};

/** Go's strconv.Unquote for "…" and '…' (the quote char given). */
function unquote(src: string, start: number, body: string, quote: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined) throw lexError(src, start, 'unterminated quoted string');
    if (e in ESCAPES && (e !== "'" || quote === "'") && (e !== '"' || quote === '"')) {
      out += ESCAPES[e];
      continue;
    }
    let len = 0;
    if (e === 'x') len = 2;
    else if (e === 'u') len = 4;
    else if (e === 'U') len = 8;
    if (len > 0) {
      const hex = body.slice(i + 1, i + 1 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw lexError(src, start, `invalid syntax`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) throw lexError(src, start, 'invalid syntax');
      out += len === 2 ? String.fromCharCode(cp) : String.fromCodePoint(cp);
      i += len;
      continue;
    }
    if (/[0-7]/.test(e)) {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) throw lexError(src, start, 'invalid syntax');
      out += String.fromCharCode(parseInt(oct, 8));
      i += 2;
      continue;
    }
    throw lexError(src, start, 'invalid syntax');
  }
  return out;
}

const NUMBER = /^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?)/;

/** The whole source as tokens; text tokens already trimmed by the markers around them. */
export function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) {
      text = text.replace(/^[ \t\r\n]+/, '');
      trimNext = false;
    }
    const trimBefore = open >= 0 && src[open + 2] === '-' && SPACE.includes(src[open + 3] ?? 'x');
    if (trimBefore) text = text.replace(/[ \t\r\n]+$/, '');
    if (text !== '') out.push({ type: 'text', value: text, pos: i, end: i, space: false });
    if (open < 0) break;
    let p = open + 2 + (trimBefore ? 2 : 0);
    // A comment: {{/* … */}}, with optional trim markers, nothing else in the action.
    if (src.startsWith('/*', p)) {
      const end = src.indexOf('*/', p + 2);
      if (end < 0) throw lexError(src, open, 'unclosed comment');
      p = end + 2;
      if (src.startsWith(' -}}', p)) {
        trimNext = true;
        i = p + 4;
        continue;
      }
      if (src.startsWith('}}', p)) {
        i = p + 2;
        continue;
      }
      throw lexError(src, open, 'comment ends before closing delimiter');
    }
    out.push({ type: 'left', value: '{{', pos: open, end: open + 2, space: false });
    let parens = 0;
    let space = false;
    for (;;) {
      if (p >= src.length) throw lexError(src, open, 'unclosed action');
      const c = src[p] as string;
      if (SPACE.includes(c)) {
        // " -}}" closes with a trim marker.
        if (
          src.startsWith(' -}}', p) ||
          src.startsWith('\t-}}', p) ||
          src.startsWith('\n-}}', p) ||
          src.startsWith('\r-}}', p)
        ) {
          if (parens > 0) throw lexError(src, p, 'unclosed left paren');
          out.push({ type: 'right', value: '}}', pos: p + 2, end: p + 4, space: true });
          trimNext = true;
          p += 4;
          break;
        }
        p++;
        space = true;
        continue;
      }
      if (src.startsWith('}}', p)) {
        if (parens > 0) throw lexError(src, p, 'unclosed left paren');
        out.push({ type: 'right', value: '}}', pos: p, end: p + 2, space });
        p += 2;
        break;
      }
      const tok = (type: TokenType, value: string, len: number): void => {
        out.push({ type, value, pos: p, end: p + len, space });
        p += len;
        space = false;
      };
      if (c === '|') tok('pipe', c, 1);
      else if (c === '(') {
        parens++;
        tok('lparen', c, 1);
      } else if (c === ')') {
        if (--parens < 0) throw lexError(src, p, `unexpected right paren`);
        tok('rparen', c, 1);
      } else if (c === ',') tok('comma', c, 1);
      else if (c === ':') {
        if (src[p + 1] !== '=') throw lexError(src, p, 'expected :=');
        tok('declare', ':=', 2);
      } else if (c === '=') tok('assign', c, 1);
      else if (c === '"') {
        let j = p + 1;
        while (j < src.length && src[j] !== '"' && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
        if (j >= src.length || src[j] !== '"') throw lexError(src, p, 'unterminated quoted string');
        tok('string', unquote(src, p, src.slice(p + 1, j), '"'), j + 1 - p);
      } else if (c === '`') {
        const j = src.indexOf('`', p + 1);
        if (j < 0) throw lexError(src, p, 'unterminated raw quoted string');
        tok('string', src.slice(p + 1, j).replace(/\r/g, ''), j + 1 - p);
      } else if (c === "'") {
        let j = p + 1;
        while (j < src.length && src[j] !== "'" && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
        if (j >= src.length || src[j] !== "'") throw lexError(src, p, 'unterminated character constant');
        const ch = unquote(src, p, src.slice(p + 1, j), "'");
        if ([...ch].length !== 1) throw lexError(src, p, `malformed character constant: ${src.slice(p, j + 1)}`);
        tok('number', String(ch.codePointAt(0)), j + 1 - p);
      } else if (c === '$') {
        const e = wordEnd(src, p + 1, true);
        tok('variable', src.slice(p, e), e - p);
      } else if (c === '.') {
        const e = wordEnd(src, p + 1, false);
        if (e > p + 1) tok('field', src.slice(p + 1, e), e - p);
        else if (/\d/.test(src[p + 1] ?? '')) {
          const n = NUMBER.exec(src.slice(p)) as RegExpExecArray;
          tok('number', n[0], n[0].length);
        } else tok('dot', '.', 1);
      } else if (/[\d+-]/.test(c)) {
        const n = NUMBER.exec(src.slice(p));
        if (!n) throw lexError(src, p, `bad number syntax: "${src.slice(p, p + 2)}"`);
        const next = src.charCodeAt(p + n[0].length);
        if (next < 0x80 ? wordChar(next, true) || next === 0x2e : /[\p{L}\d_.]/u.test(src[p + n[0].length] ?? ''))
          throw lexError(src, p, `bad number syntax: "${src.slice(p, p + n[0].length + 1)}"`);
        tok('number', n[0], n[0].length);
      } else if (c.charCodeAt(0) < 0x80 ? wordChar(c.charCodeAt(0), false) : /[\p{L}_]/u.test(c)) {
        const w = src.slice(p, wordEnd(src, p, false));
        if (KEYWORDS.has(w)) tok('keyword', w, w.length);
        else if (w === 'true' || w === 'false') tok('bool', w, w.length);
        else if (w === 'nil') tok('nil', w, w.length);
        else tok('identifier', w, w.length);
      } else {
        throw lexError(src, p, `unexpected ${JSON.stringify(c)} in command`);
      }
    }
    i = p;
    if (i >= src.length) {
      break;
    }
  }
  out.push({ type: 'eof', value: '', pos: src.length, end: src.length, space: false });
  return out;
}
