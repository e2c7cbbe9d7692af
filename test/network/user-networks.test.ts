/**
 * The pure parts of user networks: subnet parsing (Docker's messages), the configuration list
 * an attachment gets (the first network alone routes; --internal neither routes nor masquerades)
 * and the resolv.conf of a container on user networks. The host side (bridges, rules, DNS) runs
 * end to end in test/e2e/networks.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCidr, userConfList, type UserNetwork } from '../../src/network/user-networks.js';
import { userResolvConf } from '../../src/network/dns.js';
import { isTsrunError } from '../../src/errors.js';

const U = suite('network user-networks');

const net = (o: Partial<UserNetwork> = {}): UserNetwork => ({
  Name: 'todo-app',
  Id: 'ab'.repeat(32),
  Created: '2026-11-30T00:00:00Z',
  Subnet: '10.90.3.0/24',
  Gateway: '10.90.3.1',
  Internal: false,
  UserSubnet: false,
  Labels: {},
  Options: {},
  ...o,
});

U("parseCidr: the network of any address in it; Docker's message for what is not a CIDR", () => {
  assert.equal(parseCidr('10.1.2.77/24'), { first: 0x0a010200, last: 0x0a0102ff, bits: 24 });
  for (const bad of ['10.0.0/8', '300.1.1.0/24', '10.0.0.0/33', '10.0.0.0', 'fe80::/64']) {
    try {
      parseCidr(bad);
      assert.unreachable(bad);
    } catch (e) {
      assert.ok(isTsrunError(e), bad);
      assert.match((e as Error).message, `invalid CIDR address: ${bad}`);
    }
  }
  assert.throws(() => parseCidr('10.0.0.0/31'), /too small/);
});

U('userConfList: the bridge is named by id, the first attachment routes, no portmap (tsrun writes the ports)', () => {
  const first = userConfList(net(), { defaultRoute: true, mac: false });
  assert.is(first.name, `tsrun-net-${'ab'.repeat(6)}`);
  assert.equal(
    first.plugins.map((p) => p.type),
    ['bridge'],
  );
  const bridge = first.plugins[0] as Record<string, unknown>;
  assert.is(bridge.bridge, `tsbr-${'ab'.repeat(5)}`);
  // NAT and isolation are the network's rules (network/firewall.ts), not per container.
  assert.is(bridge.ipMasq, false);
  assert.equal((bridge.ipam as { routes: unknown }).routes, [{ dst: '0.0.0.0/0' }]);
  assert.equal((bridge.ipam as { ranges: unknown }).ranges, [[{ subnet: '10.90.3.0/24', gateway: '10.90.3.1' }]]);
  const second = userConfList(net(), { defaultRoute: false, mac: false });
  assert.equal((second.plugins[0]?.ipam as { routes: unknown }).routes, []);
  assert.equal(
    second.plugins.map((p) => p.type),
    ['bridge'],
  );
});

U('userConfList --internal: no default route, no masquerading, no published ports', () => {
  const l = userConfList(net({ Internal: true }), { defaultRoute: true, mac: true });
  const bridge = l.plugins[0] as Record<string, unknown>;
  assert.is(bridge.ipMasq, false);
  assert.equal((bridge.ipam as { routes: unknown }).routes, []);
  assert.equal(
    l.plugins.map((p) => p.type),
    ['bridge', 'tuning'],
  );
});

U("userResolvConf: the networks' DNS servers, the host's search and options, never its nameservers", () => {
  const host = 'nameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n# comment\n';
  assert.is(userResolvConf(host, ['10.90.3.1']), 'nameserver 10.90.3.1\nsearch example.org\noptions ndots:2\n');
});

U.run();
