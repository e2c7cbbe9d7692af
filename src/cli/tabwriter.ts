/**
 * Docker's table alignment: a port of the column-block algorithm of docker/cli's
 * cli/command/formatter/tabwriter (Go's text/tabwriter), as Docker calls it:
 * NewWriter(out, minwidth 10, tabwidth 1, padding 3, ' ', 0).
 *
 * A cell is text ended by a tab; the text after a line's last tab is not part of any column.
 * A column's width is the widest cell of the consecutive lines that have that column, plus the
 * padding, and at least minwidth. Contract: pure.
 */

const WIDE =
  /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|[\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;

/** Display width of a string (runewidth.StringWidth, simplified: East Asian wide runes are 2). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += WIDE.test(ch) ? 2 : 1;
  return w;
}

export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const raw = text.split('\n');
  const trailing = raw.pop() as string; // text after the last newline (usually "")
  const lines = raw.map((l) => l.split('\t'));
  if (trailing !== '') lines.push(trailing.split('\t'));
  const widths: number[] = [];
  const out: string[] = [];

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const line = lines[i] as string[];
      let s = '';
      line.forEach((cell, j) => {
        s += cell;
        if (j < widths.length) s += ' '.repeat(Math.max(0, (widths[j] as number) - displayWidth(cell)));
      });
      out.push(i === lines.length - 1 && trailing !== '' ? s : `${s}\n`);
    }
  };

  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let cur = line0; cur < line1; cur++) {
      if (column >= (lines[cur] as string[]).length - 1) continue;
      writeLines(line0, cur);
      line0 = cur;
      let width = minwidth;
      for (; cur < line1; cur++) {
        const line = lines[cur] as string[];
        if (column >= line.length - 1) break;
        width = Math.max(width, displayWidth(line[column] as string) + padding);
      }
      widths.push(width);
      format(line0, cur);
      widths.pop();
      line0 = cur;
      cur--; // the for loop's increment: continue from the line that ended the block
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out.join('');
}
