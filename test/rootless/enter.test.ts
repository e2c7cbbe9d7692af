import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { needsNamespace, verbOf } from '../../src/rootless/enter.js';
import { subordinateRange } from '../../src/rootless/namespace.js';

const E = suite('rootless: who enters the namespace, and the subordinate ranges');

E('the verb after global options', () => {
  assert.is(verbOf(['--root', '/x', '--debug', 'run', '-it', 'img']), 'run');
  assert.is(verbOf(['--debug']), undefined);
  assert.is(verbOf(['--config', '/cfg', 'login', 'r.io']), 'login', 'the value of --config is not the verb');
});

E('store commands of a non-root user enter; root, help, version, login and info do not', () => {
  const env = {};
  assert.ok(needsNamespace(['pull', 'busybox'], 1000, env));
  assert.ok(needsNamespace(['--root', '/r', 'system', 'prune'], 1000, env));
  assert.not.ok(needsNamespace(['pull', 'busybox'], 0, env));
  assert.not.ok(needsNamespace(['pull', 'busybox'], 1000, { TSRUN_ROOTLESS: '1000' }), 'already inside');
  for (const argv of [[], ['--help'], ['run', '--help'], ['--version'], ['login', 'r.io'], ['logout'], ['info'], ['system', 'info']]) {
    assert.not.ok(needsNamespace(argv, 1000, env), argv.join(' '));
  }
});

E('/etc/subuid: by name or uid, the first usable range', () => {
  const text = 'other:100000:65536\n1000:165536:65536\nme:231072:0\nme:300000:1000\n';
  assert.equal(subordinateRange(text, 'alice', 1000), { start: 165536, count: 65536 });
  assert.equal(subordinateRange(text, 'me', 5), { start: 300000, count: 1000 }, 'an empty range is skipped');
  assert.is(subordinateRange(text, 'nobody', 7), undefined);
});
E.run();
