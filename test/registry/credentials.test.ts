import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsrunError } from '../../src/errors.js';
import {
  credentialSources,
  decodeEntry,
  eraseCredentials,
  findAuthKey,
  lookupCredentials,
  normalizeKey,
  readAuthFile,
  storeCredentials,
  storeTarget,
  type AuthFile,
  type CredentialsContext,
} from '../../src/registry/credentials.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** A fake docker-credential-fake: keeps one file per server URL in $FAKE_HELPER_DIR, logs calls. */
const FAKE_HELPER = `#!/bin/sh
dir="$FAKE_HELPER_DIR"
input=$(cat)
echo "$1 $input" >> "$dir/calls"
case "$1" in
  get)
    f="$dir/$(printf %s "$input" | tr -c 'a-zA-Z0-9' '_')"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    url=$(printf %s "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    printf %s "$input" > "$dir/$(printf %s "$url" | tr -c 'a-zA-Z0-9' '_')" ;;
  erase)
    f="$dir/$(printf %s "$input" | tr -c 'a-zA-Z0-9' '_')"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 2 ;;
esac
`;

function world() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-creds-'));
  const dirs = {
    home: path.join(root, 'home'),
    docker: path.join(root, 'docker'),
    runtime: path.join(root, 'run'),
    bin: path.join(root, 'bin'),
    helperStore: path.join(root, 'helper-store'),
  };
  for (const d of [dirs.home, dirs.runtime, dirs.bin, dirs.helperStore]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(dirs.bin, 'docker-credential-fake'), FAKE_HELPER, { mode: 0o755 });
  fs.writeFileSync(path.join(dirs.bin, 'docker-credential-slow'), '#!/bin/sh\nsleep 5\n', { mode: 0o755 });
  const ctx: CredentialsContext = {
    env: {
      PATH: `${dirs.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      DOCKER_CONFIG: dirs.docker,
      XDG_RUNTIME_DIR: dirs.runtime,
      FAKE_HELPER_DIR: dirs.helperStore,
    },
    home: dirs.home,
    uid: 1000,
  };
  const files = {
    authFile: path.join(root, 'REGISTRY_AUTH_FILE.json'),
    docker: path.join(dirs.docker, 'config.json'),
    runtime: path.join(dirs.runtime, 'containers', 'auth.json'),
    user: path.join(dirs.home, '.config', 'containers', 'auth.json'),
  };
  const writeJson = (p: string, data: unknown, mode = 0o600) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, JSON.stringify(data), { mode });
    fs.chmodSync(p, mode);
  };
  const helperPut = (serverUrl: string, username: string, secret: string) =>
    fs.writeFileSync(
      path.join(dirs.helperStore, serverUrl.replace(/[^a-zA-Z0-9]/g, '_')),
      JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret }),
    );
  const calls = () => {
    try {
      return fs.readFileSync(path.join(dirs.helperStore, 'calls'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  return {
    root,
    dirs,
    ctx,
    files,
    writeJson,
    helperPut,
    calls,
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

async function rejects(p: Promise<unknown>, code: string): Promise<TsrunError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, TsrunError);
    assert.is((err as TsrunError).code, code);
    return err as TsrunError;
  }
  return assert.unreachable(`expected ${code}`) as never;
}

const file = (p: string, data: Partial<Pick<AuthFile, 'auths' | 'credsStore' | 'credHelpers'>>): AuthFile => ({
  path: p,
  kind: 'docker',
  exists: true,
  raw: {},
  auths: data.auths ?? {},
  credsStore: data.credsStore,
  credHelpers: data.credHelpers ?? {},
});

// ---- pure parts ----

test('normalizeKey / findAuthKey: schemes and paths stripped, Docker Hub aliases', () => {
  assert.is(normalizeKey('https://ghcr.io'), 'ghcr.io');
  assert.is(normalizeKey('http://reg.example:5000/v1/'), 'reg.example:5000');
  assert.is(normalizeKey('https://index.docker.io/v1/'), 'docker.io');
  assert.is(normalizeKey('registry-1.docker.io'), 'docker.io');
  assert.is(normalizeKey('index.docker.io'), 'docker.io');
  assert.is(findAuthKey({ 'https://index.docker.io/v1/': {} }, 'docker.io'), 'https://index.docker.io/v1/');
  assert.is(findAuthKey({ 'registry-1.docker.io': {} }, 'docker.io'), 'registry-1.docker.io');
  assert.is(
    findAuthKey({ 'docker.io': {}, 'https://index.docker.io/v1/': {} }, 'docker.io'),
    'https://index.docker.io/v1/',
    'canonical first',
  );
  assert.is(findAuthKey({ 'https://ghcr.io/': {} }, 'ghcr.io'), 'https://ghcr.io/');
  assert.is(findAuthKey({ 'reg.example:5000': {} }, 'reg.example'), undefined, 'ports differ');
  assert.is(findAuthKey({ 'ghcr.io.evil': {} }, 'ghcr.io'), undefined);
});

test('credentialSources: file order, credHelpers over credsStore, helper over auths, stubs skipped', () => {
  const a = file('/a', { auths: { 'ghcr.io': {} } }); // stub: no secret
  const b = file('/b', {
    credsStore: 'desktop',
    credHelpers: { 'ghcr.io': 'gh' },
    auths: { 'ghcr.io': { auth: b64('u:p') } },
  });
  const c = file('/c', { auths: { 'https://ghcr.io': { auth: b64('x:y') } } });
  const missing = { ...file('/m', { auths: { 'ghcr.io': { auth: b64('m:m') } } }), exists: false };
  const s = credentialSources([missing, a, b, c], 'ghcr.io');
  assert.equal(
    s.map((x) => [x.kind, x.file, x.kind === 'helper' ? x.helper : x.key]),
    [
      ['helper', '/b', 'gh'],
      ['entry', '/c', 'https://ghcr.io'],
    ],
  );
  const hub = credentialSources([b], 'docker.io');
  assert.equal(hub, [{ kind: 'helper', helper: 'desktop', serverUrl: 'https://index.docker.io/v1/', file: '/b' }]);
  assert.equal(
    credentialSources([file('/d', { credHelpers: { 'index.docker.io': 'hubhelper' } })], 'docker.io').map(
      (x) => x.kind === 'helper' && x.helper,
    ),
    ['hubhelper'],
  );
});

test('storeTarget: helper if configured, else Docker config with Hub key', () => {
  assert.equal(storeTarget(file('/cfg', {}), 'docker.io'), {
    kind: 'file',
    file: '/cfg',
    key: 'https://index.docker.io/v1/',
  });
  assert.equal(storeTarget(file('/cfg', {}), 'localhost:5000'), { kind: 'file', file: '/cfg', key: 'localhost:5000' });
  assert.equal(storeTarget(file('/cfg', { credsStore: 'pass', credHelpers: { 'ghcr.io': 'gh' } }), 'ghcr.io'), {
    kind: 'helper',
    helper: 'gh',
    serverUrl: 'ghcr.io',
  });
  assert.equal(storeTarget(file('/cfg', { credsStore: 'pass' }), 'docker.io'), {
    kind: 'helper',
    helper: 'pass',
    serverUrl: 'https://index.docker.io/v1/',
  });
});

test('decodeEntry: password containing ":", identitytoken, bad base64 refused without leaking', () => {
  assert.equal(decodeEntry({ auth: b64('alice:pa:ss:word') }, '/f', 'k'), {
    kind: 'basic',
    username: 'alice',
    password: 'pa:ss:word',
  });
  assert.equal(decodeEntry({ auth: b64('alice:'), identitytoken: 'REFRESH' }, '/f', 'k'), {
    kind: 'identity',
    token: 'REFRESH',
    username: 'alice',
  });
  assert.equal(decodeEntry({ identitytoken: 'REFRESH' }, '/f', 'k'), { kind: 'identity', token: 'REFRESH' });
  try {
    decodeEntry({ auth: b64('nocolonsecret') }, '/f', 'ghcr.io');
    assert.unreachable();
  } catch (err) {
    assert.is((err as TsrunError).code, 'ERR_CREDENTIALS');
    assert.match((err as TsrunError).message, '/f');
    assert.not.match((err as TsrunError).message, 'nocolonsecret');
  }
});

// ---- files ----

test('lookupCredentials: REGISTRY_AUTH_FILE > Docker config > $XDG_RUNTIME_DIR auth.json > ~/.config auth.json', async () => {
  const w = world();
  try {
    const entry = (u: string) => ({ auths: { 'reg.example': { auth: b64(`${u}:pw`) } } });
    w.writeJson(w.files.authFile, entry('env'));
    w.writeJson(w.files.docker, entry('docker'));
    w.writeJson(w.files.runtime, entry('runtime'));
    w.writeJson(w.files.user, entry('user'));
    const ctx = { ...w.ctx, env: { ...w.ctx.env, REGISTRY_AUTH_FILE: w.files.authFile } };
    const who = async (c: CredentialsContext) => {
      const r = await lookupCredentials(c, 'reg.example');
      return r && r.kind === 'basic' ? r.username : r;
    };
    assert.is(await who(ctx), 'env');
    assert.is(await who(w.ctx), 'docker');
    fs.rmSync(w.files.docker);
    assert.is(await who(w.ctx), 'runtime');
    fs.rmSync(w.files.runtime);
    assert.is(await who(w.ctx), 'user');
    fs.rmSync(w.files.user);
    assert.is(await who(w.ctx), undefined);
    assert.is(await lookupCredentials(w.ctx, 'other.example'), undefined);
  } finally {
    w.cleanup();
  }
});

test('lookupCredentials: ~/.docker/config.json when DOCKER_CONFIG is unset; Hub aliases', async () => {
  const w = world();
  try {
    const env = { ...w.ctx.env };
    delete env.DOCKER_CONFIG;
    const ctx = { ...w.ctx, env };
    for (const key of [
      'https://index.docker.io/v1/',
      'docker.io',
      'index.docker.io',
      'registry-1.docker.io',
      'https://index.docker.io/v2/',
    ]) {
      w.writeJson(path.join(w.dirs.home, '.docker', 'config.json'), {
        auths: { [key]: { auth: b64('hubuser:hub:pass') } },
      });
      assert.equal(
        await lookupCredentials(ctx, 'docker.io'),
        { kind: 'basic', username: 'hubuser', password: 'hub:pass' },
        key,
      );
    }
    w.writeJson(path.join(w.dirs.home, '.docker', 'config.json'), {
      auths: { 'http://reg.example:5000/v1/': { identitytoken: 'IDT' } },
    });
    assert.equal(await lookupCredentials(ctx, 'reg.example:5000'), { kind: 'identity', token: 'IDT' });
    assert.is(await lookupCredentials(ctx, 'reg.example'), undefined);
  } finally {
    w.cleanup();
  }
});

test('bad JSON: ERR_CREDENTIALS naming the file, no content leaked', async () => {
  const w = world();
  try {
    fs.mkdirSync(w.dirs.docker, { recursive: true });
    fs.writeFileSync(w.files.docker, '{"auths": {"x": {"auth": "c2VjcmV0"}, SECRETSTUFF');
    const e = await rejects(lookupCredentials(w.ctx, 'x'), 'ERR_CREDENTIALS');
    assert.ok(e.message.startsWith(`reading ${w.files.docker}: invalid JSON`), e.message);
    assert.not.match(e.message, 'SECRETSTUFF');
    assert.not.match(e.message, 'c2VjcmV0');
    w.writeJson(w.files.docker, { auths: { x: { auth: 42 } } });
    const e2 = await rejects(lookupCredentials(w.ctx, 'x'), 'ERR_CREDENTIALS');
    assert.match(e2.message, w.files.docker);
    assert.match(e2.message, 'auths.x.auth');
  } finally {
    w.cleanup();
  }
});

// ---- credential helpers ----

test('helper get: credHelpers wins over credsStore, <token> is an identity token, server URL on stdin', async () => {
  const w = world();
  try {
    w.writeJson(w.files.docker, {
      credsStore: 'missing-helper',
      credHelpers: { 'ghcr.io': 'fake', 'https://index.docker.io/v1/': 'fake' },
      auths: { 'ghcr.io': {} },
    });
    w.helperPut('ghcr.io', 'gh-user', 'gh:secret');
    w.helperPut('https://index.docker.io/v1/', '<token>', 'REFRESH-TOKEN');
    assert.equal(await lookupCredentials(w.ctx, 'ghcr.io'), {
      kind: 'basic',
      username: 'gh-user',
      password: 'gh:secret',
    });
    assert.equal(await lookupCredentials(w.ctx, 'docker.io'), { kind: 'identity', token: 'REFRESH-TOKEN' });
    assert.equal(w.calls(), ['get ghcr.io', 'get https://index.docker.io/v1/']);
  } finally {
    w.cleanup();
  }
});

test('helper get: "credentials not found" → search goes on, then undefined', async () => {
  const w = world();
  try {
    w.writeJson(w.files.docker, { credsStore: 'fake' });
    assert.is(await lookupCredentials(w.ctx, 'quay.io'), undefined);
    w.writeJson(w.files.user, { auths: { 'quay.io': { auth: b64('q:w') } } });
    assert.equal(await lookupCredentials(w.ctx, 'quay.io'), { kind: 'basic', username: 'q', password: 'w' });
    assert.equal(w.calls(), ['get quay.io', 'get quay.io']);
  } finally {
    w.cleanup();
  }
});

test('helper errors: missing program and timeout are ERR_CREDENTIALS with no secret', async () => {
  const w = world();
  try {
    w.writeJson(w.files.docker, { credsStore: 'nonexistent' });
    const e = await rejects(lookupCredentials(w.ctx, 'quay.io'), 'ERR_CREDENTIALS');
    assert.match(e.message, 'docker-credential-nonexistent was not found');
    assert.ok(e.hint);
    w.writeJson(w.files.docker, { credsStore: '../../bin/sh' });
    assert.match(
      (await rejects(lookupCredentials(w.ctx, 'quay.io'), 'ERR_CREDENTIALS')).message,
      'not a valid helper name',
    );
    w.writeJson(w.files.docker, { credsStore: 'slow' });
    const t0 = Date.now();
    const e2 = await rejects(lookupCredentials({ ...w.ctx, helperTimeoutMs: 300 }, 'quay.io'), 'ERR_CREDENTIALS');
    assert.match(e2.message, 'timed out');
    assert.ok(Date.now() - t0 < 4000, 'the timeout stopped the helper');
  } finally {
    w.cleanup();
  }
});

test('storeCredentials / eraseCredentials through a helper', async () => {
  const w = world();
  try {
    w.writeJson(w.files.docker, { credHelpers: { 'ghcr.io': 'fake' } });
    const r = await storeCredentials(w.ctx, 'ghcr.io', { username: 'me', password: 's:3cret' });
    assert.equal(r, { kind: 'helper', where: 'docker-credential-fake' });
    assert.equal(await lookupCredentials(w.ctx, 'ghcr.io'), { kind: 'basic', username: 'me', password: 's:3cret' });
    assert.not.match(fs.readFileSync(w.files.docker, 'utf8'), 's:3cret');
    assert.is(await eraseCredentials(w.ctx, 'ghcr.io'), true);
    assert.is(await lookupCredentials(w.ctx, 'ghcr.io'), undefined);
    assert.is(await eraseCredentials(w.ctx, 'ghcr.io'), false, 'helper said not found');
    assert.equal(
      w.calls().map((c) => c.split(' ')[0]),
      ['store', 'get', 'erase', 'get', 'erase'],
    );
  } finally {
    w.cleanup();
  }
});

// ---- writing the Docker config ----

test('storeCredentials: new config.json in a new 0700 dir, mode 0600, Hub key, readable back', async () => {
  const w = world();
  try {
    const r = await storeCredentials(w.ctx, 'docker.io', { username: 'bob', password: 'p:w' });
    assert.equal(r, { kind: 'file', where: w.files.docker, plaintextFile: w.files.docker });
    assert.is(fs.statSync(w.dirs.docker).mode & 0o777, 0o700);
    assert.is(fs.statSync(w.files.docker).mode & 0o777, 0o600);
    const data = JSON.parse(fs.readFileSync(w.files.docker, 'utf8'));
    assert.equal(data, { auths: { 'https://index.docker.io/v1/': { auth: b64('bob:p:w') } } });
    assert.equal(await lookupCredentials(w.ctx, 'docker.io'), { kind: 'basic', username: 'bob', password: 'p:w' });
    assert.equal(fs.readdirSync(w.dirs.docker), ['config.json'], 'no temp file left');
  } finally {
    w.cleanup();
  }
});

test('storeCredentials: REGISTRY_AUTH_FILE when set (as podman login), mode 0600, the Docker config untouched; logout erases it', async () => {
  const w = world();
  try {
    w.ctx.env['REGISTRY_AUTH_FILE'] = w.files.authFile;
    const r = await storeCredentials(w.ctx, 'ci.example:5000', { username: 'ci', password: 'tok' });
    assert.equal(r, { kind: 'file', where: w.files.authFile, plaintextFile: w.files.authFile });
    assert.is(fs.statSync(w.files.authFile).mode & 0o777, 0o600);
    assert.equal(JSON.parse(fs.readFileSync(w.files.authFile, 'utf8')), {
      auths: { 'ci.example:5000': { auth: b64('ci:tok') } },
    });
    assert.not.ok(fs.existsSync(w.files.docker));
    assert.equal(await lookupCredentials(w.ctx, 'ci.example:5000'), { kind: 'basic', username: 'ci', password: 'tok' });
    assert.is(await eraseCredentials(w.ctx, 'ci.example:5000'), true);
    assert.equal(JSON.parse(fs.readFileSync(w.files.authFile, 'utf8')), { auths: {} });
  } finally {
    w.cleanup();
  }
});

test('storeCredentials: keeps every other key, replaces aliases, tightens an existing 0644 file to 0600', async () => {
  const w = world();
  try {
    const before = {
      auths: { 'other.example': { auth: b64('o:o') }, 'docker.io': { auth: b64('old:old') } },
      psFormat: 'table {{.ID}}',
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
      HttpHeaders: { 'User-Agent': 'x' },
    };
    w.writeJson(w.files.docker, before, 0o644);
    assert.is(fs.statSync(w.files.docker).mode & 0o777, 0o644);
    await storeCredentials(w.ctx, 'docker.io', { username: 'new', password: 'pw' });
    assert.is(fs.statSync(w.files.docker).mode & 0o777, 0o600);
    const after = JSON.parse(fs.readFileSync(w.files.docker, 'utf8'));
    assert.equal(after.psFormat, before.psFormat);
    assert.equal(after.proxies, before.proxies);
    assert.equal(after.HttpHeaders, before.HttpHeaders);
    assert.equal(after.auths, {
      'other.example': { auth: b64('o:o') },
      'https://index.docker.io/v1/': { auth: b64('new:pw') },
    });
  } finally {
    w.cleanup();
  }
});

test('eraseCredentials: removes from the Docker config and from auth.json files; false when nothing', async () => {
  const w = world();
  try {
    w.writeJson(w.files.docker, {
      auths: { 'https://reg.example': { auth: b64('a:b') }, 'keep.example': { auth: b64('k:k') } },
      psFormat: 'x',
    });
    w.writeJson(w.files.user, { auths: { 'reg.example': { auth: b64('c:d') } } });
    assert.is(await eraseCredentials(w.ctx, 'reg.example'), true);
    const docker = JSON.parse(fs.readFileSync(w.files.docker, 'utf8'));
    assert.equal(docker, { auths: { 'keep.example': { auth: b64('k:k') } }, psFormat: 'x' });
    assert.equal(JSON.parse(fs.readFileSync(w.files.user, 'utf8')), { auths: {} });
    assert.is(fs.statSync(w.files.user).mode & 0o777, 0o600);
    assert.is(await lookupCredentials(w.ctx, 'reg.example'), undefined);
    assert.is(await eraseCredentials(w.ctx, 'reg.example'), false);
    assert.is(await eraseCredentials(w.ctx, 'never.example'), false);
    assert.not.ok(fs.existsSync(w.files.runtime), 'missing files are not created');
  } finally {
    w.cleanup();
  }
});

test('readAuthFile: missing and empty files are empty', async () => {
  const w = world();
  try {
    const missing = await readAuthFile(path.join(w.root, 'nope.json'), 'containers');
    assert.is(missing.exists, false);
    fs.writeFileSync(path.join(w.root, 'empty.json'), '');
    const empty = await readAuthFile(path.join(w.root, 'empty.json'), 'containers');
    assert.equal(empty.auths, {});
  } finally {
    w.cleanup();
  }
});

test.run();
