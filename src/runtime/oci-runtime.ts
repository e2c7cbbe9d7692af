/**
 * The boundary to the OCI runtime (runc, or crun with `--runtime crun`): the runtime-spec
 * "Operations" (runtime.md: create, start, kill, delete, state) as runc's command line spells
 * them. `create` itself is run by the monitor (monitor.ts), which must be the runtime's parent.
 *
 * Contract: every call execs the runtime with our store's `--root`, so two stores never see each
 * other's containers; the runtime gets no file descriptor beyond stdio (Node opens everything
 * close-on-exec); failures become TsrunError('ERR_RUNTIME') carrying the runtime's own message.
 * `locate` checks the runtime's version once per binary (cached by path, size and mtime).
 */
import { existsSync, promises as fs } from 'node:fs';
import { quickFs } from '../util/fs-quick.js';
import path from 'node:path';
import { TsrunError } from '../errors.js';
import { silentReporter, type Reporter } from '../events.js';
import { runProgram as run, which } from '../util/exec.js';

export interface RuntimeInfo {
  name: string;
  path: string;
  version: string;
}

const KNOWN: Record<string, { min: [number, number]; re: RegExp }> = {
  runc: { min: [1, 0], re: /runc version (\d+)\.(\d+)\.(\d+)\S*/ },
  crun: { min: [0, 17], re: /crun version (\d+)\.(\d+)(?:\.(\d+))?\S*/ },
};

/** The runtime binary for `name` ("runc", "crun" or a path), with its version checked. */
export async function locateRuntime(name: string, env: NodeJS.ProcessEnv, cacheDir: string): Promise<RuntimeInfo> {
  const file = await which(name, env);
  const base = path.basename(name);
  if (!file) {
    throw new TsrunError('ERR_RUNTIME', `finding the OCI runtime "${name}": not found in PATH`, {
      hint: base === 'crun' ? 'install it: apt-get install crun' : 'install it: apt-get install runc',
    });
  }
  const st = await quickFs.stat(file);
  const cacheFile = path.join(cacheDir, `runtime-${base}.json`);
  const key = `${file}:${st.size}:${st.mtimeMs}`;
  const cached = await quickFs
    .readFile(cacheFile, 'utf8')
    .then((t) => JSON.parse(t) as RuntimeInfo & { key: string })
    .catch(() => undefined);
  if (cached?.key === key) return { name: cached.name, path: cached.path, version: cached.version };

  const r = await run(file, ['--version']);
  const known = KNOWN[base];
  const m = known?.re.exec(r.stdout);
  if (r.code !== 0 || (known && !m)) {
    throw new TsrunError(
      'ERR_RUNTIME',
      `checking the OCI runtime ${file}: \`${base} --version\` failed: ${(r.stderr || r.stdout).trim()}`,
    );
  }
  if (known && m) {
    const [maj, min] = [Number(m[1]), Number(m[2])];
    if (maj < known.min[0] || (maj === known.min[0] && min < known.min[1])) {
      throw new TsrunError(
        'ERR_RUNTIME',
        `the OCI runtime ${file} is ${m[0]}, older than ${base} ${known.min.join('.')}`,
        {
          hint: `upgrade ${base}`,
        },
      );
    }
  }
  const info: RuntimeInfo = { name: base, path: file, version: m ? m[0] : (r.stdout.split('\n')[0] ?? '') };
  await quickFs.mkdir(cacheDir, { recursive: true, mode: 0o700 });
  await quickFs.writeFile(cacheFile, JSON.stringify({ ...info, key }));
  return info;
}

/**
 * Has the runtime state for container `id` under `root`? runc and crun both keep a directory
 * `<root>/<id>` from create to delete: without it, `delete` has nothing to do.
 */
export function runtimeKnows(root: string, id: string): boolean {
  return existsSync(path.join(root, id));
}

/** The last error a runtime wrote to its `--log FILE --log-format json` log ('' if none). */
export async function lastLogError(logFile: string): Promise<string> {
  const log = await fs.readFile(logFile, 'utf8').catch(() => '');
  for (const l of log.trim().split('\n').reverse()) {
    try {
      const e = JSON.parse(l) as { level?: string; msg?: string };
      if (e.level === 'error' && e.msg) return e.msg;
    } catch {
      /* not JSON */
    }
  }
  return '';
}

/** An argv as events may show it: the values of `--env K=V` (exec's -e) hidden. */
export function shownArgv(argv: readonly string[]): string[] {
  return argv.map((a, i) => (argv[i - 1] === '--env' ? `${a.split('=')[0]}=<hidden>` : a));
}

export class OciRuntime {
  constructor(
    readonly info: RuntimeInfo,
    readonly root: string,
    private readonly reporter: Reporter = silentReporter,
  ) {}

  /** Run the runtime with `args`, telling the reporter its argv and exit status. */
  private async exec(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await run(this.info.path, args);
    this.reporter.emit({ type: 'runtime', argv: shownArgv([this.info.path, ...args]), exitCode: r.code });
    return r;
  }

  private async call(verb: string, args: string[], what: string): Promise<string> {
    const r = await this.exec(['--root', this.root, verb, ...args]);
    if (r.code !== 0) {
      const msg = r.stderr.trim().split('\n').pop();
      throw new TsrunError(
        'ERR_RUNTIME',
        `${what}: ${this.info.name} ${verb} failed: ${msg || `exit status ${r.code}`}`,
      );
    }
    return r.stdout;
  }

  async start(id: string): Promise<void> {
    await this.call('start', [id], `starting container ${id.slice(0, 12)}`);
  }

  /** Signal the container's init (or, with `all`, every process in it). */
  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.call('kill', [...(all ? ['--all'] : []), id, signal], `signalling container ${id.slice(0, 12)}`);
    // A frozen (paused) process cannot act on SIGKILL until thawed: thaw it, as Docker does.
    if (/^(SIG)?KILL$|^9$/i.test(signal)) {
      const state = await this.exec(['--root', this.root, 'state', id]);
      if (state.code === 0 && /"status":\s*"paused"/.test(state.stdout))
        await this.exec(['--root', this.root, 'resume', id]);
    }
  }

  /** Forget a stopped container (and kill it first with `force`); a container the runtime does not know is fine. */
  async delete(id: string, force = false): Promise<void> {
    const r = await this.exec(['--root', this.root, 'delete', ...(force ? ['--force'] : []), id]);
    if (r.code !== 0 && !/does not exist|not found|no such/i.test(r.stderr)) {
      throw new TsrunError('ERR_RUNTIME', `deleting container ${id.slice(0, 12)}: ${r.stderr.trim()}`);
    }
  }
}
