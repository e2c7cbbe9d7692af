/** The test registry harness itself: it must be solid, since many suites build on it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { startRegistry } from '../helpers/registry.js';
import { pushAuthorization, uploadBlob } from '../helpers/push.js';

const status = async (url: string, headers: Record<string, string> = {}): Promise<number | string> => {
  try {
    const r = await fetch(url, { headers });
    await r.arrayBuffer();
    return r.status;
  } catch (e) {
    return (e as Error).message;
  }
};

test('anonymous: answers /v2/, stop() kills it and removes its temp dir', async () => {
  const reg = await startRegistry({ auth: 'anonymous' });
  assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
  assert.is(reg.url, `http://${reg.host}`);
  assert.is(await status(`${reg.url}/v2/`), 200);
  const digest = await uploadBlob(reg, 'h/a', Buffer.from('hello'));
  assert.is(await status(`${reg.url}/v2/h/a/blobs/${digest}`), 200);
  assert.ok(existsSync(reg.dir));
  await reg.stop();
  assert.not.ok(existsSync(reg.dir), 'temp dir removed');
  assert.type(await status(`${reg.url}/v2/`), 'string', 'nothing listens any more');
  await reg.stop(); // twice is fine
});

test('htpasswd: anonymous 401 with a Basic challenge, the user gets in, a wrong password does not', async () => {
  const reg = await startRegistry({ auth: 'htpasswd', users: { bob: 'builder' } });
  try {
    const r = await fetch(`${reg.url}/v2/`);
    assert.is(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
    const basic = (u: string, p: string) => ({ Authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64') });
    assert.is(await status(`${reg.url}/v2/`, basic('bob', 'builder')), 200);
    assert.is(await status(`${reg.url}/v2/`, basic('bob', 'nope')), 401);
  } finally {
    await reg.stop();
  }
});

test('token: the registry verifies our ES256 JWTs (x5c chain to the root bundle), forged ones fail, counts requests', async () => {
  const reg = await startRegistry({ auth: 'token', isPublic: (r) => r === 'pub/x' });
  try {
    const r = await fetch(`${reg.url}/v2/`);
    assert.is(r.status, 401);
    assert.match(
      r.headers.get('www-authenticate') ?? '',
      new RegExp(`Bearer realm="${reg.token!.realm}",service="${reg.token!.service}"`),
    );
    const before = reg.tokenRequests();
    const auth = await pushAuthorization(reg, 'priv/x');
    assert.is(reg.tokenRequests(), before + 1);
    assert.ok(auth?.startsWith('Bearer '));
    assert.is(await status(`${reg.url}/v2/`, { Authorization: auth! }), 200, 'a real token is accepted');
    const [h, p] = auth!.slice(7).split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64, 1).toString('base64url')}`;
    assert.is(await status(`${reg.url}/v2/`, { Authorization: `Bearer ${forged}` }), 401, 'a bad signature is refused');
    await uploadBlob(reg, 'priv/x', Buffer.from('data'), auth);
    // anonymous tokens carry no access to private repos
    const anon = (await (
      await fetch(`${reg.token!.realm}?service=${reg.token!.service}&scope=repository:priv/x:pull`)
    ).json()) as { token: string };
    assert.is(await status(`${reg.url}/v2/priv/x/tags/list`, { Authorization: `Bearer ${anon.token}` }), 401);
    const wrong = await fetch(`${reg.token!.realm}?service=s`, {
      headers: { Authorization: 'Basic ' + Buffer.from('alice:bad').toString('base64') },
    });
    assert.is(wrong.status, 401);
    assert.is(reg.tokenRequestLog().at(-1)!.status, 401);
  } finally {
    await reg.stop();
  }
});

test.run();
