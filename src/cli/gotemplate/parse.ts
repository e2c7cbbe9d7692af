/**
 * Parser for Go's text/template (go/src/text/template/parse/parse.go): actions, pipelines with
 * `|`, variable declarations (`$x := …`, `$x = …`, `range $i, $e := …`), `if` / `else if` /
 * `else`, `with` / `else with`, `range` with `break` / `continue`, `define` / `template` /
 * `block`, parenthesised pipelines and field chains (`(index .A 0).B`).
 *
 * Checks done at parse time, as Go does them: unknown functions, undefined variables, misplaced
 * `else`/`end`/`break`, non-executable pipeline stages. Nesting is bounded (deeply nested input
 * is refused, not a stack overflow).
 */
import { TemplateError } from './errors.js';
import { lex, lexError, type Token } from './lex.js';

export type Arg =
  | { t: 'field'; pos: number; idents: string[]; src: string }
  | { t: 'var'; pos: number; name: string; idents: string[]; src: string }
  | { t: 'dot'; pos: number; src: string }
  | { t: 'nil'; pos: number; src: string }
  | { t: 'bool'; pos: number; value: boolean; src: string }
  | { t: 'number'; pos: number; value: number; isInt: boolean; src: string }
  | { t: 'string'; pos: number; value: string; src: string }
  | { t: 'ident'; pos: number; name: string; src: string }
  | { t: 'pipe'; pos: number; pipe: Pipe; src: string }
  | { t: 'chain'; pos: number; node: Arg; idents: string[]; src: string };

export interface Command {
  pos: number;
  args: Arg[];
  src: string;
}
export interface Pipe {
  pos: number;
  decl: string[];
  assign: boolean;
  cmds: Command[];
  src: string;
}

export type Node =
  | { t: 'text'; text: string }
  | { t: 'action'; pos: number; pipe: Pipe; src: string }
  | Control
  | { t: 'break' | 'continue'; pos: number; src: string }
  | { t: 'template'; pos: number; name: string; pipe?: Pipe; src: string };

export interface Control {
  t: 'if' | 'with' | 'range';
  pos: number;
  pipe: Pipe;
  list: Node[];
  else?: Node[];
  src: string;
}

export interface Tree {
  source: string;
  root: Node[];
  defs: Map<string, Node[]>;
}

const MAX_DEPTH = 200;

function describe(tok: Token): string {
  if (tok.type === 'eof') return 'EOF';
  if (tok.type === 'right') return '"}}"';
  if (tok.type === 'field') return `<.${tok.value}>`;
  if (tok.type === 'keyword') return `<${tok.value}>`;
  if (tok.type === 'string') return JSON.stringify(tok.value);
  return `"${tok.value}"`;
}

class Parser {
  private k = 0;
  private vars: string[] = ['$'];
  private depth = 0;
  private rangeDepth = 0;
  readonly defs = new Map<string, Node[]>();

  constructor(
    private readonly src: string,
    private readonly toks: Token[],
    private readonly funcs: ReadonlySet<string>,
  ) {}

  private peek(): Token {
    return this.toks[this.k] as Token;
  }
  private next(): Token {
    return this.toks[this.k++] as Token;
  }
  private error(tok: Token, msg: string): TemplateError {
    return lexError(this.src, tok.pos, msg);
  }
  private unexpected(tok: Token, context: string): TemplateError {
    return this.error(tok, `unexpected ${describe(tok)} in ${context}`);
  }
  private text(from: number, to: number): string {
    return this.src.slice(from, to).trim();
  }

  private expect(type: Token['type'], context: string): Token {
    const t = this.next();
    if (t.type !== type) throw this.unexpected(t, context);
    return t;
  }

  private enter(tok: Token): void {
    if (++this.depth > MAX_DEPTH) throw this.error(tok, `template nested too deeply (more than ${MAX_DEPTH} levels)`);
  }

  /** Parse nodes until `{{end}}` / `{{else}}` (returned) or EOF. */
  parseList(top: boolean): { list: Node[]; stop: 'end' | 'else' | 'eof'; stopTok: Token } {
    const list: Node[] = [];
    for (;;) {
      const t = this.next();
      if (t.type === 'eof') return { list, stop: 'eof', stopTok: t };
      if (t.type === 'text') {
        list.push({ t: 'text', text: t.value });
        continue;
      }
      if (t.type !== 'left') throw this.unexpected(t, 'input');
      const kw = this.peek();
      if (kw.type === 'keyword') {
        if (kw.value === 'end' || kw.value === 'else') {
          if (top) throw this.error(kw, `unexpected {{${kw.value}}}`);
          this.next();
          if (kw.value === 'end') this.expect('right', 'end');
          return { list, stop: kw.value, stopTok: kw };
        }
        this.next();
        const node = this.keyword(kw, top);
        if (node) list.push(node);
        continue;
      }
      const pipe = this.pipeline('command', true);
      this.expect('right', 'command');
      list.push({ t: 'action', pos: pipe.pos, pipe, src: pipe.src });
    }
  }

  private keyword(kw: Token, top: boolean): Node | undefined {
    switch (kw.value) {
      case 'if':
      case 'with':
      case 'range':
        return this.control(kw);
      case 'break':
      case 'continue':
        if (this.rangeDepth === 0) throw this.error(kw, `{{${kw.value}}} outside {{range}}`);
        this.expect('right', kw.value);
        return { t: kw.value, pos: kw.pos, src: kw.value };
      case 'define': {
        if (!top) throw this.error(kw, 'unexpected <define> in command');
        const name = this.expect('string', 'define clause').value;
        this.expect('right', 'define clause');
        const saved = this.vars;
        this.vars = ['$'];
        const body = this.parseList(false);
        this.vars = saved;
        if (body.stop !== 'end')
          throw body.stop === 'else'
            ? this.error(body.stopTok, 'unexpected {{else}}')
            : this.error(body.stopTok, 'unexpected EOF');
        this.defs.set(name, body.list);
        return undefined;
      }
      case 'template':
      case 'block': {
        const name = this.expect('string', `${kw.value} clause`).value;
        let pipe: Pipe | undefined;
        if (this.peek().type !== 'right') pipe = this.pipeline(kw.value, false);
        this.expect('right', `${kw.value} clause`);
        if (kw.value === 'block') {
          if (!pipe) throw this.error(kw, 'missing pipeline in block clause');
          const saved = this.vars;
          this.vars = ['$'];
          const body = this.parseList(false);
          this.vars = saved;
          if (body.stop !== 'end')
            throw this.error(body.stopTok, body.stop === 'else' ? 'unexpected {{else}}' : 'unexpected EOF');
          this.defs.set(name, body.list);
        }
        return { t: 'template', pos: kw.pos, name, pipe, src: this.text(kw.pos, this.toks[this.k - 1]?.pos ?? kw.end) };
      }
      default:
        throw this.unexpected(kw, 'command');
    }
  }

  private control(kw: Token): Node {
    const t = kw.value as 'if' | 'with' | 'range';
    this.enter(kw);
    const mark = this.vars.length;
    const pipe = this.pipeline(t, true);
    if (pipe.decl.length > (t === 'range' ? 2 : 1)) throw this.error(kw, `too many declarations in ${t}`);
    this.expect('right', t);
    if (t === 'range') this.rangeDepth++;
    const body = this.parseList(false);
    if (t === 'range') this.rangeDepth--;
    let elseList: Node[] | undefined;
    if (body.stop === 'eof') throw this.error(body.stopTok, 'unexpected EOF');
    if (body.stop === 'else') {
      const nxt = this.peek();
      if ((t === 'if' || t === 'with') && nxt.type === 'keyword' && nxt.value === t) {
        // {{else if …}} / {{else with …}}: a nested control that shares our {{end}}.
        this.next();
        elseList = [this.control(nxt)];
      } else {
        this.expect('right', 'else');
        const rest = this.parseList(false);
        if (rest.stop !== 'end')
          throw this.error(rest.stopTok, rest.stop === 'else' ? 'expected end; found {{else}}' : 'unexpected EOF');
        elseList = rest.list;
      }
    }
    this.vars.length = mark;
    this.depth--;
    return { t, pos: kw.pos, pipe, list: body.list, else: elseList, src: `${t} ${pipe.src}` };
  }

  private pipeline(context: string, allowDecl: boolean): Pipe {
    const start = this.peek();
    const decl: string[] = [];
    let assign = false;
    if (allowDecl && start.type === 'variable') {
      const a = this.toks[this.k + 1] as Token;
      const b = this.toks[this.k + 2] as Token;
      const c = this.toks[this.k + 3] as Token;
      if (a.type === 'declare' || a.type === 'assign') {
        this.k += 2;
        decl.push(start.value);
        assign = a.type === 'assign';
      } else if (
        context === 'range' &&
        a.type === 'comma' &&
        b.type === 'variable' &&
        (c.type === 'declare' || c.type === 'assign')
      ) {
        this.k += 4;
        decl.push(start.value, b.value);
        assign = c.type === 'assign';
      }
      if (assign)
        for (const v of decl) if (!this.vars.includes(v)) throw this.error(start, `undefined variable "${v}"`);
    }
    const cmds: Command[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === 'right' || t.type === 'rparen' || t.type === 'eof') break;
      cmds.push(this.command());
      const sep = this.peek();
      if (sep.type === 'pipe') {
        this.next();
        if (this.peek().type === 'right' || this.peek().type === 'rparen')
          throw this.error(sep, 'missing command after |');
        continue;
      }
      if (sep.type !== 'right' && sep.type !== 'rparen') throw this.unexpected(sep, 'operand');
    }
    if (cmds.length === 0) throw this.error(start, `missing value for ${context}`);
    // Declared after the pipeline is parsed: `{{$x := $x}}` refers to an outer $x.
    if (!assign) this.vars.push(...decl);
    cmds.slice(1).forEach((c, i) => {
      const first = c.args[0] as Arg;
      if (['bool', 'dot', 'nil', 'number', 'pipe', 'string'].includes(first.t)) {
        throw this.error(this.toks[this.k] as Token, `non executable command in pipeline stage ${i + 2}`);
      }
    });
    const end = (this.toks[this.k] as Token).pos;
    return { pos: start.pos, decl, assign, cmds, src: this.text(start.pos, end) };
  }

  private command(): Command {
    const start = this.peek();
    const args: Arg[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === 'pipe' || t.type === 'right' || t.type === 'rparen' || t.type === 'eof') break;
      if (args.length > 0 && !t.space) throw this.unexpected(t, 'operand');
      args.push(this.operand());
    }
    if (args.length === 0) throw this.error(start, 'missing value for command');
    return { pos: start.pos, args, src: this.text(start.pos, this.peek().pos) };
  }

  private operand(): Arg {
    const t = this.next();
    let node: Arg;
    switch (t.type) {
      case 'field':
        node = { t: 'field', pos: t.pos, idents: [t.value], src: '' };
        break;
      case 'variable':
        if (!this.vars.includes(t.value)) throw this.error(t, `undefined variable "${t.value}"`);
        node = { t: 'var', pos: t.pos, name: t.value, idents: [], src: '' };
        break;
      case 'dot':
        node = { t: 'dot', pos: t.pos, src: '' };
        break;
      case 'nil':
        node = { t: 'nil', pos: t.pos, src: '' };
        break;
      case 'bool':
        node = { t: 'bool', pos: t.pos, value: t.value === 'true', src: '' };
        break;
      case 'string':
        node = { t: 'string', pos: t.pos, value: t.value, src: '' };
        break;
      case 'number':
        node = this.number(t);
        break;
      case 'identifier':
        if (!this.funcs.has(t.value)) throw this.error(t, `function "${t.value}" not defined`);
        node = { t: 'ident', pos: t.pos, name: t.value, src: '' };
        break;
      case 'lparen': {
        this.enter(t);
        const pipe = this.pipeline('parenthesized pipeline', false);
        this.expect('rparen', 'parenthesized pipeline');
        this.depth--;
        node = { t: 'pipe', pos: t.pos, pipe, src: '' };
        break;
      }
      default:
        throw this.unexpected(t, 'operand');
    }
    const idents: string[] = [];
    while (this.peek().type === 'field' && !this.peek().space) idents.push(this.next().value);
    if (idents.length > 0) {
      if (node.t === 'field' || node.t === 'var') node.idents.push(...idents);
      else if (node.t === 'pipe') node = { t: 'chain', pos: t.pos, node, idents, src: '' };
      else throw this.error(t, `unexpected . after term ${JSON.stringify(this.text(t.pos, t.end))}`);
    }
    node.src = this.text(t.pos, (this.toks[this.k - 1] as Token).end);
    return node;
  }

  private number(t: Token): Arg {
    const text = t.value.replace(/_/g, '');
    let value: number;
    let isInt = true;
    const sign = text.startsWith('-') ? -1 : 1;
    const body = text.replace(/^[+-]/, '');
    if (/^0[xX]/.test(body)) value = parseInt(body.slice(2), 16);
    else if (/^0[bB]/.test(body)) value = parseInt(body.slice(2), 2);
    else if (/^0[oO]/.test(body)) value = parseInt(body.slice(2), 8);
    else if (/^0\d+$/.test(body)) value = parseInt(body, 8);
    else {
      value = Number(body);
      isInt = /^\d+$/.test(body) || (Number.isInteger(value) && !/[.]/.test(body) && Math.abs(value) < 2 ** 63);
    }
    if (Number.isNaN(value)) throw this.error(t, `illegal number syntax: "${t.value}"`);
    return { t: 'number', pos: t.pos, value: sign * value, isInt, src: '' };
  }
}

export function parse(source: string, funcs: ReadonlySet<string>): Tree {
  const p = new Parser(source, lex(source), funcs);
  const { list } = p.parseList(true);
  return { source, root: list, defs: p.defs };
}
