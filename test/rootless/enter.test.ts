import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Command } from 'commander';
import { needsNamespace } from '../../src/rootless/enter.js';
import { commandPlan } from '../../src/cli/own-options.js';
import type { CliIo } from '../../src/cli/output.js';
import { registerImageCommands } from '../../src/cli/commands/images.js';
import { registerAuthCommands } from '../../src/cli/commands/login.js';
import { registerContainerCommands } from '../../src/cli/commands/containers.js';
import { registerBuildCommands } from '../../src/cli/commands/build.js';
import { registerSearchCommands } from '../../src/cli/commands/search.js';
import { registerSystemCommands } from '../../src/cli/commands/system.js';
import { subordinateRange } from '../../src/rootless/namespace.js';

const E = suite('rootless: who enters the namespace, and the subordinate ranges');

/** The real CLI's commands (as main.ts registers them), without running anything. */
async function program(): Promise<Command> {
  const { Command: Ctor } = await import('commander');
  const p = new Ctor('tsrun')
    .version('0', '-v, --version')
    .option('--root <dir>')
    .option('--config <dir>')
    .option('--debug')
    .enablePositionalOptions();
  const io = { out: process.stdout, err: process.stderr, globals: () => ({}), version: '0' } as unknown as CliIo;
  registerImageCommands(p, io);
  registerAuthCommands(p, io);
  registerContainerCommands(p, io);
  registerBuildCommands(p, io);
  registerSearchCommands(p, io);
  registerSystemCommands(p, io);
  return p;
}

E("the command path and help from tsrun's own options only, never the container's command", async () => {
  const p = await program();
  assert.equal(commandPlan(p, ['--root', '/x', '--debug', 'run', '-it', 'img']), { path: ['run'], help: false });
  assert.equal(commandPlan(p, ['--debug']), { path: [], help: false });
  assert.equal(
    commandPlan(p, ['--config', '/cfg', 'login', 'r.io']),
    { path: ['login'], help: false },
    'the value of --config is not the verb',
  );
  assert.equal(commandPlan(p, ['container', 'run', '--rm', 'img']), { path: ['container', 'run'], help: false });
  assert.equal(commandPlan(p, ['system', 'info']), { path: ['system', 'info'], help: false });
  for (const argv of [
    ['--help'],
    ['-h'],
    ['--version'],
    ['-v'],
    ['run', '--help'],
    ['run', '--rm', '--help', 'img'],
    ['exec', '-h'],
    ['--root', '/r', 'build', '-h'],
    ['help', 'run'],
    ['container', 'run', '--help'],
    ['image', 'ls', '--help'],
    ['logs', 'c', '--help'],
  ]) {
    assert.ok(commandPlan(p, argv).help, argv.join(' '));
  }
  for (const argv of [
    ['run', '--rm', 'node:17', 'node', '--version'],
    ['run', '-d', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/www'],
    ['run', '-h', 'myhost', 'img'],
    ['run', '-e', '--help', 'img'],
    ['run', '--name', '-h', 'img'],
    ['run', '-it', 'img', 'sh', '-h'],
    ['run', '--env-file', '.env', 'img', '--version'],
    ['exec', '-it', 'c', 'node', '--version'],
    ['exec', 'c', 'sh', '-c', 'x -h'],
    ['create', 'img', '--help'],
    ['container', 'run', 'img', '-v'],
    ['run', '-dp8080:80', 'img', '--help'],
    ['run', '--', 'img', '-h'],
    ['--root', '/r', 'run', '-v', '/a:/b', 'img', '--version'],
  ]) {
    assert.not.ok(commandPlan(p, argv).help, argv.join(' '));
  }
});

E('store commands of a non-root user enter; root, help, version, login, info and search do not', async () => {
  const p = await program();
  const env = {};
  const needs = (argv: string[], uid = 1000, e: NodeJS.ProcessEnv = env) =>
    needsNamespace(commandPlan(p, argv), uid, e);
  assert.ok(needs(['pull', 'busybox']));
  assert.ok(needs(['--root', '/r', 'system', 'prune']));
  assert.ok(needs(['run', '--rm', 'node:17-alpine', 'node', '--version']));
  assert.ok(needs(['exec', 'c', 'node', '--version']));
  assert.not.ok(needs(['pull', 'busybox'], 0));
  assert.not.ok(needs(['pull', 'busybox'], 1000, { TSRUN_ROOTLESS: '1000' }), 'already inside');
  for (const argv of [
    [],
    ['--help'],
    ['run', '--help'],
    ['--version'],
    ['login', 'r.io'],
    ['logout'],
    ['info'],
    ['system', 'info'],
    ['search', '--limit', '5', 'node'],
  ]) {
    assert.not.ok(needs(argv), argv.join(' '));
  }
});

E('/etc/subuid: by name or uid, the first usable range', () => {
  const text = 'other:100000:65536\n1000:165536:65536\nme:231072:0\nme:300000:1000\n';
  assert.equal(subordinateRange(text, 'alice', 1000), { start: 165536, count: 65536 });
  assert.equal(subordinateRange(text, 'me', 5), { start: 300000, count: 1000 }, 'an empty range is skipped');
  assert.is(subordinateRange(text, 'nobody', 7), undefined);
});
E.run();
