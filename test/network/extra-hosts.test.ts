/**
 * --add-host, host.containers.internal and --dns/--dns-search/--dns-option, as Docker and podman
 * write them into a container's /etc/hosts and /etc/resolv.conf.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsrunError } from '../../src/errors.js';
import { extraHostLines, parseAddHost, withDnsOptions } from '../../src/network/extra-hosts.js';

test("--add-host: NAME:IP, NAME=IP, IPv6 (bare or bracketed), host-gateway; a bad address is Docker's error", () => {
  assert.equal(parseAddHost('db:10.1.2.3'), { name: 'db', ip: '10.1.2.3' });
  assert.equal(parseAddHost('db=10.1.2.3'), { name: 'db', ip: '10.1.2.3' });
  assert.equal(parseAddHost('v6:::1'), { name: 'v6', ip: '::1' });
  assert.equal(parseAddHost('v6:[fd00::2]'), { name: 'v6', ip: 'fd00::2' });
  assert.equal(parseAddHost('host.docker.internal:host-gateway'), { name: 'host.docker.internal', ip: 'host-gateway' });
  for (const bad of ['db', ':1.2.3.4', 'db:', 'db:300.1.1.1', 'db:name']) {
    assert.throws(
      () => parseAddHost(bad),
      (e: unknown) => e instanceof TsrunError && e.code === 'ERR_USAGE',
      bad,
    );
  }
  try {
    parseAddHost('db:nope');
  } catch (e) {
    assert.is(
      (e as Error).message,
      'invalid argument "db:nope" for "--add-host" flag: invalid IP address in add-host: "nope"',
    );
  }
});

test('/etc/hosts lines: --add-host entries with host-gateway resolved, then host.containers.internal; nothing for the host without an address', () => {
  const extra = [parseAddHost('db:10.1.2.3'), parseAddHost('host.docker.internal:host-gateway')];
  assert.is(
    extraHostLines(extra, '192.168.1.5'),
    '10.1.2.3\tdb\n192.168.1.5\thost.docker.internal\n192.168.1.5\thost.containers.internal\n',
  );
  assert.is(extraHostLines(extra, undefined), '10.1.2.3\tdb\n', '--network none: no host to name');
  assert.is(
    extraHostLines([parseAddHost('host.containers.internal:10.9.9.9')], '192.168.1.5'),
    '10.9.9.9\thost.containers.internal\n',
    "the user's entry wins",
  );
});

test('resolv.conf: --dns replaces the nameservers, --dns-search the search domains ("." none), --dns-option the options', () => {
  const host = '# from the host\nsearch corp.example\nnameserver 10.0.2.3\noptions ndots:2\n';
  assert.is(withDnsOptions(host, {}), host);
  assert.is(
    withDnsOptions(host, { dns: ['1.1.1.1', '::1'] }),
    '# from the host\nsearch corp.example\noptions ndots:2\nnameserver 1.1.1.1\nnameserver ::1\n',
  );
  assert.is(
    withDnsOptions(host, { dnsSearch: ['a.example', 'b.example'] }),
    'search a.example b.example\n# from the host\nnameserver 10.0.2.3\noptions ndots:2\n',
  );
  assert.is(withDnsOptions(host, { dnsSearch: ['.'] }), '# from the host\nnameserver 10.0.2.3\noptions ndots:2\n');
  assert.is(
    withDnsOptions(host, { dnsOption: ['ndots:5', 'timeout:1'] }),
    '# from the host\nsearch corp.example\nnameserver 10.0.2.3\noptions ndots:5 timeout:1\n',
  );
  assert.throws(() => withDnsOptions(host, { dns: ['dns.example'] }), /is not an ip address/);
});

test.run();
