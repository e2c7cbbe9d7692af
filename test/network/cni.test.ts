/**
 * The CNI execution protocol as the spec states it, checked against stand-in plugins (shell
 * scripts that record what they were given), plus the bridge network's subnet choice.
 * The real plugins are exercised end to end in test/e2e/network.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addList, delList, type ConfList } from '../../src/network/cni.js';
import { bridgeConfList, chooseSubnet, netnsFirst } from '../../src/network/bridge.js';
import { isTsrunError } from '../../src/errors.js';

const C = suite('network cni');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-'));
const log = path.join(dir, 'calls.log');

function plugin(name: string, body = ''): void {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `#!/bin/sh
input=$(cat)
echo "$(basename "$0") $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_PATH" >> ${log}
printf '%s\\n' "$input" >> ${log}.json
${body}
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}],"interfaces":[{"name":"'$(basename "$0")'"}]}'
exit 0
`,
  );
  chmodSync(file, 0o755);
}

function calls(): { lines: string[]; inputs: Record<string, unknown>[] } {
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  const inputs = readFileSync(`${log}.json`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  rmSync(log);
  rmSync(`${log}.json`);
  return { lines, inputs };
}

const inv = { containerId: 'c0ffee', netns: '/run/netns/x', ifName: 'eth0', paths: [dir] };

C.before(() => {
  plugin('first');
  plugin('second');
  plugin('fail', '[ "$CNI_COMMAND" = ADD ] && { echo \'{"code":11,"msg":"no luck","details":"in a test"}\'; exit 1; }');
});
C.after(() => rmSync(dir, { recursive: true, force: true }));

C(
  'ADD: plugins in order, CNI_* variables, name and version injected, prevResult chained, only granted runtimeConfig',
  async () => {
    const list: ConfList = {
      cniVersion: '1.0.0',
      name: 'net1',
      plugins: [
        { type: 'first', x: 1 },
        { type: 'second', capabilities: { portMappings: true } },
      ],
    };
    const result = await addList(list, inv, { portMappings: [{ hostPort: 8080 }], bandwidth: { rate: 1 } });
    assert.equal(result.interfaces, [{ name: 'second' }]);
    const { lines, inputs } = calls();
    assert.equal(lines, [`first ADD c0ffee /run/netns/x eth0 ${dir}`, `second ADD c0ffee /run/netns/x eth0 ${dir}`]);
    assert.equal(inputs[0], { type: 'first', x: 1, cniVersion: '1.0.0', name: 'net1' });
    assert.equal(inputs[1]?.runtimeConfig, { portMappings: [{ hostPort: 8080 }] });
    assert.equal((inputs[1]?.prevResult as { interfaces: unknown }).interfaces, [{ name: 'first' }]);
    assert.is(inputs[1]?.capabilities, undefined);
  },
);

C("a failed ADD deletes the whole list again, in reverse; the error carries the plugin's message", async () => {
  const list: ConfList = {
    cniVersion: '1.0.0',
    name: 'net2',
    plugins: [{ type: 'first' }, { type: 'fail' }, { type: 'second' }],
  };
  try {
    await addList(list, inv);
    assert.unreachable('ADD succeeded');
  } catch (e) {
    assert.ok(isTsrunError(e, 'ERR_CNI'));
    assert.match((e as Error).message, 'CNI plugin fail ADD for container c0ffee: no luck: in a test');
  }
  const { lines, inputs } = calls();
  assert.equal(
    lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
    ['first ADD', 'fail ADD', 'second DEL', 'fail DEL', 'first DEL'],
  );
  // DEL gets the last successful result as prevResult.
  assert.equal((inputs[2]?.prevResult as { interfaces: unknown }).interfaces, [{ name: 'first' }]);
});

C('DEL runs every plugin even when one fails, then reports the first failure', async () => {
  plugin('faildel', '[ "$CNI_COMMAND" = DEL ] && { echo \'{"code":7,"msg":"cannot delete"}\'; exit 1; }');
  const list: ConfList = {
    cniVersion: '1.0.0',
    name: 'net3',
    plugins: [{ type: 'first' }, { type: 'faildel' }, { type: 'second' }],
  };
  try {
    await delList(list, inv, undefined);
    assert.unreachable('DEL succeeded');
  } catch (e) {
    assert.match((e as Error).message, 'cannot delete');
  }
  assert.equal(
    calls().lines.map((l) => l.split(' ')[0]),
    ['second', 'faildel', 'first'],
  );
});

C('a missing plugin names itself and the package that has it', async () => {
  try {
    await addList({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'nosuch' }] }, inv);
    assert.unreachable('ran a missing plugin');
  } catch (e) {
    assert.ok(isTsrunError(e, 'ERR_CNI'));
    assert.match((e as Error).message, 'finding the CNI plugin "nosuch"');
    assert.match((e as { hint: string }).hint, 'containernetworking-plugins');
  }
});

const ROUTES = (extra: string) => `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
${extra}`;

C(
  "subnet: the bridge's own route wins, else the first candidate no route overlaps (the default route does not count)",
  () => {
    assert.is(chooseSubnet(ROUTES('')), '10.66.0.0/16');
    assert.is(chooseSubnet(ROUTES('tsrun0\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0')), '10.89.0.0/24');
    // 10.0.0.0/8 on a VPN covers every 10.x candidate.
    assert.is(chooseSubnet(ROUTES('tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0')), '172.30.0.0/16');
    // A /24 inside 10.66/16 rules that one out only.
    assert.is(chooseSubnet(ROUTES('eth1\t0005420A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0')), '10.67.0.0/16');
    const list = bridgeConfList('10.66.0.0/16');
    const ipam = list.plugins[0]?.ipam as { ranges: { subnet: string; gateway: string }[][] };
    assert.equal(ipam.ranges, [[{ subnet: '10.66.0.0/16', gateway: '10.66.0.1' }]]);
    assert.equal(
      list.plugins.map((p) => p.type),
      ['bridge', 'portmap'],
    );
    // NAT is the network's rule (network/firewall.ts): no per-container iptables in the list.
    assert.is(list.plugins[0]?.ipMasq, false);
    // Its DEL needs no namespace (removed first); an older list's, or tuning's, does.
    assert.ok(netnsFirst(list));
    assert.not.ok(netnsFirst({ ...list, plugins: [...list.plugins, { type: 'tuning' }] }));
    assert.not.ok(netnsFirst({ ...list, plugins: [{ ...list.plugins[0], type: 'bridge', ipMasq: true }] }));
    assert.not.ok(netnsFirst({ ...list, plugins: [...list.plugins, { type: 'firewall', backend: 'iptables' }] }));
  },
);

C.run();
