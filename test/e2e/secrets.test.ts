/**
 * End to end: a registry password never leaks. Through login, pull, push, a failed login and a
 * failed pull, with `--debug` on, the password (and its base64 `user:password` form, which is
 * just as good to an attacker) must appear nowhere but the 0600 auth file: not in any output,
 * not in any file under the store or the volatile state, not in any process's argv while the
 * commands run (what `ps` shows other users).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { spawnTsrun, tsrun } from './cli.js';
import { topLayer } from './fixtures.js';
import { runDir } from './containers.js';

const PASSWORD = 'pw-Zq81-do-not-leak';
const USER = 'carol';
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-secrets-'));
const root = path.join(tmp, 'root');
const HOME = path.join(tmp, 'home');
const authFile = path.join(HOME, '.docker', 'config.json');

const S = suite('e2e secrets');
let hub: TestRegistry;
S.before(async () => {
  hub = await startRegistry({ auth: 'token', users: { [USER]: PASSWORD } });
  await pushImage(hub, 'carol/private', '1', { layers: [topLayer()] });
});
S.after(async () => {
  await hub?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

function leaks(text: string): string[] {
  return [PASSWORD, BASIC].filter((s) => text.includes(s));
}

/** Every file under `dir` that holds the secret, except `allowed`. */
function filesWithSecret(dir: string, allowed: string[]): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (
        st.isFile() &&
        st.size < 64 * 1024 * 1024 &&
        !allowed.includes(p) &&
        leaks(readFileSync(p, 'latin1')).length
      )
        found.push(p);
    }
  };
  walk(dir);
  return found;
}

/** Runs the CLI while sampling every process's argv; returns the output and what argv leaked. */
async function watched(args: string[], input?: string): Promise<{ code: number; text: string; argvLeaks: string[] }> {
  const argvLeaks: string[] = [];
  let done = false;
  const sampler = (async () => {
    while (!done) {
      for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        let cmd: string;
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        } catch {
          continue;
        }
        if (leaks(cmd).length) argvLeaks.push(cmd.replaceAll('\0', ' '));
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const r =
    input === undefined
      ? await spawnTsrun(['--debug', ...args], { root, env: { HOME, PATH: process.env.PATH ?? '' } })
      : await tsrun(['--debug', ...args], { root, env: { HOME }, input });
  done = true;
  await sampler;
  const out = r as { exitCode?: number; code?: number; stdout: unknown; stderr: unknown };
  return { code: out.exitCode ?? out.code ?? -1, text: `${String(out.stdout)}${String(out.stderr)}`, argvLeaks };
}

S('login, pull, push and failures with --debug: the password is only in the 0600 auth file', async () => {
  const bad = await watched(['login', '-u', USER, '--password-stdin', hub.host], 'wrong-password');
  assert.is.not(bad.code, 0);
  const good = await watched(['login', '-u', USER, '--password-stdin', hub.host], PASSWORD);
  assert.is(good.code, 0, good.text);
  assert.is(statSync(authFile).mode & 0o777, 0o600);

  const pull = await watched(['pull', `${hub.host}/carol/private:1`]);
  assert.is(pull.code, 0, pull.text);
  const tag = await tsrun(['tag', `${hub.host}/carol/private:1`, `${hub.host}/carol/copy:2`], { root, env: { HOME } });
  assert.is(tag.code, 0, tag.stderr);
  const push = await watched(['push', `${hub.host}/carol/copy:2`]);
  assert.is(push.code, 0, push.text);
  const missing = await watched(['pull', `${hub.host}/carol/nothing-here:1`]);
  assert.is.not(missing.code, 0);

  for (const r of [bad, good, pull, push, missing]) {
    assert.equal(leaks(r.text), [], `output leaked the password:\n${r.text}`);
    assert.equal(r.argvLeaks, [], 'a process had the password in its argv');
  }
  assert.ok(pull.text.includes('"type"'), 'the --debug event stream was on (so it was checked too)');
  assert.equal(filesWithSecret(root, []), [], 'a file in the store holds the password');
  assert.equal(filesWithSecret(runDir(root), []), [], 'a file in the volatile state holds the password');
  assert.equal(filesWithSecret(HOME, [authFile]), [], 'a file other than the auth file holds the password');
  assert.equal(filesWithSecret(HOME, []), [authFile], 'the scan finds the credentials where they are meant to be');
});

S.run();
