/**
 * Executes a parsed template (go/src/text/template/exec.go): dot and `$`, variables with Go's
 * scoping (a variable lives until the `end` of the control that declared it), field chains on
 * maps and GoStructs, method calls with arguments (`{{.Label "k"}}`), pipelines passing their
 * value as the last argument, `if`/`with`/`range` truth as Go defines it, lazy `and`/`or`.
 *
 * Contract: pure; every failure is a TemplateError worded as Go words it ("template: :1:2:
 * executing \"\" at <.Foo>: can't evaluate field Foo in type …"), carrying the output written
 * before it. Output and work are bounded (a template cannot loop or grow without limit).
 */
import { TemplateError } from './errors.js';
import { FUNCS, FuncError, type Func } from './funcs.js';
import { parse, type Arg, type Command, type Control, type Node, type Pipe, type Tree } from './parse.js';
import { GoStruct, goString, isMap, truth, typeName } from './value.js';

const MAX_OUTPUT = 32 * 1024 * 1024;
const MAX_STEPS = 5_000_000;
const MAX_CALL_DEPTH = 1000;

class Break {}
class Continue {}
const NONE = Symbol('none');

interface Located {
  pos: number;
  src: string;
}

class State {
  private vars: { name: string; value: unknown }[] = [];
  private out: string[] = [];
  private size = 0;
  private steps = 0;
  private depth = 0;

  constructor(
    private readonly tree: Tree,
    private readonly funcs: Record<string, Func>,
    root: unknown,
  ) {
    this.vars.push({ name: '$', value: root });
  }

  result(): string {
    return this.out.join('');
  }

  fail(at: Located, msg: string): TemplateError {
    const before = this.tree.source.slice(0, at.pos);
    const nl = before.lastIndexOf('\n');
    const line = before.split('\n').length;
    const col = nl < 0 ? at.pos : at.pos - nl - 1;
    const ctx = at.src.length > 20 ? `${at.src.slice(0, 20)}...` : at.src;
    const e = new TemplateError('exec', `template: :${line}:${col}: executing "" at <${ctx}>: ${msg}`);
    e.partial = this.result();
    return e;
  }

  private emit(at: Located, s: string): void {
    this.size += s.length;
    if (this.size > MAX_OUTPUT) throw this.fail(at, `output exceeds ${MAX_OUTPUT} bytes`);
    this.out.push(s);
  }

  private tick(at: Located): void {
    if (++this.steps > MAX_STEPS) throw this.fail(at, `template takes more than ${MAX_STEPS} steps`);
  }

  walk(dot: unknown, list: Node[]): void {
    for (const node of list) {
      if (node.t === 'text') {
        this.emit({ pos: 0, src: '' }, node.text);
        continue;
      }
      this.tick(node);
      switch (node.t) {
        case 'action': {
          const v = this.pipeline(dot, node.pipe);
          if (node.pipe.decl.length === 0) this.emit(node, goString(v));
          break;
        }
        case 'if':
        case 'with': {
          const mark = this.vars.length;
          const v = this.pipeline(dot, node.pipe);
          if (truth(v)) this.walk(node.t === 'with' ? v : dot, node.list);
          else if (node.else) this.walk(dot, node.else);
          this.vars.length = mark;
          break;
        }
        case 'range':
          this.range(dot, node);
          break;
        case 'break':
          throw new Break();
        case 'continue':
          throw new Continue();
        case 'template': {
          const body = this.tree.defs.get(node.name);
          if (!body) throw this.fail(node, `template: no template "${node.name}" associated with template ""`);
          if (++this.depth > MAX_CALL_DEPTH)
            throw this.fail(node, `exceeded maximum template depth (${MAX_CALL_DEPTH})`);
          const newDot = node.pipe ? this.pipeline(dot, node.pipe) : undefined;
          const saved = this.vars;
          this.vars = [{ name: '$', value: newDot }];
          try {
            this.walk(newDot, body);
          } finally {
            this.vars = saved;
            this.depth--;
          }
          break;
        }
      }
    }
  }

  private range(dot: unknown, node: Control): void {
    const mark = this.vars.length;
    const v = this.pipeline(dot, node.pipe);
    let items: [unknown, unknown][];
    if (Array.isArray(v)) items = v.map((e, i) => [i, e]);
    else if (isMap(v))
      items = Object.keys(v)
        .sort()
        .map((k) => [k, v[k]]);
    else if (typeof v === 'number' && Number.isInteger(v)) {
      if (node.pipe.decl.length > 1) throw this.fail(node, `can't use ${v} to iterate over more than one variable`);
      if (v > MAX_STEPS) throw this.fail(node, `template takes more than ${MAX_STEPS} steps`);
      items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
    } else if (v === null || v === undefined) items = [];
    else throw this.fail(node, `range can't iterate over ${goString(v)}`);
    const decl = node.pipe.decl;
    const inner = this.vars.length;
    for (const [key, elem] of items) {
      this.tick(node);
      if (decl.length > 0) this.setVar(node, decl[decl.length - 1] as string, elem, node.pipe.assign);
      if (decl.length > 1) this.setVar(node, decl[0] as string, key, node.pipe.assign);
      try {
        this.walk(elem, node.list);
      } catch (e) {
        if (e instanceof Break) break;
        if (!(e instanceof Continue)) throw e;
      } finally {
        this.vars.length = inner;
      }
    }
    if (items.length === 0 && node.else) this.walk(dot, node.else);
    this.vars.length = mark;
  }

  private setVar(at: Located, name: string, value: unknown, assign: boolean): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const slot = this.vars[i] as { name: string; value: unknown };
      if (slot.name === name) {
        slot.value = value;
        return;
      }
    }
    if (assign) throw this.fail(at, `undefined variable: ${name}`);
    this.vars.push({ name, value });
  }

  private varValue(at: Located, name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const slot = this.vars[i] as { name: string; value: unknown };
      if (slot.name === name) return slot.value;
    }
    throw this.fail(at, `undefined variable: ${name}`);
  }

  private pipeline(dot: unknown, pipe: Pipe): unknown {
    let value: unknown = NONE;
    for (const cmd of pipe.cmds) value = this.command(dot, cmd, value);
    for (const name of pipe.decl) {
      if (pipe.assign) this.setVar(pipe, name, value, true);
      else this.vars.push({ name, value });
    }
    return value;
  }

  private notAFunction(cmd: Command, final: unknown): void {
    if (cmd.args.length > 1 || final !== NONE)
      throw this.fail(cmd, `can't give argument to non-function ${cmd.args[0]?.src ?? ''}`);
  }

  private command(dot: unknown, cmd: Command, final: unknown): unknown {
    this.tick(cmd);
    const first = cmd.args[0] as Arg;
    switch (first.t) {
      case 'field':
        return this.chain(dot, dot, first, first.idents, cmd.args, final);
      case 'chain':
        return this.chain(dot, this.arg(dot, first.node), first, first.idents, cmd.args, final);
      case 'var': {
        const v = this.varValue(first, first.name);
        if (first.idents.length === 0) {
          this.notAFunction(cmd, final);
          return v;
        }
        return this.chain(dot, v, first, first.idents, cmd.args, final);
      }
      case 'ident':
        return this.call(dot, first.name, cmd, cmd.args, final);
      case 'pipe':
        this.notAFunction(cmd, final);
        return this.pipeline(dot, first.pipe);
      case 'nil':
        throw this.fail(first, 'nil is not a command');
      default:
        this.notAFunction(cmd, final);
        return this.arg(dot, first);
    }
  }

  private arg(dot: unknown, a: Arg): unknown {
    switch (a.t) {
      case 'dot':
        return dot;
      case 'nil':
        return null;
      case 'bool':
      case 'number':
      case 'string':
        return a.value;
      case 'field':
        return this.chain(dot, dot, a, a.idents, [a], NONE);
      case 'var': {
        const v = this.varValue(a, a.name);
        return a.idents.length === 0 ? v : this.chain(dot, v, a, a.idents, [a], NONE);
      }
      case 'pipe':
        return this.pipeline(dot, a.pipe);
      case 'chain':
        return this.chain(dot, this.arg(dot, a.node), a, a.idents, [a], NONE);
      case 'ident':
        return this.call(dot, a.name, a, [a], NONE);
    }
  }

  private chain(dot: unknown, receiver: unknown, at: Located, idents: string[], args: Arg[], final: unknown): unknown {
    let v = receiver;
    idents.forEach((name, i) => {
      const last = i === idents.length - 1;
      v = this.field(dot, name, at, last ? args : [], last ? final : NONE, v);
    });
    return v;
  }

  private field(dot: unknown, name: string, at: Located, args: Arg[], final: unknown, receiver: unknown): unknown {
    const hasArgs = args.length > 1 || final !== NONE;
    if (receiver instanceof GoStruct) {
      const m = receiver.spec.methods?.[name];
      if (m) {
        const argv = args.slice(1).map((a) => this.arg(dot, a));
        if (final !== NONE) argv.push(final);
        if (argv.length !== m.params.length)
          throw this.fail(at, `wrong number of args for ${name}: want ${m.params.length} got ${argv.length}`);
        argv.forEach((v, i) => {
          const want = m.params[i];
          if (want === 'string' ? typeof v !== 'string' : typeof v !== 'number' || !Number.isInteger(v)) {
            throw this.fail(at, `wrong type for value; expected ${want}; got ${typeName(v)}`);
          }
        });
        return m.fn(...argv);
      }
      if (receiver.has(name)) {
        if (hasArgs) throw this.fail(at, `${name} has arguments but cannot be invoked as function`);
        return receiver.field(name);
      }
      if (receiver.spec.lenient) return '';
      throw this.fail(
        at,
        receiver.spec.missing?.(name) ?? `can't evaluate field ${name} in type ${receiver.spec.type}`,
      );
    }
    if (isMap(receiver)) {
      if (hasArgs) throw this.fail(at, `${name} is not a method but has arguments`);
      return Object.prototype.hasOwnProperty.call(receiver, name) ? receiver[name] : '';
    }
    if (receiver === null || receiver === undefined) throw this.fail(at, `nil pointer evaluating interface {}.${name}`);
    throw this.fail(at, `can't evaluate field ${name} in type ${typeName(receiver)}`);
  }

  private call(dot: unknown, name: string, at: Located, args: Arg[], final: unknown): unknown {
    const fn = this.funcs[name];
    if (!fn) throw this.fail(at, `"${name}" is not a defined function`);
    const rest = args.slice(1);
    if (name === 'and' || name === 'or') {
      if (rest.length === 0 && final === NONE)
        throw this.fail(at, `wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown;
      for (const a of rest) {
        v = this.arg(dot, a);
        if (truth(v) === (name === 'or')) return v;
      }
      return final !== NONE ? final : v;
    }
    const argv = rest.map((a) => this.arg(dot, a));
    if (final !== NONE) argv.push(final);
    try {
      return fn(argv);
    } catch (e) {
      if (e instanceof FuncError) throw this.fail(at, e.bare ? e.message : `error calling ${name}: ${e.message}`);
      throw e;
    }
  }
}

/** A parsed template; parse once, execute on each row. */
export class Template {
  private constructor(private readonly tree: Tree) {}

  /** Parse `source`; functions known at parse time are FUNCS' names (as Go's Funcs(...).Parse). */
  static parse(source: string, funcNames: Iterable<string> = Object.keys(FUNCS)): Template {
    return new Template(parse(source, new Set(funcNames)));
  }

  execute(data: unknown, funcs: Record<string, Func> = FUNCS): string {
    const s = new State(this.tree, funcs, data);
    try {
      s.walk(data, this.tree.root);
    } catch (e) {
      if (e instanceof Break || e instanceof Continue) return s.result();
      if (e instanceof RangeError) {
        const err = s.fail({ pos: 0, src: '' }, 'template too deeply nested');
        throw err;
      }
      throw e;
    }
    return s.result();
  }
}
