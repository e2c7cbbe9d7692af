/**
 * Which tsrun command an argv names, and whether it asks tsrun itself for help or its version,
 * read from the same commander definitions that later parse it, without running anything.
 *
 * The rootless door (src/rootless/enter.ts) needs this before the real parse: help and version
 * stay outside the user namespace. Only tsrun's own options count: parsing stops where commander
 * stops, at `--` and, for commands with passThroughOptions (run, create, exec), at the first
 * operand, so `run node node --version` or `exec c httpd -h /www` is a container's command, not
 * a request for help; an option's value (`-e --help`, `--name -h`) is skipped as commander
 * would consume it; `run -h NAME` is run's --hostname, which takes the short flag from help.
 */
import type { Command, Option } from 'commander';

export interface CommandPlan {
  /** Command names from the top, e.g. ['container', 'run'] or ['system', 'info']; [] for none. */
  path: string[];
  /** tsrun's own --help/-h or --version/-v was given (tsrun prints and exits). */
  help: boolean;
}

/** Commander's fields that have no public getter (commander 14). */
interface CommandInternals {
  _passThroughOptions?: boolean;
  _getHelpOption?: () => Option | null;
  _version?: string;
  _versionOptionName?: string;
}

function findOption(cmd: Command, flag: string): Option | undefined {
  return cmd.options.find((o) => o.short === flag || o.long === flag);
}

function subcommand(cmd: Command, name: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

/** The option that prints tsrun's version (program.version()), when `cmd` has one. */
function isVersion(cmd: Command, opt: Option): boolean {
  const c = cmd as unknown as CommandInternals;
  return c._version !== undefined && opt.attributeName() === (c._versionOptionName ?? 'version');
}

/** Commander's built-in help option (not in cmd.options; a command's own -h wins over it). */
function isHelp(cmd: Command, arg: string): boolean {
  const h = (cmd as unknown as CommandInternals)._getHelpOption?.();
  return Boolean(h && (h.short === arg || h.long === arg));
}

export function commandPlan(program: Command, argv: readonly string[]): CommandPlan {
  const path: string[] = [];
  let cmd = program;
  let args = [...argv];
  let help = false;
  for (;;) {
    let next: { cmd: Command; rest: string[] } | undefined;
    let operands = 0;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string;
      if (a === '--') break;
      if (a.length > 1 && a.startsWith('-')) {
        const opt = findOption(cmd, a);
        if (opt) {
          if (isVersion(cmd, opt)) help = true;
          else if (opt.required || (opt.optional && i + 1 < args.length && !(args[i + 1] as string).startsWith('-')))
            i++;
          continue;
        }
        if (a[1] !== '-') {
          // A cluster of short flags (-it, -dp8080:80): flags until one that takes the rest as its value.
          let known = true;
          for (let k = 1; k < a.length; k++) {
            const o = findOption(cmd, `-${a[k]}`);
            if (!o) {
              known = k > 1;
              break;
            }
            if (o.required || o.optional) break;
          }
          if (known && a.length > 2) continue;
        } else if (a.includes('=') && findOption(cmd, a.slice(0, a.indexOf('=')))) {
          continue;
        }
        if (isHelp(cmd, a)) help = true;
        continue;
      }
      if (operands === 0 && cmd.commands.length > 0) {
        const sub = subcommand(cmd, a);
        if (sub) next = { cmd: sub, rest: args.slice(i + 1) };
        else if (a === 'help') {
          path.push('help');
          help = true;
        }
        break;
      }
      operands++;
      if ((cmd as unknown as CommandInternals)._passThroughOptions) break;
    }
    if (!next) return { path, help };
    path.push(next.cmd.name());
    cmd = next.cmd;
    args = next.rest;
  }
}
