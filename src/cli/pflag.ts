/**
 * pflag's syntax (what Docker's CLI parses) on top of commander: `--flag=value`, `-f=value`,
 * boolean flags given a value (`--rm=true`, `--tty=false`, `-a=false`, `--sig-proxy=false` for
 * commander's `--no-sig-proxy`), stacked short flags (`-dit`, `-dp 80:80`, commander's own).
 *
 * `normalize` rewrites argv for commander and returns the boolean values commander cannot take
 * from argv (a flag set to false); main.ts applies them before the action runs. It walks the
 * command tree commander was given, so it knows which flags take a value (whose next word is
 * not a flag) and stops at the first argument of commands whose later words belong to the
 * container (`run IMAGE -it`, `exec C ls -l`). Unknown flags are left for commander to refuse.
 */
import type { Command, Option } from 'commander';
import { TsrunError } from '../errors.js';

export interface Normalized {
  argv: string[];
  /** Command → attribute → value, applied in a preAction hook. */
  overrides: Map<Command, Record<string, boolean>>;
  /** The leaf command's name (`container rm` → rm), for the exit code. */
  verb?: string;
}

function parseBool(flag: string, v: string): boolean {
  if (/^(1|t|T|true|TRUE|True)$/.test(v)) return true;
  if (/^(0|f|F|false|FALSE|False)$/.test(v)) return false;
  throw new TsrunError(
    'ERR_USAGE',
    `invalid argument "${v}" for "${flag}" flag: strconv.ParseBool: parsing "${JSON.stringify(v).slice(1, -1)}": invalid syntax`,
    {
      detail: { exitCode: 125, flagError: true },
    },
  );
}

const takesValue = (o: Option): boolean => o.required || o.optional;

function findCommand(cmd: Command, word: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

/** Rewrite one command's flags, from argv[i]; returns the index of the first word not handled. */
function rewrite(
  cmd: Command,
  argv: string[],
  i: number,
  out: string[],
  overrides: Record<string, boolean>,
  stopAtArg: boolean,
): number {
  const options = cmd.options as readonly Option[];
  const byLong = (name: string) => options.find((o) => o.long === name);
  const byShort = (name: string) => options.find((o) => o.short === name);
  for (; i < argv.length; i++) {
    const w = argv[i] as string;
    if (w === '--') {
      out.push(...argv.slice(i));
      return argv.length;
    }
    if (!w.startsWith('-') || w === '-') {
      if (stopAtArg) return i;
      out.push(w);
      continue;
    }
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    if (w.startsWith('--')) {
      let opt = byLong(name);
      let negated = false;
      if (!opt && eq >= 0) {
        opt = byLong(`--no-${name.slice(2)}`);
        negated = opt !== undefined;
      }
      if (opt && !takesValue(opt)) {
        if (eq < 0) {
          delete overrides[opt.attributeName()];
          out.push(w);
          continue;
        }
        const v = parseBool(name, w.slice(eq + 1)) !== negated;
        // `--no-x=true` means x is false; commander's negated option sets the attribute to false.
        const value = opt.negate ? !v : v;
        if (value === !opt.negate) {
          delete overrides[opt.attributeName()];
          out.push(opt.long as string);
        } else overrides[opt.attributeName()] = value;
        continue;
      }
      // pflag's optional value (NoOptDefVal) comes only after `=`: `--explain busybox` is no mode.
      // (commander marks `<a[:b]>` optional too, for its brackets: required wins.)
      if (opt && opt.optional && !opt.required && eq < 0) {
        out.push(`${w}=`);
        continue;
      }
      out.push(w);
      if (opt && takesValue(opt) && eq < 0 && opt.required && i + 1 < argv.length) out.push(argv[++i] as string);
      continue;
    }
    // Short flags: "-x", "-x=v", "-xyz" (booleans, the last may take a value), "-pVALUE".
    if (eq >= 0 && name.length === 2) {
      const opt = byShort(name);
      if (opt && !takesValue(opt)) {
        const v = parseBool(name, w.slice(eq + 1));
        if (v) {
          delete overrides[opt.attributeName()];
          out.push(name);
        } else overrides[opt.attributeName()] = false;
        continue;
      }
      if (opt) {
        out.push(name, w.slice(eq + 1));
        continue;
      }
    }
    out.push(w);
    // The value of the last flag in a stack that takes one is the next word.
    for (let j = 1; j < w.length; j++) {
      const opt = byShort(`-${w[j]}`);
      if (!opt) break;
      if (takesValue(opt)) {
        if (j === w.length - 1 && opt.required && i + 1 < argv.length) out.push(argv[++i] as string);
        break;
      }
      delete overrides[opt.attributeName()];
    }
  }
  return i;
}

export function normalize(program: Command, argv: string[]): Normalized {
  const overrides = new Map<Command, Record<string, boolean>>();
  const out: string[] = [];
  let cmd = program;
  let i = 0;
  for (;;) {
    const o: Record<string, boolean> = overrides.get(cmd) ?? {};
    overrides.set(cmd, o);
    // Options before the subcommand belong to this command (positional options).
    i = rewrite(cmd, argv, i, out, o, true);
    if (i >= argv.length) break;
    const word = argv[i] as string;
    const sub = findCommand(cmd, word);
    if (!sub) {
      // Arguments of a leaf command: flags may come after them unless the command passes them through.
      const passThrough = Boolean((cmd as unknown as { _passThroughOptions?: boolean })._passThroughOptions);
      if (passThrough) {
        out.push(...argv.slice(i));
        break;
      }
      out.push(word);
      i++;
      continue;
    }
    out.push(word);
    i++;
    cmd = sub;
  }
  return { argv: out, overrides, verb: cmd === program ? undefined : cmd.name() };
}
