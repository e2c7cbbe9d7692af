/**
 * End to end: the `run`/`create` flags scripts use (security, namespaces, mounts, limits, init,
 * restart policy) and the lifecycle flags (stop/restart in parallel, --stop-signal,
 * --stop-timeout), each checked from inside a real container where its effect can be seen:
 * capabilities and seccomp in /proc/self/status, mounts in /proc/mounts, namespaces by inode,
 * limits with ulimit, pid 1's name.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, promises as fs, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, tsrun } from './cli.js';
import { eventually, leftovers as leftoversIn, runDir } from './containers.js';
import { pushBusybox } from './fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { kernelRunsX32 } from '../helpers/kernel.js';

let reg: TestRegistry;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-flags-'));
const root = path.join(tmp, 'root');
let IMAGE = '';

const Flags = suite('e2e run flags');

Flags.before(async () => {
  reg = await startRegistry({ auth: 'anonymous' });
  await pushBusybox(reg, 'e2e/flags', 'latest', {
    Cmd: ['sh'],
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    Volumes: { '/data/vol': {} },
  });
  IMAGE = `${reg.host}/e2e/flags`;
  const r = await tsrun(['pull', '-q', IMAGE], { root });
  assert.is(r.code, 0, r.stderr);
});
Flags.after(async () => {
  const ps = await tsrun(['ps', '-aq', '--no-trunc'], { root });
  for (const id of ps.stdout.split('\n').filter(Boolean)) await tsrun(['rm', '-f', '-v', id], { root });
  await reg?.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const run = (args: string[], o: { input?: string } = {}) => tsrun(['run', ...args], { root, input: o.input });
const leftovers = () => leftoversIn(root);
const status = (field: string, text: string) => new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(text)?.[1];

/** moby's default capabilities as a CapEff mask. */
const DEFAULT_CAPEFF = '00000000a80425fb';

Flags('capabilities: defaults, --cap-drop ALL --cap-add (with and without CAP_), --privileged', async () => {
  const d = await run(['--rm', IMAGE, 'cat', '/proc/self/status']);
  assert.is(d.code, 0, d.stderr);
  assert.is(status('CapEff', d.stdout), DEFAULT_CAPEFF);
  const some = await run([
    '--rm',
    '--cap-drop',
    'ALL',
    '--cap-add',
    'net_admin',
    '--cap-add',
    'CAP_KILL',
    IMAGE,
    'cat',
    '/proc/self/status',
  ]);
  assert.is(status('CapEff', some.stdout), (2 ** 12 + 2 ** 5).toString(16).padStart(16, '0'));
  const drop = await run(['--rm', '--cap-drop', 'chown', IMAGE, 'cat', '/proc/self/status']);
  assert.is(status('CapEff', drop.stdout), (0xa80425fb - 1).toString(16).padStart(16, '0'));
  // "All" is what the kernel has and tsrun holds (this machine's sandbox lacks some).
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  const bnd = BigInt(`0x${status('CapBnd', readFileSync('/proc/self/status', 'utf8')) ?? ''}`);
  const all = ((2n ** BigInt(last + 1) - 1n) & bnd).toString(16).padStart(16, '0');
  const priv = await run([
    '--rm',
    '--privileged',
    IMAGE,
    'sh',
    '-c',
    'cat /proc/self/status; grep -c " /proc/kcore " /proc/mounts; grep " /sys " /proc/mounts',
  ]);
  assert.is(priv.code, 0, priv.stderr);
  assert.is(status('CapEff', priv.stdout), all);
  assert.is(status('Seccomp', priv.stdout), '0', 'privileged: no seccomp');
  assert.match(priv.stdout, /^0\n/m, 'privileged: /proc/kcore is not masked');
  assert.match(priv.stdout, /sysfs \/sys sysfs rw,/, 'privileged: /sys is writable');
  const addAll = await run(['--rm', '--cap-add', 'ALL', '--cap-drop', 'sys_admin', IMAGE, 'cat', '/proc/self/status']);
  assert.is(status('CapEff', addAll.stdout), (BigInt(`0x${all}`) - 2n ** 21n).toString(16).padStart(16, '0'));
  const bad = await run(['--rm', '--cap-add', 'NOPE', IMAGE, 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /unknown capability: "CAP_NOPE"/);
});

/** A static x86-64 program: `i` makes getpid the 32-bit way (int 0x80), `x` as an x32 call. */
const ARCH_PROBE = `#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  long r;
  if (argc > 1 && argv[1][0] == 'i') __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
  else r = syscall(0x40000000L | 39);
  printf("%ld %d\\n", r, r < 0 ? errno : 0);
  return 0;
}
`;

Flags(
  "seccomp's arches on x86-64: 32-bit calls are filtered and allowed ones run; x32 calls run only where the kernel has them",
  async () => {
    if (process.arch !== 'x64') return;
    const src = path.join(tmp, 'probe.c');
    const probe = path.join(tmp, 'probe');
    await fs.writeFile(src, ARCH_PROBE);
    // g++ as the C compiler: CI installs g++ (not gcc's own driver).
    await execa('g++', ['-x', 'c', '-static', '-O1', '-o', probe, src]);
    const kernelX32 = kernelRunsX32();
    const at = (how: string) => run(['--rm', '-v', `${probe}:/probe:ro`, IMAGE, '/probe', how]);
    // getpid through int 0x80: the filter has the 32-bit arch (were it missing, libseccomp's
    // bad-arch action would kill the process) and allows the call: pid 1. Where the host itself
    // runs no 32-bit calls (this kind of VM: int 0x80 faults, whatever the kernel's config says),
    // the container fails the same way.
    const host = await execa(probe, ['i'], { reject: false });
    const i386 = await at('i');
    if (host.exitCode === 0) {
      assert.is(i386.code, 0, i386.stderr);
      assert.is(i386.stdout.trim(), '1 0');
    } else assert.is(i386.code, 128 + (os.constants.signals[host.signal ?? 'SIGSEGV'] ?? 11), i386.stderr);
    const x32 = await at('x');
    if (kernelX32) {
      assert.is(x32.code, 0, x32.stderr);
      assert.is(x32.stdout.trim(), '1 0');
    } else {
      // Left out of the filter (src/spec/security.ts): refused by the filter itself (SIGSYS),
      // where Docker's filter lets it through to the kernel's ENOSYS. It never runs either way.
      assert.is(x32.code, 128 + 31, `x32 call: ${x32.code} ${x32.stdout} ${x32.stderr}`);
    }
    // Unconfined, the kernel answers it: ENOSYS without the x32 ABI.
    const bare = await run([
      '--rm',
      '--security-opt',
      'seccomp=unconfined',
      '-v',
      `${probe}:/probe:ro`,
      IMAGE,
      '/probe',
      'x',
    ]);
    assert.is(bare.code, 0, bare.stderr);
    assert.is(bare.stdout.trim(), kernelX32 ? '1 0' : '-1 38');
  },
);

Flags(
  '--security-opt: seccomp on by default, unconfined, FILE; no-new-privileges; apparmor/label accepted',
  async () => {
    const d = await run(['--rm', IMAGE, 'cat', '/proc/self/status']);
    assert.is(status('Seccomp', d.stdout), '2', 'the default profile filters');
    assert.is(status('NoNewPrivs', d.stdout), '0');
    const u = await run([
      '--rm',
      '--security-opt',
      'seccomp=unconfined',
      '--security-opt',
      'no-new-privileges',
      IMAGE,
      'cat',
      '/proc/self/status',
    ]);
    assert.is(u.code, 0, u.stderr);
    assert.is(status('Seccomp', u.stdout), '0');
    assert.is(status('NoNewPrivs', u.stdout), '1');
    // The default profile refuses what Docker's refuses: here, setting the clock without CAP_SYS_TIME
    // gets EPERM from seccomp rather than from the capability check (both EPERM: so use a filter
    // of our own that makes mkdir fail with a distinct errno).
    const profile = path.join(tmp, 'deny-mkdir.json');
    await fs.writeFile(
      profile,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      }),
    );
    const f = await run(['--rm', '--security-opt', `seccomp=${profile}`, IMAGE, 'sh', '-c', 'mkdir /x && echo made']);
    assert.is.not(f.code, 0);
    assert.match(f.stderr, /Operation not permitted/);
    const ok = await run([
      '--rm',
      '--security-opt',
      'apparmor=unconfined',
      '--security-opt',
      'label=disable',
      '--security-opt',
      'no-new-privileges:true',
      IMAGE,
      'true',
    ]);
    assert.is(ok.code, 0, ok.stderr);
    const bad = await run(['--rm', '--security-opt', 'bogus=1', IMAGE, 'true']);
    assert.is(bad.code, 125);
    assert.match(bad.stderr, /invalid --security-opt 1: "bogus=1"/);
  },
);

Flags('--ulimit, --shm-size, --sysctl, --oom-score-adj, --group-add, -m 0', async () => {
  const r = await run([
    '--rm',
    '--ulimit',
    'nofile=512:1024',
    '--shm-size',
    '16m',
    '--sysctl',
    'net.ipv4.ip_forward=1',
    '--sysctl',
    'kernel.shmmni=2048',
    '--oom-score-adj',
    '500',
    '-u',
    'app',
    '--group-add',
    '4321',
    '--group-add',
    'nogroup',
    '-m',
    '0',
    IMAGE,
    'sh',
    '-c',
    'ulimit -n; ulimit -Hn; grep " /dev/shm " /proc/mounts; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj; id',
  ]);
  assert.is(r.code, 0, r.stderr);
  const l = r.stdout.split('\n');
  assert.is(l[0], '512');
  assert.is(l[1], '1024');
  assert.match(l[2] ?? '', /size=16384k/);
  assert.is(l[3], '1');
  assert.is(l[4], '2048');
  assert.is(l[5], '500');
  assert.is(l[6], 'uid=1000(app) gid=1000(app) groups=50(staff),1000(app),4321,65534(nogroup)');
  const host = await run(['--rm', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', IMAGE, 'true']);
  assert.is(host.code, 125);
  assert.match(host.stderr, /not allowed in host network namespace/);
  const notNs = await run(['--rm', '--sysctl', 'kernel.hostname=x', IMAGE, 'true']);
  assert.is(notNs.code, 125);
  const nog = await run(['--rm', '--group-add', 'nosuchgroup', IMAGE, 'true']);
  assert.is(nog.code, 125);
  assert.match(nog.stderr, /Unable to find group nosuchgroup/);
  assert.equal(await leftovers(), []);
});

Flags(
  '--tmpfs, --mount (bind relative, readonly; tmpfs; volume), -v ./dir with options, image VOLUME dirs',
  async () => {
    const dir = path.join(tmp, 'binds');
    await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
    await fs.writeFile(path.join(dir, 'sub', 'f.txt'), 'bound\n');
    const r = await execa(
      BIN,
      [
        '--root',
        root,
        'run',
        '--rm',
        '--tmpfs',
        '/scratch:size=1m,exec',
        '--mount',
        'type=tmpfs,target=/t2,tmpfs-size=2m',
        '--mount',
        'type=bind,source=./sub,target=/b,readonly',
        '-v',
        './sub:/v:ro,z',
        '-v',
        '../binds/sub:/w:rw,rprivate,nocopy',
        IMAGE,
        'sh',
        '-c',
        'grep -E " /(scratch|t2) " /proc/mounts; cat /b/f.txt /v/f.txt; touch /b/x 2>&1; touch /w/y && echo wrote; ls -d /data/vol',
      ],
      { cwd: dir, reject: false, stripFinalNewline: false },
    );
    assert.is(r.exitCode, 0, String(r.stderr));
    const out = String(r.stdout);
    assert.match(out, /tmpfs \/scratch tmpfs rw,nosuid,nodev,relatime,size=1024k/);
    assert.match(out, /tmpfs \/t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k/);
    assert.match(out, /bound\nbound\n/);
    assert.match(out, /Read-only file system/);
    assert.match(out, /wrote\n\/data\/vol\n/);
    assert.ok(statSync(path.join(dir, 'sub', 'y')).isFile());
    // --rm took the anonymous volume of the image's VOLUME /data/vol; a named one stays.
    const vol = await run(['--rm', '--mount', 'type=volume,source=data,target=/d', IMAGE, 'true']);
    assert.is(vol.code, 0, vol.stderr);
    assert.is((await tsrun(['volume', 'ls', '-q'], { root })).stdout, 'data\n');
    assert.is((await tsrun(['volume', 'rm', 'data'], { root })).code, 0);
    const missing = await run(['--rm', '--mount', `type=bind,source=${tmp}/nope,target=/d`, IMAGE, 'true']);
    assert.is(missing.code, 125);
    assert.match(missing.stderr, /bind source path does not exist/);
    assert.equal(await leftovers(), []);
  },
);

Flags('--pid, --ipc, --uts host and container:NAME share namespaces (by inode); --ipc none; --userns', async () => {
  const ns = (t: string) => readlinkSync(`/proc/self/ns/${t}`);
  const r = await run([
    '--rm',
    '--pid',
    'host',
    '--ipc',
    'host',
    '--uts',
    'host',
    IMAGE,
    'sh',
    '-c',
    'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; hostname',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${ns('pid')}\n${ns('ipc')}\n${os.hostname()}\n`);
  const own = await run(['--rm', IMAGE, 'readlink', '/proc/self/ns/pid']);
  assert.is.not(own.stdout, `${ns('pid')}\n`);

  const d = await run([
    '-d',
    '--name',
    'donor',
    '--ipc',
    'shareable',
    IMAGE,
    'sh',
    '-c',
    'echo shm > /dev/shm/mark; sleep 60',
  ]);
  assert.is(d.code, 0, d.stderr);
  const donor = await tsrun(['exec', 'donor', 'sh', '-c', 'readlink /proc/1/ns/pid; readlink /proc/1/ns/ipc'], {
    root,
  });
  const j = await run([
    '--rm',
    '--pid',
    'container:donor',
    '--ipc',
    'container:donor',
    IMAGE,
    'sh',
    '-c',
    'readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; cat /dev/shm/mark; pidof sleep',
  ]);
  assert.is(j.code, 0, j.stderr);
  assert.is(donor.code, 0, donor.stderr);
  assert.is(
    j.stdout.split('\n').slice(0, 3).join('\n'),
    `${donor.stdout}shm`,
    `joined: ${j.stdout} donor: ${donor.stdout}`,
  );
  assert.match(j.stdout, /^\d+\n$/m, "the donor's sleep is visible");
  assert.is((await run(['-d', '--name', 'private', IMAGE, 'sleep', '60'])).code, 0);
  const priv = await run(['--rm', '--ipc', 'container:private', IMAGE, 'true']);
  assert.is(priv.code, 125);
  assert.match(priv.stderr, /non-shareable IPC/);
  await tsrun(['rm', '-f', '-v', 'donor', 'private'], { root });
  const gone = await run(['--rm', '--pid', 'container:donor', IMAGE, 'true']);
  assert.is(gone.code, 125);

  const none = await run(['--rm', '--ipc', 'none', IMAGE, 'sh', '-c', 'grep -c " /dev/shm " /proc/mounts']);
  assert.is(none.stdout, '0\n');
  assert.is((await run(['--rm', '--userns', 'host', IMAGE, 'true'])).code, 0);
  const userns = await run(['--rm', '--userns', 'keep-id', IMAGE, 'true']);
  assert.is(userns.code, 125);
  assert.match(userns.stderr, /--userns=keep-id is not supported/);
  assert.equal(await leftovers(), []);
});

Flags('--device HOST:CTR:PERMS makes the node; --init runs catatonit as pid 1', async () => {
  const r = await run([
    '--rm',
    '--device',
    '/dev/zero:/dev/myzero:rw',
    IMAGE,
    'sh',
    '-c',
    'ls -l /dev/myzero; head -c 3 /dev/myzero | od -An -tx1',
  ]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^c\S+\s+\d+\s+\S+\s+\S+\s+1,\s+5 /);
  assert.match(r.stdout, /00 00 00/);
  assert.is(
    (
      await run([
        '--name',
        'devs',
        '--device',
        '/dev/zero:/dev/myzero:rw',
        '--ulimit',
        'core=-1',
        '--ulimit',
        'nofile=100:200',
        IMAGE,
        'true',
      ])
    ).code,
    0,
  );
  const hc = (
    JSON.parse((await tsrun(['container', 'inspect', 'devs'], { root })).stdout) as [
      { HostConfig: { Devices: unknown; Ulimits: unknown } },
    ]
  )[0].HostConfig;
  assert.equal(hc.Devices, [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/myzero', CgroupPermissions: 'rw' }]);
  assert.equal(hc.Ulimits, [
    { Name: 'core', Soft: -1, Hard: -1 },
    { Name: 'nofile', Soft: 100, Hard: 200 },
  ]);
  await tsrun(['rm', '-v', 'devs'], { root });
  const bad = await run(['--rm', '--device', '/etc/passwd', IMAGE, 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /not a device node/);

  const init = await run([
    '--rm',
    '--init',
    IMAGE,
    'sh',
    '-c',
    'cat /proc/1/comm; echo $$; /sbin/docker-init --version',
  ]);
  assert.is(init.code, 0, init.stderr);
  const [comm, pid, version] = init.stdout.split('\n');
  assert.is(comm, 'docker-init', "pid 1 is the init, at Docker's path");
  assert.is.not(pid, '1');
  assert.match(version ?? '', /^(catatonit|tini version)/, "and it is Debian's catatonit (or tini)");
  const ins = await run(['-d', '--name', 'initd', '--init', IMAGE, 'sleep', '60']);
  assert.is(ins.code, 0, ins.stderr);
  const view = JSON.parse((await tsrun(['container', 'inspect', 'initd'], { root })).stdout) as [
    { Path: string; HostConfig: { Init: boolean } },
  ];
  assert.is(view[0].Path, 'sleep');
  assert.is(view[0].HostConfig.Init, true);
  // sleep as pid 1 would ignore SIGTERM; under the init it dies of it at once.
  const t0 = Date.now();
  assert.is((await tsrun(['stop', 'initd'], { root })).code, 0);
  assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms`);
  await tsrun(['rm', '-v', 'initd'], { root });
  assert.equal(await leftovers(), []);
});

Flags(
  '--stop-signal reaches the trap; --stop-timeout; stop -s, --timeout; stop and restart run in parallel',
  async () => {
    const trap = 'trap "echo got-usr1; exit 5" USR1; while true; do sleep 0.1; done';
    assert.is((await run(['-d', '--name', 'sig', '--stop-signal', 'USR1', IMAGE, 'sh', '-c', trap])).code, 0);
    await eventually('sig runs', async () => (await tsrun(['exec', 'sig', 'true'], { root })).code === 0);
    assert.is((await tsrun(['stop', 'sig'], { root })).code, 0);
    assert.is((await tsrun(['wait', 'sig'], { root })).stdout, '5\n');
    assert.is((await tsrun(['logs', 'sig'], { root })).stdout, 'got-usr1\n');
    // stop -s overrides it.
    assert.is((await tsrun(['start', 'sig'], { root })).code, 0);
    await eventually('sig runs again', async () => (await tsrun(['exec', 'sig', 'true'], { root })).code === 0);
    assert.is((await tsrun(['stop', '-s', 'KILL', 'sig'], { root })).code, 0);
    assert.is((await tsrun(['wait', 'sig'], { root })).stdout, '137\n');
    await tsrun(['rm', '-v', 'sig'], { root });

    const deaf = 'trap "" TERM; while true; do sleep 0.1; done';
    assert.is((await run(['-d', '--name', 'slow', '--stop-timeout', '1', IMAGE, 'sh', '-c', deaf])).code, 0);
    let t0 = Date.now();
    assert.is((await tsrun(['stop', 'slow'], { root })).code, 0);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 4000, `--stop-timeout 1: stop took ${took} ms`);
    await tsrun(['rm', '-v', 'slow'], { root });

    for (const n of ['p1', 'p2', 'p3']) assert.is((await run(['-d', '--name', n, IMAGE, 'sh', '-c', deaf])).code, 0);
    t0 = Date.now();
    const stop = await tsrun(['stop', '--timeout', '2', 'p1', 'p2', 'p3'], { root });
    assert.is(stop.code, 0, stop.stderr);
    assert.is(stop.stdout, 'p1\np2\np3\n');
    assert.ok(Date.now() - t0 < 5000, `3 × stop --timeout 2 in parallel took ${Date.now() - t0} ms`);
    t0 = Date.now();
    const rs = await tsrun(['restart', '-t', '2', 'p1', 'p2', 'p3'], { root });
    assert.is(rs.code, 0, rs.stderr);
    assert.ok(Date.now() - t0 < 6000, `3 × restart in parallel took ${Date.now() - t0} ms`);
    assert.is((await tsrun(['rm', '-fv', 'p1', 'p2', 'p3'], { root })).code, 0);
    assert.equal(await leftovers(), []);
  },
);

Flags(
  '--restart on-failure:N restarts N times; always stops for good on stop; manual restart keeps RestartCount and FinishedAt',
  async () => {
    assert.is(
      (await run(['-d', '--name', 'flaky', '--restart', 'on-failure:2', IMAGE, 'sh', '-c', 'echo run; exit 3'])).code,
      0,
    );
    const inspect = async (n: string) =>
      (
        JSON.parse((await tsrun(['container', 'inspect', n], { root })).stdout) as [
          {
            RestartCount: number;
            State: { Status: string; ExitCode: number; FinishedAt: string };
            HostConfig: { RestartPolicy: { Name: string; MaximumRetryCount: number } };
          },
        ]
      )[0];
    await eventually('two restarts, then it stays exited', async () => {
      const i = await inspect('flaky');
      return i.RestartCount === 2 && i.State.Status === 'exited';
    });
    await new Promise((r) => setTimeout(r, 1500));
    const i = await inspect('flaky');
    assert.is(i.RestartCount, 2);
    assert.equal(i.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    assert.is((await tsrun(['logs', 'flaky'], { root })).stdout, 'run\nrun\nrun\n');
    await tsrun(['rm', '-v', 'flaky'], { root });

    const ok = await run(['-d', '--name', 'fine', '--restart', 'on-failure', IMAGE, 'true']);
    assert.is(ok.code, 0);
    await eventually('fine exits', async () => (await inspect('fine')).State.Status === 'exited');
    await new Promise((r) => setTimeout(r, 500));
    assert.is((await inspect('fine')).RestartCount, 0, 'exit 0 is no failure');
    await tsrun(['rm', '-v', 'fine'], { root });

    assert.is((await run(['-d', '--name', 'always', '--restart', 'always', IMAGE, 'sleep', '60'])).code, 0);
    assert.is((await tsrun(['stop', '-t', '0', 'always'], { root })).code, 0);
    await new Promise((r) => setTimeout(r, 800));
    assert.is((await inspect('always')).State.Status, 'exited', 'a stopped container stays stopped');
    const before = await inspect('always');
    assert.is.not(before.State.FinishedAt, '0001-01-01T00:00:00Z');
    assert.is((await tsrun(['restart', 'always'], { root })).code, 0);
    const after = await inspect('always');
    assert.is(after.State.Status, 'running');
    assert.is(after.RestartCount, 0, 'a manual restart is not counted');
    assert.is(after.State.FinishedAt, before.State.FinishedAt, 'FinishedAt is kept while it runs again');
    await tsrun(['rm', '-f', '-v', 'always'], { root });
    const conflict = await run(['--rm', '--restart', 'always', IMAGE, 'true']);
    assert.is(conflict.code, 125);
    assert.match(conflict.stderr, /Conflicting options: --restart and --rm/);
    assert.equal(await leftovers(), []);
  },
);

Flags(
  '-a picks streams; --cidfile; --label-file; --mac-address; create has no -d; a failed start is Created',
  async () => {
    const a = await run(['--rm', '-a', 'stdout', IMAGE, 'sh', '-c', 'echo out; echo err >&2']);
    assert.is(a.stdout, 'out\n');
    assert.is(a.stderr, '');
    const ad = await run(['-d', '-a', 'stdout', IMAGE, 'true']);
    assert.is(ad.code, 125);
    assert.match(ad.stderr, /Conflicting options: -a and -d/);

    const cid = path.join(tmp, 'cid');
    const labels = path.join(tmp, 'labels');
    await fs.writeFile(labels, '# labels\nteam=core\nempty\n');
    const c = await tsrun(
      [
        'create',
        '--cidfile',
        cid,
        '--label-file',
        labels,
        '-l',
        'team=edge',
        '--name',
        'made',
        '--mac-address',
        '02:42:ac:11:00:99',
        IMAGE,
        'cat',
        '/sys/class/net/eth0/address',
      ],
      { root },
    );
    assert.is(c.code, 0, c.stderr);
    assert.is(await fs.readFile(cid, 'utf8'), c.stdout.trim());
    const again = await tsrun(['create', '--cidfile', cid, IMAGE, 'true'], { root });
    assert.is(again.code, 125);
    assert.match(again.stderr, /Container ID file found/);
    const info = JSON.parse((await tsrun(['container', 'inspect', 'made'], { root })).stdout) as [
      { Config: { Labels: Record<string, string> } },
    ];
    assert.equal(info[0].Config.Labels, { team: 'edge', empty: '' });
    const started = await tsrun(['start', '-a', 'made'], { root });
    assert.is(started.stdout, '02:42:ac:11:00:99\n', started.stderr);
    await tsrun(['rm', '-v', 'made'], { root });

    const d = await tsrun(['create', '-d', IMAGE, 'true'], { root });
    assert.is.not(d.code, 0);
    assert.match(d.stderr, /unknown option '-d'/);

    const failed = await run(['--name', 'broken', IMAGE, 'no-such-command']);
    assert.is(failed.code, 127);
    assert.is((await tsrun(['ps', '-a', '--format', '{{.Names}} {{.Status}}'], { root })).stdout, 'broken Created\n');
    const st = JSON.parse((await tsrun(['container', 'inspect', 'broken'], { root })).stdout) as [
      { State: { Status: string; ExitCode: number; Error: string } },
    ];
    assert.is(st[0].State.Status, 'created');
    assert.is(st[0].State.ExitCode, 127);
    assert.match(st[0].State.Error, /no-such-command/);
    assert.is((await tsrun(['rm', '-v', 'broken'], { root })).code, 0);
    assert.equal(await leftovers(), []);
  },
);

Flags.run();
