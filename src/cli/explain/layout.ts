/**
 * `--explain`'s text layout: a stage as lines that fit 100 columns, colour only when asked.
 *
 *     [4/8] Network  bridge tsrun0: 10.88.0.7/16 in netns tsrun-0f3c…, port 8080 → 80/tcp
 *           netns    /run/netns/tsrun-0f3c…
 *           why      a network namespace is an empty network stack of its own; …
 *           look     ip netns exec tsrun-0f3c… ip addr
 *           by hand  ip netns add tsrun-0f3c…
 *
 * Prose wraps at spaces, under its label. Shell commands wrap at spaces with ` \` (and two more
 * spaces of indent); a single word longer than a line (a long path) is cut with a `\` at the end
 * of the line and goes on at column 0, so the text still pastes into a shell as one word (a
 * backslash-newline is removed by sh, also inside double quotes).
 */

export const WIDTH = 100;
const INDENT = 6;
const LABEL = 9;
const TEXT_COL = INDENT + LABEL;

export type LineKind = 'text' | 'why' | 'look' | 'hand' | 'shell' | 'raw';

export interface Line {
  kind: LineKind;
  /** The label column (`why`, `look`, `by hand`, `layer`, …); '' continues the previous label. */
  label: string;
  text: string;
}

export interface StageText {
  summary: string;
  lines: Line[];
}

export const detail = (label: string, text: string): Line => ({ kind: 'text', label, text });
export const why = (text: string): Line => ({ kind: 'why', label: 'why', text });
export const look = (text: string): Line => ({ kind: 'look', label: 'look', text });
export const looks = (cmds: string[]): Line[] =>
  cmds.map((text, i) => ({ kind: 'look', label: i === 0 ? 'look' : '', text }));
export const hand = (cmds: string[]): Line[] =>
  cmds.map((text, i) => ({ kind: 'hand', label: i === 0 ? 'by hand' : '', text }));
/** Data (JSON, argv) shown in full mode: kept as it is, cut to the width. */
export const raw = (label: string, text: string): Line => ({ kind: 'raw', label, text });

const COLORS = {
  head: '\x1b[1m',
  why: '\x1b[2m',
  look: '\x1b[36m',
  hand: '\x1b[33m',
  label: '\x1b[2m',
  off: '\x1b[0m',
};

/** Where to cut a word too long for `room` columns: after its last '/' that fits, else at `room`. */
function cutAt(word: string, room: number): number {
  const slash = word.lastIndexOf('/', room - 1);
  return slash > 0 ? slash + 1 : room;
}

/** Words of prose, wrapped at `width` with `first` then `rest` as the line starts. */
function wrapWords(text: string, first: string, rest: string, width = WIDTH): string[] {
  const out: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(' ')) {
    if (!empty && line.length + 1 + word.length > width) {
      out.push(line);
      line = rest;
      empty = true;
    }
    let w = word;
    if (!empty) line += ' ';
    // A path longer than a line: cut after a '/', the rest on the next line.
    while (line.length + w.length > width) {
      const at = cutAt(w, width - line.length);
      out.push(line + w.slice(0, at));
      w = w.slice(at);
      line = rest;
    }
    line += w;
    empty = false;
  }
  out.push(line);
  return out;
}

/** Split at spaces outside quotes (a quoted argument is never wrapped inside). */
function shellWords(cmd: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of cmd) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === ' ') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

/** A shell command wrapped with ` \` continuations; over-long words cut with `\` to column 0. */
export function wrapShell(cmd: string, first: string, rest: string, width = WIDTH): string[] {
  // A comment is never continued (a backslash there would end it): it goes on a line of its own.
  const hash = cmd.indexOf('   # ');
  if (hash > 0 && first.length + cmd.length > width) {
    return [...wrapShell(cmd.slice(0, hash), first, rest, width), `${rest}${cmd.slice(hash + 3)}`];
  }
  const out: string[] = [];
  let line = first;
  let empty = true;
  const words = shellWords(cmd);
  for (const [i, word] of words.entries()) {
    const tail = i < words.length - 1 ? 2 : 0;
    if (!empty && line.length + 1 + word.length + tail > width) {
      out.push(`${line} \\`);
      line = rest;
      empty = true;
    }
    let w = word;
    if (!empty) line += ' ';
    // One word too long for any line: cut it, the rest at column 0 (still one word to sh); a
    // word with more after it leaves room for the ` \` that continues its line.
    while (line.length + w.length + tail > width) {
      const room = Math.max(1, width - 1 - line.length);
      const at = cutAt(w, room);
      out.push(`${line}${w.slice(0, at)}\\`);
      w = w.slice(at);
      line = '';
    }
    line += w;
    empty = false;
  }
  out.push(line);
  return out;
}

/** Data cut into lines of the width (continuations under the text column). */
function cutRaw(text: string, first: string, rest: string, width = WIDTH): string[] {
  const out: string[] = [];
  for (const [i, part] of text.split('\n').entries()) {
    let line = (i === 0 ? first : rest) + part;
    while (line.length > width) {
      out.push(line.slice(0, width));
      line = rest + line.slice(width);
    }
    out.push(line);
  }
  return out;
}

/** The stage's header and its lines, each at most WIDTH columns (colour codes not counted). */
export function layoutStage(head: string, t: StageText, color: boolean): string[] {
  const c = (k: keyof typeof COLORS, s: string) => (color ? `${COLORS[k]}${s}${COLORS.off}` : s);
  const out = wrapWords(`${head}  ${t.summary}`, '', ' '.repeat(TEXT_COL)).map((l, i) =>
    i === 0 ? c('head', l.trimEnd()) : l,
  );
  for (const l of t.lines) {
    const lead = ' '.repeat(INDENT) + l.label.padEnd(LABEL - 1) + ' ';
    const first = l.label.length >= LABEL ? `${' '.repeat(INDENT)}${l.label} ` : lead;
    const rest = ' '.repeat(TEXT_COL);
    let lines: string[];
    if (l.kind === 'look' || l.kind === 'hand' || l.kind === 'shell') lines = wrapShell(l.text, first, `${rest}  `);
    else if (l.kind === 'raw') lines = cutRaw(l.text, first, rest);
    else lines = wrapWords(l.text, first, rest);
    for (const s of lines) {
      if (!color) out.push(s);
      else if (s.startsWith(first) && l.label) {
        const k = l.kind === 'why' ? 'why' : l.kind === 'look' ? 'look' : l.kind === 'hand' ? 'hand' : undefined;
        const body = s.slice(first.length);
        out.push(c('label', first) + (k ? c(k, body) : body));
      } else {
        const k = l.kind === 'why' ? 'why' : l.kind === 'look' ? 'look' : l.kind === 'hand' ? 'hand' : undefined;
        out.push(k ? c(k, s) : s);
      }
    }
  }
  return out;
}

/** One line of prose at the detail column (a warning, an event told out of its stage). */
export function layoutNote(label: string, text: string): string[] {
  const first = ' '.repeat(INDENT) + label.padEnd(LABEL - 1) + ' ';
  return wrapWords(text, first, ' '.repeat(TEXT_COL));
}

/** Quote a word for sh when it needs it. */
export function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export const shJoin = (argv: readonly string[]): string => argv.map(sh).join(' ');

/** `sha256:0123…` cut to 12 hex digits (brief mentions of an id already shown in full). */
export const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}
