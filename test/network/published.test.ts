/**
 * Published ports' rules (network/published.ts): the iptables-restore text of one container's
 * ports, checked line by line against what the portmap plugin writes (mark for hairpin and
 * 127.0.0.1, then DNAT; jumps per protocol through multiport), the text that removes them, the
 * removal read back from iptables-save for a container whose record is gone, and the whole texts
 * run by the real iptables-restore inside a private network namespace (the host's rules are
 * never touched). The rules at work (-p from 127.0.0.1 and the host's address) run end to end in
 * test/e2e/network.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { rulesText } from '../../src/network/firewall.js';
import {
  chainIds,
  portChain,
  publishText,
  removalFromSave,
  unpublishText,
  type PortTarget,
} from '../../src/network/published.js';

const P = suite('network published ports');

const ID = `0123456789ab${'c'.repeat(52)}`;
const T: PortTarget = {
  id: ID,
  ip: '10.66.0.5',
  prefixLen: 16,
  ports: [
    { hostIP: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostIP: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
    { hostIP: '::1', hostPort: 9090, containerPort: 90, protocol: 'tcp' },
  ],
};
const lines = (t: string) => t.trim().split('\n');

P('the chain is named by the short id and fits iptables (28 characters)', () => {
  assert.is(portChain(ID), 'TSRUN-DN-0123456789ab');
  assert.ok(portChain(ID).length <= 28);
});

P('per port: hairpin and 127.0.0.1 marked for masquerading, then DNAT; a host address limits all three', () => {
  const l = lines(publishText(T));
  assert.equal(l.slice(0, 2), ['*nat', ':TSRUN-DN-0123456789ab - [0:0]']);
  const tcp = [
    '-A TSRUN-DN-0123456789ab -s 10.66.0.0/16 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000',
    '-A TSRUN-DN-0123456789ab -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x2000/0x2000',
    '-A TSRUN-DN-0123456789ab -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.66.0.5:80',
  ];
  const udp = [
    '-A TSRUN-DN-0123456789ab -s 10.66.0.0/16 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j MARK --set-xmark 0x2000/0x2000',
    '-A TSRUN-DN-0123456789ab -s 127.0.0.1/32 -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j MARK --set-xmark 0x2000/0x2000',
    '-A TSRUN-DN-0123456789ab -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.66.0.5:53',
  ];
  assert.equal(l.slice(2, 8), [...tcp, ...udp]);
  // The jumps, one per protocol, commented with the full id; the IPv6 mapping gets nothing.
  assert.equal(l.slice(8), [
    `-A TSRUN-HOSTPORT-DNAT -p tcp -m comment --comment "tsrun ports id: ${ID}" -m multiport --dports 8080 -j TSRUN-DN-0123456789ab`,
    `-A TSRUN-HOSTPORT-DNAT -p udp -m comment --comment "tsrun ports id: ${ID}" -m multiport --dports 5353 -j TSRUN-DN-0123456789ab`,
    'COMMIT',
  ]);
  assert.not.match(publishText(T), '9090');
});

P('a range of more than 15 ports is split over several jumps (multiport takes 15)', () => {
  const ports = Array.from({ length: 20 }, (_, i) => ({
    hostIP: '',
    hostPort: 8000 + i,
    containerPort: 80 + i,
    protocol: 'tcp' as const,
  }));
  const jumps = lines(publishText({ ...T, ports })).filter((x) => x.startsWith('-A TSRUN-HOSTPORT-DNAT'));
  assert.is(jumps.length, 2);
  assert.match(jumps[0] ?? '', /--dports 8000,8001,.*,8014 -j/);
  assert.match(jumps[1] ?? '', /--dports 8015,8016,8017,8018,8019 -j/);
});

P('unpublish deletes exactly the jumps publish added, then flushes and deletes the chain', () => {
  const l = lines(unpublishText(T));
  const added = lines(publishText(T))
    .filter((x) => x.startsWith('-A TSRUN-HOSTPORT-DNAT'))
    .map((x) => `-D${x.slice(2)}`);
  assert.equal(l, ['*nat', ...added, ':TSRUN-DN-0123456789ab - [0:0]', '-X TSRUN-DN-0123456789ab', 'COMMIT']);
});

const SAVE = `*nat
:PREROUTING ACCEPT [0:0]
:TSRUN-DN-0123456789ab - [0:0]
:TSRUN-DN-fedcba987654 - [0:0]
:TSRUN-HOSTPORT-DNAT - [0:0]
-A TSRUN-DN-0123456789ab -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.66.0.5:80
-A TSRUN-HOSTPORT-DNAT -p tcp -m comment --comment "tsrun ports id: ${ID}" -m multiport --dports 8080 -j TSRUN-DN-0123456789ab
-A TSRUN-HOSTPORT-DNAT -p tcp -m comment --comment "tsrun ports id: fedcba987654" -m multiport --dports 9 -j TSRUN-DN-fedcba987654
COMMIT
`;

P('without a record: the chain and what jumps to it, read back from iptables-save', () => {
  assert.equal(chainIds(SAVE), ['0123456789ab', 'fedcba987654']);
  assert.equal(lines(removalFromSave(SAVE, '0123456789ab') ?? ''), [
    '*nat',
    `-D TSRUN-HOSTPORT-DNAT -p tcp -m comment --comment "tsrun ports id: ${ID}" -m multiport --dports 8080 -j TSRUN-DN-0123456789ab`,
    ':TSRUN-DN-0123456789ab - [0:0]',
    '-X TSRUN-DN-0123456789ab',
    'COMMIT',
  ]);
  assert.is(removalFromSave(SAVE, '111111111111'), undefined);
});

// The real iptables-restore, in a network namespace of its own (unshare -n: empty tables).
async function inNetns(script: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('unshare', ['-n', 'sh', '-ec', script], { reject: false });
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

P('iptables-restore takes the texts in order: network rules, publish, unpublish; nothing is left', async () => {
  const net = rulesText([{ bridge: 'tsrun0', subnet: '10.66.0.0/16', internal: false, isolated: false }], {
    userPrefix: 'tsbr-',
    defaultBridge: 'tsrun0',
  });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const r = await inNetns(
    [
      `printf %s ${q(net)} | iptables-restore -w --noflush`,
      `printf %s ${q(publishText(T))} | iptables-restore -w --noflush`,
      'iptables-save -t nat >&2',
      `printf %s ${q(unpublishText(T))} | iptables-restore -w --noflush`,
      // A second removal fails: the rules are gone (tsrun then reads them back, finding none).
      `if printf %s ${q(unpublishText(T))} | iptables-restore -w --noflush 2>/dev/null; then echo again; fi`,
      'iptables-save -t nat',
    ].join('\n'),
  );
  assert.is(r.exitCode, 0, r.stderr);
  // What publish wrote, as iptables-save spells it: the same lines.
  for (const l of lines(publishText(T)).filter((x) => x.startsWith('-A '))) assert.ok(r.stderr.includes(l), l);
  assert.ok(r.stderr.includes('-A PREROUTING -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT'));
  assert.ok(r.stderr.includes('-A OUTPUT -m addrtype --dst-type LOCAL -j TSRUN-HOSTPORT-DNAT'));
  assert.ok(r.stderr.includes('-A TSRUN-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE'));
  assert.not.match(r.stdout, 'again');
  assert.not.match(r.stdout, 'TSRUN-DN-');
  assert.match(r.stdout, ':TSRUN-HOSTPORT-DNAT');
  assert.equal(chainIds(r.stdout), []);
});

P.run();
