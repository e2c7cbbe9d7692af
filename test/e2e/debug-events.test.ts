/**
 * End to end: `--debug` prints every event of a container's life as a JSON line (src/events.ts),
 * with the real values — and never a secret. A private image is pulled by `run` with a stored
 * login, the container gets `-e` variables and an exec gets its own; the whole --debug output of
 * run, run -d, exec, stop and rm must hold neither the registry password (nor its base64 form)
 * nor any `-e` value, while the events name the stages: the missing image, the bundle and its
 * config.json, the overlay's lowerdirs, the name files, the network namespace, each CNI plugin
 * call, the address, each runtime argv, the monitor and the runtime create it runs, exec, stop
 * and remove.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tsrun } from './cli.js';
import { pushBusybox } from './fixtures.js';
import { leftovers, runDir } from './containers.js';
import { freePort } from '../helpers/net.js';

const PASSWORD = 'pw-Dq93-never-in-events';
const USER = 'dave';
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
const RUN_SECRET = 'run-secret-5f0c9e';
const FILE_SECRET = 'file-secret-77a1b2';
const EXEC_SECRET = 'exec-secret-c4d3e2';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-debug-'));
const root = path.join(tmp, 'root');
const HOME = path.join(tmp, 'home');
let hub: TestRegistry;
let IMAGE = '';

const D = suite('e2e debug events');
D.before(async () => {
  hub = await startRegistry({ auth: 'token', users: { [USER]: PASSWORD } });
  await pushBusybox(hub, 'dave/private', '1', { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
  await pushBusybox(hub, 'dave/private', 'cmd', { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['true'] });
  IMAGE = `${hub.host}/dave/private:1`;
  const login = await tsrun(['login', '-u', USER, '--password-stdin', hub.host], {
    root,
    env: { HOME },
    input: PASSWORD,
  });
  assert.is(login.code, 0, login.stderr);
});
D.after(async () => {
  await hub?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

type Event = { type: string; [k: string]: unknown };

async function debug(args: string[]): Promise<{ code: number; stdout: string; stderr: string; events: Event[] }> {
  const r = await tsrun(['--debug', ...args], { root, env: { HOME } });
  const text = r.stdout + r.stderr;
  for (const secret of [PASSWORD, BASIC, RUN_SECRET, FILE_SECRET, EXEC_SECRET])
    assert.not.ok(text.includes(secret), `tsrun ${args.join(' ')} --debug printed a secret:\n${text}`);
  // The registry's bearer tokens are JWTs (base64url JSON: "eyJ…"); none may be printed.
  assert.not.match(text, /eyJ[\w-]{8,}/, 'a token');
  assert.not.match(text, /Bearer [\w.-]/, 'an Authorization header');
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('DEBU '))
    .map((l) => JSON.parse(l.slice(5)) as Event);
  return { ...r, events };
}

const ofType = (events: Event[], type: string) => events.filter((e) => e.type === type);

D('run --rm: pull with a login, bundle, mount, name files, bridge, runtime — and no secret', async () => {
  const envFile = path.join(tmp, 'env');
  (await import('node:fs')).writeFileSync(envFile, `FILE_VAR=${FILE_SECRET}\n`);
  const port = await freePort();
  const r = await debug([
    'run',
    '--rm',
    '-p',
    `${port}:80`,
    '-e',
    `RUN_VAR=${RUN_SECRET}`,
    '--env-file',
    envFile,
    IMAGE,
    'true',
  ]);
  assert.is(r.code, 0, r.stderr);
  // The text Docker prints is still there, beside the events.
  assert.match(r.stderr, `Unable to find image '${IMAGE}' locally`);
  assert.equal(ofType(r.events, 'image-not-local'), [{ type: 'image-not-local', reference: IMAGE }]);

  const [created] = ofType(r.events, 'container-create');
  assert.ok(created, 'a container-create event');
  assert.ok((created.envNames as string[]).includes('RUN_VAR'));
  assert.ok((created.envNames as string[]).includes('FILE_VAR'));
  assert.is(created.config, path.join(created.bundle as string, 'config.json'));
  assert.equal(created.args, ['true']);
  const prov = created.provenance as Record<string, any>;
  assert.is(prov.args.from, 'command line');
  assert.equal(prov.env.RUN_VAR, { from: 'flag', flag: '-e' });
  assert.equal(prov.env.FILE_VAR, { from: 'flag', flag: '--env-file' });
  assert.equal(prov.env.PATH, { from: 'image', detail: 'ENV' });
  assert.is(prov.user.from, 'default');
  assert.is(prov.namespaces.network.from, 'default');
  assert.is(prov.mounts['/etc/hosts'].from, 'default');

  // Each HTTP request of the pull: the token service and the registry, bearer once it has a token.
  const requests = ofType(r.events, 'registry-request');
  const manifest = requests.find((e) => /\/v2\/dave\/private\/manifests\/1$/.test(e.url as string) && e.status === 200);
  assert.ok(manifest, JSON.stringify(requests, null, 1));
  assert.is(manifest.auth, 'bearer');
  assert.is(manifest.method, 'GET');
  assert.ok((manifest.bytes as number) > 0);
  assert.ok(
    requests.some((e) => e.status === 401 && e.auth === 'none'),
    'the first, anonymous request the registry answers 401',
  );
  assert.ok(
    requests.some((e) => /\/blobs\/sha256:[0-9a-f]{64}$/.test(e.url as string) && e.status === 200),
    'the layer blob',
  );
  for (const e of requests) assert.not.match(e.url as string, /[?&](scope|service|account)=/);

  const [mounted] = ofType(r.events, 'rootfs-mount');
  assert.ok(mounted, 'a rootfs-mount event');
  for (const d of mounted.lowerdirs as string[]) assert.ok(path.isAbsolute(d), d);
  assert.is((mounted.lowerdirs as string[]).length, 1);
  assert.is(mounted.driver, 'overlay');
  assert.match(mounted.reason as string, /^running as root: the kernel's overlayfs/);
  assert.is(mounted.upperdir, path.join(root, 'containers', created.id as string, 'upper'));

  const [etc] = ofType(r.events, 'etc-files');
  assert.ok(etc && typeof etc.hosts === 'string');

  const netns = ofType(r.events, 'netns');
  assert.equal(
    netns.map((e) => e.action),
    ['add', 'delete'],
  );
  const adds = ofType(r.events, 'cni').filter((e) => e.command === 'ADD');
  assert.ok(
    adds.some((e) => e.plugin === 'bridge' && e.exitCode === 0 && e.result !== undefined),
    'the bridge plugin call and its result',
  );
  const [attached] = ofType(r.events, 'network-attach');
  assert.ok(attached, 'a network-attach event');
  assert.match(attached.ip as string, /^\d+\.\d+\.\d+\.\d+$/);
  assert.is(attached.netns, netns[0]?.path);
  assert.is(attached.network, 'tsrun');
  assert.match((attached.veth as { host: string }).host, /^veth/);

  // The rules tsrun wrote for -p (its chain TSRUN-DN-<id12>), as iptables-save shows them, and none left after.
  const rules = ofType(r.events, 'iptables-rules');
  const atAttach = rules.find((e) => e.when === 'attach');
  assert.ok(atAttach && atAttach.ip === attached.ip, 'an iptables-rules event after the attach');
  const lines = (atAttach.rules as { table: string; rule: string }[]).map((x) => `${x.table} ${x.rule}`);
  assert.ok(
    lines.some(
      (l) =>
        /^nat -A TSRUN-DN-[0-9a-f]{12} .*--dport \d+ -j DNAT --to-destination /.test(l) &&
        l.includes(`${attached.ip as string}:80`),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => l.startsWith('nat -A TSRUN-HOSTPORT-DNAT ')),
    lines.join('\n'),
  );
  const atDetach = rules.find((e) => e.when === 'detach');
  assert.equal(atDetach?.rules, [], 'no rule left after the CNI DEL');
  // Written by tsrun in one iptables-restore each way, not by the portmap plugin.
  assert.not.ok(
    ofType(r.events, 'cni').some((e) => e.plugin === 'portmap'),
    'no portmap plugin call',
  );
  const portRules = ofType(r.events, 'port-rules');
  assert.equal(
    portRules.map((e) => e.action),
    ['add', 'remove'],
  );
  assert.match(
    portRules[0]?.input as string,
    /^-A TSRUN-HOSTPORT-DNAT -p tcp -m comment .* -j TSRUN-DN-[0-9a-f]{12}$/m,
  );
  const steps = ofType(r.events, 'cleanup-step').map((e) => e.step);
  for (const s of ['runtime-delete', 'network', 'unmount', 'state-dir']) assert.ok(steps.includes(s), steps.join(' '));

  const runtime = ofType(r.events, 'runtime').map((e) => (e.argv as string[]).join(' '));
  assert.ok(
    runtime.some((a) => / start [0-9a-f]{64}$/.test(a)),
    runtime.join('\n'),
  );
  assert.ok(
    runtime.some((a) => a.includes(` create --bundle ${created.bundle as string} `)),
    'the runtime create the monitor runs',
  );
  const [monitor] = ofType(r.events, 'monitor');
  assert.ok(monitor && (monitor.argv as string[]).includes('--bundle'));
  const [started] = ofType(r.events, 'container-start');
  assert.ok(started && (started.monitorPid as number) > 0 && (started.pid as number) > 0);
});

D("no command given: provenance says the args are the image's CMD", async () => {
  const r = await debug(['run', '--rm', '--network', 'none', '-u', '0', `${hub.host}/dave/private:cmd`]);
  assert.is(r.code, 0, r.stderr);
  const [created] = ofType(r.events, 'container-create');
  const prov = created?.provenance as Record<string, any>;
  assert.equal(prov.args, { from: 'image', detail: 'CMD' });
  assert.equal(prov.user, { from: 'flag', flag: '--user' });
  assert.equal(prov.namespaces.network, { from: 'flag', flag: '--network', detail: 'none' });
});

D('run -d, exec -e, stop, rm: each reports, none leaks', async () => {
  const run = await debug(['run', '-d', '-e', `RUN_VAR=${RUN_SECRET}`, '--network', 'none', IMAGE, 'sleep', '60']);
  assert.is(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const exec = await debug(['exec', '-e', `EXEC_VAR=${EXEC_SECRET}`, id, 'sh', '-c', 'test -n "$EXEC_VAR"']);
  assert.is(exec.code, 0, exec.stderr);
  const [ex] = ofType(exec.events, 'container-exec');
  assert.ok(ex, 'a container-exec event');
  assert.equal(ex.argv, ['sh', '-c', 'test -n "$EXEC_VAR"']);

  const stop = await debug(['stop', '-t', '1', id]);
  assert.is(stop.code, 0, stop.stderr);
  const [stopped] = ofType(stop.events, 'container-stop');
  // sleep as pid 1 ignores SIGTERM: after -t 1 the SIGKILL ends it (128 + 9), and the event says so.
  assert.is(stopped?.killed, true);
  assert.equal(
    ofType(stop.events, 'container-exit').map((e) => e.exitCode),
    [137],
  );
  assert.equal(ofType(stop.events, 'container-cleanup').length, 1);
  assert.is(stopped?.signal, 'SIGTERM');
  assert.ok(
    ofType(stop.events, 'runtime').some((e) => (e.argv as string[]).includes('kill')),
    'the runtime kill argv',
  );

  const rm = await debug(['rm', id]);
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(ofType(rm.events, 'container-remove').length, 1);
  assert.not.ok(existsSync(path.join(root, 'containers', id)));
  assert.equal(await leftovers(root), []);
});

D.run();
