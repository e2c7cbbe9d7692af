/**
 * The network-wide rules (network/firewall.ts): what each network gets, checked line by line,
 * and the whole text checked by the real `iptables-restore --test` (parsed and built, never
 * committed: the host's rules are not touched). The rules at work (NAT out, isolation between
 * networks, --internal) run end to end in test/e2e/network.test.ts and networks.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { rulesText, type RuleNet } from '../../src/network/firewall.js';

const F = suite('network firewall');

const O = { userPrefix: 'tsbr-', defaultBridge: 'tsrun0' };
const DEF: RuleNet = { bridge: 'tsrun0', subnet: '10.66.0.0/16', internal: false, isolated: false };
const USER: RuleNet = { bridge: 'tsbr-0123456789', subnet: '10.90.0.0/24', internal: false, isolated: true };
const INTERNAL: RuleNet = { bridge: 'tsbr-abcdefabcd', subnet: '10.90.1.0/24', internal: true, isolated: true };

const lines = (t: string) => t.split('\n');

F('the default bridge: masquerade out of the subnet, accept forwarding, no isolation', () => {
  const l = lines(rulesText([DEF], O));
  assert.ok(l.includes('-A TSRUN-POSTROUTING -s 10.66.0.0/16 -d 10.66.0.0/16 -j RETURN'));
  assert.ok(l.includes('-A TSRUN-POSTROUTING -s 10.66.0.0/16 ! -o tsrun0 -j MASQUERADE'));
  assert.ok(l.includes('-A TSRUN-FORWARD -i tsrun0 -j ACCEPT'));
  // The isolation chain is run first, before any accept.
  assert.ok(l.indexOf('-A TSRUN-FORWARD -j TSRUN-ISOLATION') < l.indexOf('-A TSRUN-FORWARD -i tsrun0 -j ACCEPT'));
  assert.not.ok(l.some((x) => x.startsWith('-A TSRUN-ISOLATION')));
});

F('a published port reached from another machine is forwarded (DNATed, into a bridge that is not internal)', () => {
  const l = lines(rulesText([DEF, USER, INTERNAL], O));
  assert.ok(l.includes('-A TSRUN-FORWARD -o tsrun0 -m conntrack --ctstate DNAT -j ACCEPT'));
  assert.ok(l.includes('-A TSRUN-FORWARD -o tsbr-0123456789 -m conntrack --ctstate DNAT -j ACCEPT'));
  assert.not.ok(l.some((x) => x.includes('tsbr-abcdefabcd -m conntrack --ctstate DNAT')));
  // After the isolation chain: networks stay cut off from each other.
  assert.ok(
    l.indexOf('-A TSRUN-FORWARD -j TSRUN-ISOLATION') <
      l.indexOf('-A TSRUN-FORWARD -o tsrun0 -m conntrack --ctstate DNAT -j ACCEPT'),
  );
});

F('a user network is cut off from the other tsrun bridges both ways; its own traffic returns first', () => {
  const l = lines(rulesText([DEF, USER], O));
  const own = l.indexOf('-A TSRUN-ISOLATION -i tsbr-0123456789 -o tsbr-0123456789 -j RETURN');
  assert.ok(own >= 0);
  for (const r of [
    '-A TSRUN-ISOLATION -i tsbr-0123456789 -o tsbr-+ -j DROP',
    '-A TSRUN-ISOLATION -o tsbr-0123456789 -i tsbr-+ -j DROP',
    '-A TSRUN-ISOLATION -i tsbr-0123456789 -o tsrun0 -j DROP',
    '-A TSRUN-ISOLATION -o tsbr-0123456789 -i tsrun0 -j DROP',
  ]) {
    assert.ok(l.indexOf(r) > own, r);
  }
  assert.ok(l.includes('-A TSRUN-POSTROUTING -s 10.90.0.0/24 ! -o tsbr-0123456789 -j MASQUERADE'));
});

F('an internal network: no NAT, nothing in or out but its own bridge', () => {
  const t = rulesText([DEF, INTERNAL], O);
  assert.not.ok(t.includes('-s 10.90.1.0/24'), 'no NAT rule');
  const l = lines(t);
  assert.ok(l.includes('-A TSRUN-ISOLATION -i tsbr-abcdefabcd -j DROP'));
  assert.ok(l.includes('-A TSRUN-ISOLATION -o tsbr-abcdefabcd -j DROP'));
  assert.ok(
    l.indexOf('-A TSRUN-ISOLATION -i tsbr-abcdefabcd -o tsbr-abcdefabcd -j RETURN') <
      l.indexOf('-A TSRUN-ISOLATION -i tsbr-abcdefabcd -j DROP'),
  );
});

F("the jumps into tsrun's chains and the ports' chain: added only when iptables-save lacks them", () => {
  const fresh = lines(rulesText([DEF], O));
  for (const r of [
    '-I POSTROUTING 1 -j TSRUN-HOSTPORT-MASQ',
    '-A POSTROUTING -j TSRUN-POSTROUTING',
    '-A PREROUTING -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT',
    '-A OUTPUT -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT',
    '-I FORWARD 1 -j TSRUN-FORWARD',
    ':TSRUN-HOSTPORT-DNAT - [0:0]',
  ])
    assert.ok(fresh.includes(r), r);
  // Once there, none is added again, and the ports' chain (containers' jumps) is not declared: flushed.
  const save = `*nat
:TSRUN-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT
-A POSTROUTING -j TSRUN-HOSTPORT-MASQ
-A POSTROUTING -j TSRUN-POSTROUTING
-A TSRUN-HOSTPORT-DNAT -p tcp -m multiport --dports 80 -j TSRUN-DN-0123456789ab
COMMIT
*filter
-A FORWARD -j TSRUN-FORWARD
COMMIT
`;
  const again = rulesText([DEF], O, save);
  assert.not.match(again, /^-[AI] (POSTROUTING|PREROUTING|OUTPUT|FORWARD) /m);
  assert.not.match(again, 'TSRUN-HOSTPORT-DNAT');
  // The masquerade of marked (127.0.0.1 and hairpin) connections is the network's, rebuilt each time.
  assert.ok(lines(again).includes('-A TSRUN-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE'));
});

F('iptables-restore accepts the text as it is (--test: parsed and built, not committed)', async () => {
  for (const nets of [[], [DEF], [DEF, USER, INTERNAL]]) {
    const r = await execa('iptables-restore', ['-w', '--noflush', '--test'], {
      input: rulesText(nets, O),
      reject: false,
    });
    assert.is(r.exitCode, 0, r.stderr);
  }
});

F.run();
