/**
 * Named network namespaces (src/network/netns.ts) as `ip netns` sees them: made without `ip`
 * once /run/netns is set up, a new namespace (not ours) kept by a mount `ip netns list` shows, a
 * name made once only (the error names it and nothing is left), removed by delete, which is
 * idempotent. As root (the bridge network is root's).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { addNetns, deleteNetns, netnsFile } from '../../src/network/netns.js';
import { isTsrunError } from '../../src/errors.js';

const S = suite('network netns');
const name = `tsrun-test-${process.pid}`;
S.after(() => deleteNetns(name, process.env));

S('add: a new namespace on /run/netns/NAME that ip sees; a second add fails and keeps the first', async () => {
  await addNetns(name, process.env);
  const file = netnsFile(name);
  assert.ok(existsSync(file));
  assert.is.not(statSync(file).ino, statSync('/proc/self/ns/net').ino);
  assert.ok(
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.startsWith(name)),
  );
  // ip can enter it: loopback only, down.
  const links = execFileSync('ip', ['netns', 'exec', name, 'ip', '-o', 'link'], { encoding: 'utf8' });
  assert.match(links, /^1: lo:/);
  assert.is(links.trim().split('\n').length, 1);
  const again = await addNetns(name, process.env).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isTsrunError(again) && again.code === 'ERR_CNI' && again.message.includes(name), String(again));
  assert.ok(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(name));
});

S('delete: the mount and the file go; deleting again is no error', async () => {
  await deleteNetns(name, process.env);
  assert.not.ok(existsSync(netnsFile(name)));
  assert.not.ok(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(name));
  await deleteNetns(name, process.env);
});

S.run();
