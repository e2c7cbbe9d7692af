/**
 * End to end: login/logout and pulls against registries that want credentials, the way Docker
 * Hub (token auth) and a self-hosted registry (htpasswd basic auth) do.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage } from '../helpers/push.js';
import { tsrun } from './cli.js';
import { topLayer } from './fixtures.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-auth-'));
let n = 0;
const freshHome = () => path.join(tmp, `home${n++}`);
const root = path.join(tmp, 'root');

const Token = suite('e2e token auth (Docker Hub style)');
let hub: TestRegistry;
Token.before(async () => {
  hub = await startRegistry({ auth: 'token', users: { alice: 'wonderland' } });
  await pushImage(hub, 'public/app', '1', { layers: [topLayer()] });
  await pushImage(hub, 'alice/private', '1', { layers: [topLayer()] });
});
Token.after(async () => {
  await hub?.stop();
});

Token('anonymous pull of a public repository gets a token by itself', async () => {
  const HOME = freshHome();
  const r = await tsrun(['pull', '-q', `${hub.host}/public/app:1`], { root, env: { HOME } });
  assert.is(r.code, 0, r.stderr);
  assert.ok(
    hub.tokenRequestLog().some((t) => t.user === undefined && t.status === 200),
    'an anonymous token was issued',
  );
});

Token('a private repository needs login; login stores 0600 credentials; logout removes them', async () => {
  const HOME = freshHome();
  const denied = await tsrun(['pull', `${hub.host}/alice/private:1`], { root, env: { HOME } });
  assert.is(denied.code, 1);
  assert.match(denied.stderr, `tsrun login ${hub.host}`);

  const bad = await tsrun(['login', '-u', 'alice', '--password-stdin', hub.host], {
    root,
    env: { HOME },
    input: 'wrong\n',
  });
  assert.is(bad.code, 1);
  assert.not.match(bad.stderr + bad.stdout, 'wrong');

  const good = await tsrun(['login', '-u', 'alice', '--password-stdin', hub.host], {
    root,
    env: { HOME },
    input: 'wonderland\n',
  });
  assert.is(good.code, 0, good.stderr);
  assert.match(good.stdout, 'Login Succeeded');
  const config = path.join(HOME, '.docker', 'config.json');
  assert.is(statSync(config).mode & 0o777, 0o600);
  assert.not.match(good.stdout + good.stderr, 'wonderland');
  const auths = JSON.parse(readFileSync(config, 'utf8')).auths;
  assert.is(Buffer.from(auths[hub.host].auth, 'base64').toString(), 'alice:wonderland');

  const ok = await tsrun(['pull', '-q', `${hub.host}/alice/private:1`], { root, env: { HOME } });
  assert.is(ok.code, 0, ok.stderr);
  assert.ok(hub.tokenRequestLog().some((t) => t.user === 'alice' && t.status === 200));

  const out = await tsrun(['logout', hub.host], { root, env: { HOME } });
  assert.is(out.code, 0, out.stderr);
  assert.is(JSON.parse(readFileSync(config, 'utf8')).auths[hub.host], undefined);
  const again = await tsrun(['pull', `${hub.host}/alice/private:1`], { root: path.join(tmp, 'root2'), env: { HOME } });
  assert.is(again.code, 1);
});

Token('REGISTRY_AUTH_FILE is read for credentials', async () => {
  const HOME = freshHome();
  const authFile = path.join(tmp, 'auth.json');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    authFile,
    JSON.stringify({ auths: { [hub.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }),
    { mode: 0o600 },
  );
  const r = await tsrun(['pull', '-q', `${hub.host}/alice/private:1`], {
    root: path.join(tmp, 'root3'),
    env: { HOME, REGISTRY_AUTH_FILE: authFile },
  });
  assert.is(r.code, 0, r.stderr);
});

Token.run();

const Basic = suite('e2e htpasswd basic auth');
let basic: TestRegistry;
Basic.before(async () => {
  basic = await startRegistry({ auth: 'htpasswd', users: { bob: 's3cret:with:colons' } });
  await pushImage(basic, 'team/app', '1', { layers: [topLayer()] });
});
Basic.after(async () => {
  await basic?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

Basic('login checks the password against the registry before storing anything', async () => {
  const HOME = freshHome();
  const bad = await tsrun(['login', '-u', 'bob', '--password-stdin', basic.host], {
    root,
    env: { HOME },
    input: 'nope',
  });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'refused');
  assert.throws(() => statSync(path.join(HOME, '.docker', 'config.json')));
  const good = await tsrun(['login', '-u', 'bob', '--password-stdin', basic.host], {
    root,
    env: { HOME },
    input: 's3cret:with:colons',
  });
  assert.is(good.code, 0, good.stderr);
  const pulled = await tsrun(['pull', '-q', `${basic.host}/team/app:1`], {
    root: path.join(tmp, 'root4'),
    env: { HOME },
  });
  assert.is(pulled.code, 0, pulled.stderr);
});

Basic('a non-interactive login without a password is a clear usage error', async () => {
  const r = await tsrun(['login', '-u', 'bob', basic.host], { root, env: { HOME: freshHome() } });
  assert.is(r.code, 1);
  assert.match(r.stderr, 'non TTY');
});

Basic.run();
