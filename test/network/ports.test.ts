/**
 * `-p`/`-P` parsing as Docker's (go-connections nat.ParsePortSpec) reads it, host port choice,
 * and the `ps`/`port` views.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { assignHostPorts, parsePublish, portLines, publishAll, type PortMapping } from '../../src/network/ports.js';
import { isTsrunError } from '../../src/errors.js';

const P = suite('network ports');

const m = (hostIP: string, hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortMapping => ({
  hostIP,
  hostPort,
  containerPort,
  protocol,
});

P('the forms Docker documents', () => {
  assert.equal(parsePublish('80'), [m('', 0, 80)]);
  assert.equal(parsePublish('8080:80'), [m('', 8080, 80)]);
  assert.equal(parsePublish('127.0.0.1:8080:80'), [m('127.0.0.1', 8080, 80)]);
  assert.equal(parsePublish('127.0.0.1::80'), [m('127.0.0.1', 0, 80)]);
  assert.equal(parsePublish('53:53/udp'), [m('', 53, 53, 'udp')]);
  assert.equal(parsePublish('8080:80/TCP'), [m('', 8080, 80)]);
  assert.equal(parsePublish('[::1]:8080:80'), [m('::1', 8080, 80)]);
  assert.equal(parsePublish('8000-8002:80-82'), [m('', 8000, 80), m('', 8001, 81), m('', 8002, 82)]);
  assert.equal(parsePublish('7000-7001'), [m('', 0, 7000), m('', 0, 7001)]);
  assert.equal(parsePublish('9000-9010:80'), [{ ...m('', 0, 80), hostRange: [9000, 9010] }]);
});

P('what Docker refuses, with the spec named', () => {
  const bad = [
    '',
    '0',
    '70000',
    '80:',
    'a:80',
    '1.2.3.4:5:6:7',
    '300.1.1.1:80:80',
    '8000-8001:80-82',
    '80/sctp',
    '80/icmp',
    '90-80',
    '[::1:80:80',
    'localhost:80:80',
  ];
  for (const spec of bad) {
    try {
      parsePublish(spec);
      assert.unreachable(`accepted "${spec}"`);
    } catch (e) {
      assert.ok(isTsrunError(e, 'ERR_USAGE'), `"${spec}": ${String(e)}`);
      assert.match((e as Error).message, `"${spec}"`);
    }
  }
});

P('-P publishes every exposed port, tcp by default', () => {
  assert.equal(publishAll(['80/tcp', '53/udp', '8080', '9000-9001/tcp']), [
    m('', 0, 80),
    m('', 0, 53, 'udp'),
    m('', 0, 8080),
    m('', 0, 9000),
    m('', 0, 9001),
  ]);
});

P(
  'assignHostPorts: any free port, a taken port is ERR_PORT_IN_USE, ranges skip taken ports, no port twice',
  async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '0.0.0.0', r));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const [any] = await assignHostPorts([m('', 0, 80)]);
      assert.ok(any && any.hostPort > 0 && any.hostPort !== taken);
      try {
        await assignHostPorts([m('', taken, 80)]);
        assert.unreachable('a taken port was accepted');
      } catch (e) {
        assert.ok(isTsrunError(e, 'ERR_PORT_IN_USE'));
        assert.match((e as Error).message, `Bind for 0.0.0.0:${taken} failed: port is already allocated`);
      }
      const [ranged] = await assignHostPorts([{ ...m('', 0, 80), hostRange: [taken, taken + 1] }]);
      assert.is(ranged?.hostPort, taken + 1);
      const two = await assignHostPorts([m('', 0, 80), m('', 0, 81)]);
      assert.is.not(two[0]?.hostPort, two[1]?.hostPort);
      try {
        await assignHostPorts([m('', taken + 1, 80), m('', taken + 1, 81)]);
        assert.unreachable('one host port published twice');
      } catch (e) {
        assert.ok(isTsrunError(e, 'ERR_USAGE'), String(e));
      }
      // The same number over udp is another port.
      const [udp] = await assignHostPorts([m('', taken, 53, 'udp')]);
      assert.is(udp?.hostPort, taken);
    } finally {
      holder.close();
    }
  },
);

P('`port` output as Docker prints it (ps PORTS: test/cli/views.test.ts)', () => {
  const pub = [m('', 8080, 80), m('127.0.0.1', 5353, 53, 'udp'), m('::1', 9000, 90)];
  assert.equal(portLines(pub), ['53/udp -> 127.0.0.1:5353', '80/tcp -> 0.0.0.0:8080', '90/tcp -> [::1]:9000']);
  assert.equal(portLines(pub, '80'), ['0.0.0.0:8080']);
  assert.equal(portLines(pub, '53/udp'), ['127.0.0.1:5353']);
  assert.is(portLines(pub, '53'), undefined);
});

P.run();
