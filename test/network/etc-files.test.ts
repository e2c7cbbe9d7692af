/**
 * /etc/hosts and /etc/resolv.conf as Docker writes them for a container.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hostsFile, resolvConf } from '../../src/network/etc-files.js';

const E = suite('network etc files');

E("hosts: loopback names always, the container's address with its hostname on the bridge", () => {
  assert.match(hostsFile('box'), /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
  assert.not.match(hostsFile('box'), /box/);
  assert.match(hostsFile('box', '10.66.0.5'), /\n10\.66\.0\.5\tbox\n$/);
});

E('resolv.conf: loopback nameservers dropped (unreachable from the container), Google DNS when none is left', () => {
  const host = '# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n';
  assert.is(resolvConf(host, false), '# generated\nsearch example.org\nnameserver 192.0.2.53\noptions edns0\n');
  assert.is(resolvConf('nameserver 127.0.0.53\nnameserver ::1\n', false), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  assert.is(resolvConf('', false), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  // --network host shares the host's loopback, so its file is kept as it is.
  assert.is(resolvConf('nameserver 127.0.0.53\n', true), 'nameserver 127.0.0.53\n');
});

E.run();
