/**
 * login / logout, with Docker's flags: -u/--username, -p/--password, --password-stdin.
 * Secrets are never echoed: the terminal prompt hides the password, and nothing here prints one.
 */
import type { Command } from 'commander';
import { TsrunError } from '../../errors.js';
import type { CliIo } from '../output.js';

async function context(io: CliIo) {
  const { processContext } = await import('../../app/context.js');
  return processContext({ root: io.globals().root });
}

export function registerAuthCommands(program: Command, io: CliIo): void {
  program
    .command('login')
    .description('Log in to a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .option('-u, --username <name>', 'username')
    .option('-p, --password <password>', 'password (insecure: prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string, opts: { username?: string; password?: string; passwordStdin?: boolean }) => {
      let { username, password } = opts;
      if (opts.password && opts.passwordStdin) {
        throw new TsrunError('ERR_USAGE', '--password and --password-stdin are mutually exclusive');
      }
      if (opts.passwordStdin) {
        if (!username) throw new TsrunError('ERR_USAGE', 'must provide --username with --password-stdin');
        password = (await readStdin()).replace(/\r?\n$/, '');
      } else if (password !== undefined) {
        io.err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      }
      if (!username || password === undefined) {
        if (!process.stdin.isTTY) {
          throw new TsrunError('ERR_USAGE', 'cannot perform an interactive login from a non TTY device', {
            hint: 'use --username and --password-stdin',
          });
        }
        if (!username) username = await prompt(io, 'Username: ', false);
        if (password === undefined) password = await prompt(io, 'Password: ', true);
      }
      if (!username || !password)
        throw new TsrunError('ERR_USAGE', 'a username and a non-empty password are needed to log in');
      const { login } = await import('../../app/login.js');
      const where = await login(await context(io), { server, username, password });
      if (where.plaintextFile)
        io.err.write(`WARNING! Your password will be stored unencrypted in ${where.plaintextFile}.\n`);
      io.out.write('Login Succeeded\n');
    });

  program
    .command('logout')
    .description('Log out from a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]', 'docker.io')
    .action(async (server: string) => {
      const { logout } = await import('../../app/login.js');
      const removed = await logout(await context(io), server);
      io.out.write(removed ? `Removing login credentials for ${server}\n` : `Not logged in to ${server}\n`);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Read one line from the terminal; with `hidden`, nothing typed is echoed. */
async function prompt(io: CliIo, question: string, hidden: boolean): Promise<string> {
  const stdin = process.stdin;
  io.err.write(question);
  if (hidden) stdin.setRawMode(true);
  stdin.resume();
  return await new Promise<string>((resolve, reject) => {
    let line = '';
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(line);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new TsrunError('ERR_USAGE', 'login cancelled'));
          return;
        }
        if (ch === '\u007f') line = line.slice(0, -1);
        else line += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      if (hidden) {
        stdin.setRawMode(false);
        io.err.write('\n');
      }
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}
