/**
 * `explain CONTAINER [--check]` (app/explain.ts): a running container as the host sees it, one
 * stage after another, each fact with a command to look at it yourself; `--check` marks each
 * fact ✓ or ✗ against the container's record and spec and exits 1 when any is ✗.
 */
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import { context, exitOne, group } from './common.js';

const EXAMPLES = `
Examples:
  tsrun run -d --name web -p 8080:80 busybox httpd -f -p 80
  tsrun explain web            # its pid on the host, namespaces, cgroup, root mount, netns, veth, DNAT rules, monitor
  tsrun explain --check web    # the same, each line checked against the container's record and config.json
  tsrun explain --format json web | jq '.Facts[] | select(.Stage == "ports")'
`;

const TITLES: Record<string, string> = {
  container: 'Container',
  process: 'Process (what runc started)',
  namespaces: 'Namespaces (inode; own, or shared with the host)',
  cgroup: 'Cgroup (resource accounting and limits)',
  root: 'Root filesystem',
  network: 'Network',
  ports: 'Published ports',
  monitor: 'Monitor',
};

export function registerExplainCommands(program: Command, io: CliIo): void {
  const cmd = (c: Command) =>
    c
      .description('Show a running container as the host sees it (with --check: verify each part)')
      .argument('<container>', 'container name or id')
      .option('--check', 'compare each part with the container record and spec: ✓/✗ per line, exit 1 on any ✗')
      .option('--format <format>', 'text (default) or json')
      .addHelpText('after', EXAMPLES)
      .action(
        exitOne(async (container: string, o: { check?: boolean; format?: string }) => {
          const { TsrunError } = await import('../../errors.js');
          if (o.format !== undefined && o.format !== 'text' && o.format !== 'json')
            throw new TsrunError('ERR_USAGE', `unknown format "${o.format}": use text or json`);
          const { explainContainer } = await import('../../app/explain.js');
          const e = await explainContainer(await context(io), container, { check: o.check });
          const failed = e.facts.filter((f) => f.ok === false);
          if (o.format === 'json') {
            io.out.write(
              `${JSON.stringify({
                ID: e.id,
                Name: e.name,
                Facts: e.facts.map((f) => ({
                  Stage: f.stage,
                  Text: f.text,
                  ...(f.ok !== undefined ? { OK: f.ok } : {}),
                  ...(f.ok === false ? { Expected: f.expected } : {}),
                  ...(f.look ? { Look: f.look } : {}),
                })),
              })}\n`,
            );
          } else {
            let stage = '';
            let out = '';
            for (const f of e.facts) {
              if (f.stage !== stage) {
                stage = f.stage;
                out += `${out ? '\n' : ''}${TITLES[stage] ?? stage}\n`;
              }
              const mark = f.ok === undefined ? ' ' : f.ok ? '✓' : '✗';
              out += `  ${o.check ? `${mark} ` : ''}${f.ok === false ? `${f.stage}: ` : ''}${f.text}\n`;
              if (f.ok === false) out += `      expected: ${f.expected}\n`;
              if (f.look) out += `      $ ${f.look}\n`;
            }
            if (o.check) {
              const checked = e.facts.filter((f) => f.ok !== undefined).length;
              out += failed.length
                ? `\n✗ ${failed.length} of ${checked} checks failed: ${[...new Set(failed.map((f) => f.stage))].join(', ')}\n`
                : `\n✓ all ${checked} checks passed\n`;
            }
            io.out.write(out);
          }
          if (o.check && failed.length > 0) process.exitCode = 1;
        }),
      );
  cmd(program.command('explain'));
  cmd(group(program, 'container').command('explain'));
}
