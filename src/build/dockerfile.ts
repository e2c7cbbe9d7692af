/**
 * Dockerfile → stages of instructions (Dockerfile reference: "Format", "Parser directives",
 * "FROM", "Understand how ARG and FROM interact").
 *
 * The lexical part — comments, line continuations, the `escape` directive, flags, JSON form,
 * heredoc boundaries — is done by `dockerfile-ast` (the maintained parser behind the Docker
 * language server). What Docker *means* by the text is done here and in words.ts: the stage
 * structure, which instructions and flags exist, and (later, in the builder) substitution.
 * Everything that cannot be read is an ERR_DOCKERFILE naming the file and the line.
 *
 * Contract: pure (no I/O); the result is plain data with 1-based line numbers.
 */
import { TsrunError } from '../errors.js';

export interface Instruction {
  /** Upper-case keyword: RUN, COPY… */
  keyword: string;
  /** 1-based line of the keyword. */
  line: number;
  /** The arguments after the keyword and its flags, continuation lines joined. */
  args: string;
  /** The arguments as a JSON array of strings, when they are one (exec form). */
  json?: string[];
  /** `--name=value` flags (a bare `--name` has the value ''). */
  flags: Record<string, string>;
  /** The instruction as one line, for output ("COPY --chown=1:2 a b/"). */
  text: string;
  /** RUN/COPY/ADD with a heredoc (`<<EOF` … `EOF`): `args` keeps its lines. */
  heredoc?: boolean;
  /** RUN's `--mount=…` values, in order (the flag may repeat). */
  mounts?: string[];
}

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as Docker does. */
  name?: string;
  /** The image (or earlier stage) after FROM, not yet expanded. */
  base: string;
  platform?: string;
  from: Instruction;
  instructions: Instruction[];
}

export interface Dockerfile {
  escape: string;
  /** ARGs before the first FROM: usable in FROM lines only (unless redeclared in a stage). */
  globalArgs: Instruction[];
  stages: Stage[];
}

/**
 * Instructions and the flags each accepts (BuildKit's stable set). COPY/ADD `--link` is accepted
 * and builds the same image as without it (in BuildKit it changes only how a layer may be reused).
 */
const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['network', 'mount'],
  COPY: ['from', 'chown', 'chmod', 'link'],
  ADD: ['chown', 'chmod', 'link'],
  CMD: [],
  ENTRYPOINT: [],
  ENV: [],
  ARG: [],
  WORKDIR: [],
  USER: [],
  EXPOSE: [],
  LABEL: [],
  VOLUME: [],
  STOPSIGNAL: [],
  SHELL: [],
  ONBUILD: [],
  MAINTAINER: [],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

const JSON_FORM = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME', 'HEALTHCHECK']);

export async function parseDockerfile(text: string, fileName = 'Dockerfile'): Promise<Dockerfile> {
  const { DockerfileParser } = await import('dockerfile-ast');
  const df = DockerfileParser.parse(text);
  const escape = df.getEscapeCharacter();
  const fail = (line: number, msg: string, hint?: string): never => {
    throw new TsrunError('ERR_DOCKERFILE', `${fileName}:${line}: ${msg}`, { hint });
  };

  const result: Dockerfile = { escape, globalArgs: [], stages: [] };
  for (const ins of df.getInstructions()) {
    const line = ins.getRange().start.line + 1;
    const keyword = ins.getKeyword();
    const allowed = FLAGS[keyword];
    if (!allowed)
      fail(
        line,
        `unknown instruction: ${ins.getInstruction()}`,
        'see https://docs.docker.com/reference/dockerfile/ for the instructions',
      );
    const flags: Record<string, string> = {};
    const mounts: string[] = [];
    for (const f of (ins as { getFlags?: () => { getName(): string; getValue(): string | null }[] }).getFlags?.() ??
      []) {
      const name = f.getName();
      if (!(allowed as readonly string[]).includes(name)) fail(line, `${keyword} does not take --${name}`);
      if (name === 'mount') mounts.push(f.getValue() ?? '');
      else flags[name] = f.getValue() ?? '';
    }
    const args = (ins.getArgumentsContent() ?? '').trim();
    const heredoc = /<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\1/.test(args.split('\n')[0] ?? '') && args.includes('\n');
    if (!args && !['HEALTHCHECK'].includes(keyword)) fail(line, `${keyword} needs at least one argument`);
    let json: string[] | undefined;
    if (JSON_FORM.has(keyword) && args.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(args);
        if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) json = parsed as string[];
      } catch {
        /* not JSON: shell form, as Docker does */
      }
    }
    const text = heredoc
      ? `${ins.getInstruction().toUpperCase()} ${args.split('\n')[0]}`
      : ins.toString().replace(/\s*\n\s*/g, ' ');
    const item: Instruction = {
      keyword,
      line,
      args,
      json,
      flags,
      text,
      ...(heredoc ? { heredoc: true } : {}),
      ...(mounts.length > 0 ? { mounts } : {}),
    };

    if (keyword === 'FROM') {
      const words = args.split(/\s+/);
      let name: string | undefined;
      if (words.length === 3 && words[1]?.toLowerCase() === 'as') name = (words[2] as string).toLowerCase();
      else if (words.length !== 1) fail(line, `FROM takes an image and optionally "AS name", got "${args}"`);
      if (name !== undefined && !/^[a-z][a-z0-9._-]*$/.test(name))
        fail(
          line,
          `invalid stage name "${name}"`,
          'a stage name starts with a letter and has letters, digits, ".", "_" or "-"',
        );
      if (name !== undefined && result.stages.some((s) => s.name === name))
        fail(line, `duplicate stage name "${name}"`);
      result.stages.push({
        index: result.stages.length,
        name,
        base: words[0] as string,
        platform: flags.platform,
        from: item,
        instructions: [],
      });
      continue;
    }
    const stage = result.stages[result.stages.length - 1];
    if (!stage) {
      if (keyword !== 'ARG')
        fail(line, `${keyword} before the first FROM`, 'a Dockerfile starts with FROM (only ARG may come before it)');
      result.globalArgs.push(item);
      continue;
    }
    if (keyword === 'SHELL' && !json) {
      fail(line, 'SHELL must be a JSON array, e.g. SHELL ["/bin/bash", "-c"]');
    }
    stage.instructions.push(item);
  }
  if (result.stages.length === 0)
    fail(1, 'no FROM instruction', 'a Dockerfile starts with FROM <image> (or FROM scratch)');
  return result;
}
