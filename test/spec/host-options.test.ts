/**
 * src/spec/security.ts and src/spec/host-options.ts: the generated config for each run/create
 * flag, against the rules of docker/cli and moby each function names.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';

import { TsrunError } from '../../src/errors.js';
import { applyOpts, withBindMounts, withResources } from '../../src/spec/options.js';
import { DEFAULT_CAPABILITIES, defaultSpec } from '../../src/spec/defaults.js';
import {
  ALL_CAPABILITIES,
  capabilitySet,
  hostCapabilities,
  parseSecurityOpts,
  seccompFromProfile,
  withCapabilities,
  withPrivileged,
  withSeccomp,
  withSecurityOpts,
} from '../../src/spec/security.js';
import {
  checkUsernsMode,
  INIT_PATH,
  parseDevice,
  parseIpcMode,
  parsePidMode,
  parseSysctls,
  parseUlimit,
  parseUtsMode,
  withDevices,
  withGroupAdd,
  withInit,
  withIpcMode,
  withOomScoreAdj,
  withPidMode,
  withShmSize,
  withSysctls,
  withUtsHost,
} from '../../src/spec/host-options.js';
import { mergeTmpfsOptions, parseMount, parseTmpfs, parseVolume } from '../../src/spec/mount-flags.js';
import { RLIM_INFINITY } from '../../src/spec/types.js';
import { parseRestartPolicy, restartDelay, shouldRestart } from '../../src/app/restart.js';

function throwsCode(fn: () => unknown, code: string, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TsrunError, String(err));
    assert.is((err as TsrunError).code, code, (err as Error).message);
    if (re) assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

const ALL = hostCapabilities(40);
const caps = (o: { add?: string[]; drop?: string[]; privileged?: boolean }) =>
  capabilitySet({ defaults: DEFAULT_CAPABILITIES, all: ALL, ...o });

test('caps: TweakCapabilities — defaults, add/drop with and without CAP_, ALL on either side, privileged', () => {
  assert.equal(caps({}), [...DEFAULT_CAPABILITIES]);
  assert.equal(caps({ add: ['net_admin', 'CAP_SYS_PTRACE'], drop: ['chown'] }), [
    ...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN'),
    'CAP_NET_ADMIN',
    'CAP_SYS_PTRACE',
  ]);
  assert.equal(caps({ drop: ['ALL'], add: ['kill'] }), ['CAP_KILL']);
  assert.equal(
    caps({ add: ['all'], drop: ['SYS_ADMIN'] }),
    ALL.filter((c) => c !== 'CAP_SYS_ADMIN'),
  );
  assert.equal(caps({ privileged: true, drop: ['ALL'] }), ALL);
  assert.equal(caps({ add: ['kill'] }), [...DEFAULT_CAPABILITIES], 'adding a default one keeps one entry');
  throwsCode(() => caps({ add: ['bogus'] }), 'ERR_USAGE', /unknown capability: "CAP_BOGUS"/);
  assert.is(hostCapabilities(37).length, 38);
  assert.is(ALL_CAPABILITIES[21], 'CAP_SYS_ADMIN');
  const s = applyOpts(defaultSpec(), withCapabilities(['CAP_KILL']));
  assert.equal(s.process.capabilities, { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] });
});

test("--security-opt: Docker's keys, both separators, errors", () => {
  const o = parseSecurityOpts([
    'no-new-privileges',
    'seccomp=unconfined',
    'apparmor=docker-default',
    'label=disable',
    'label=type:svirt_t',
  ]);
  assert.is(o.noNewPrivileges, true);
  assert.is(o.seccomp, 'unconfined');
  assert.is(o.apparmor, 'docker-default');
  assert.equal(o.labels, ['disable', 'type:svirt_t']);
  assert.equal(parseSecurityOpts(['seccomp:/tmp/p.json']).seccomp, { file: '/tmp/p.json' });
  assert.is(parseSecurityOpts(['no-new-privileges=false']).noNewPrivileges, false);
  assert.is(parseSecurityOpts(['systempaths=unconfined']).unmaskSystemPaths, true);
  throwsCode(() => parseSecurityOpts(['foo=bar']), 'ERR_USAGE', /invalid --security-opt 1: "foo=bar"/);
  throwsCode(() => parseSecurityOpts(['nonsense']), 'ERR_USAGE', /Invalid --security-opt: "nonsense"/);
  throwsCode(() => parseSecurityOpts(['label=bogus']), 'ERR_USAGE');
  const s = applyOpts(
    defaultSpec(),
    withSecurityOpts({ noNewPrivileges: true, apparmor: 'p', unmaskSystemPaths: true }, { apparmor: false }),
  );
  assert.is(s.process.noNewPrivileges, true);
  assert.is(s.process.apparmorProfile, undefined, 'no AppArmor on the host: ignored, as Docker');
  assert.equal(s.linux.maskedPaths, []);
  const a = applyOpts(
    defaultSpec(),
    withSecurityOpts({ noNewPrivileges: false, apparmor: 'p', unmaskSystemPaths: false }, { apparmor: true }),
  );
  assert.is(a.process.apparmorProfile, 'p');
});

test('seccomp: Docker-format profile → runtime-spec, filtered by arch, capabilities and kernel', () => {
  const profile = JSON.stringify({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [], comment: '', includes: {}, excludes: {} },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['arm_fadvise64_64'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      { name: 'newer', action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.8' } },
    ],
  });
  const d = seccompFromProfile(profile, {
    caps: DEFAULT_CAPABILITIES,
    arch: 'x64',
    kernel: '6.1.0-13-amd64',
    source: 't',
  });
  assert.is(d.defaultAction, 'SCMP_ACT_ERRNO');
  assert.is(d.defaultErrnoRet, 38);
  assert.equal(d.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.equal(
    d.syscalls?.map((s) => s.names[0]),
    ['read', 'arch_prctl', 'mount', 'personality', 'newer'],
  );
  assert.equal(d.syscalls?.[2], { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
  assert.equal(d.syscalls?.[3]?.args, [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
  const admin = seccompFromProfile(profile, {
    caps: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'],
    arch: 'arm64',
    kernel: '5.4.0',
    source: 't',
  });
  assert.equal(admin.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.equal(
    admin.syscalls?.map((s) => `${s.names[0]}:${s.action}`),
    ['read:SCMP_ACT_ALLOW', 'arm_fadvise64_64:SCMP_ACT_ALLOW', 'mount:SCMP_ACT_ALLOW', 'personality:SCMP_ACT_ALLOW'],
  );
  throwsCode(
    () => seccompFromProfile('{', { caps: [], arch: 'x64', kernel: '6.1', source: 'bad.json' }),
    'ERR_USAGE',
    /loading seccomp profile bad.json/,
  );
  // A kernel without x32 system calls: the arch is left out (null, unknown: kept).
  const noX32 = seccompFromProfile(profile, { caps: [], arch: 'x64', kernel: '6.1', source: 't', x32: false });
  assert.equal(noX32.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
  const unknown = seccompFromProfile(profile, { caps: [], arch: 'x64', kernel: '6.1', source: 't', x32: null });
  assert.equal(unknown.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  // Nor 32-bit ones (no IA32 emulation): x86-64 alone; with 32-bit calls, x86 is kept.
  const base = { caps: [], arch: 'x64', kernel: '6.1', source: 't' };
  assert.equal(seccompFromProfile(profile, { ...base, x32: false, ia32: false }).architectures, ['SCMP_ARCH_X86_64']);
  assert.equal(seccompFromProfile(profile, { ...base, x32: true, ia32: false }).architectures, [
    'SCMP_ARCH_X86_64',
    'SCMP_ARCH_X32',
  ]);
  assert.equal(seccompFromProfile(profile, { ...base, x32: false, ia32: true }).architectures, [
    'SCMP_ARCH_X86_64',
    'SCMP_ARCH_X86',
  ]);
  // A profile's own list is taken as written.
  const listed = JSON.stringify({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
  });
  assert.equal(
    seccompFromProfile(listed, { caps: [], arch: 'x64', kernel: '6.1', source: 't', x32: false }).architectures,
    ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
  );
  const s = applyOpts(defaultSpec(), withSeccomp(d));
  assert.is(s.linux.seccomp, d);
  assert.is(applyOpts(defaultSpec(), withSeccomp(undefined)).linux.seccomp, undefined);
});

test('seccomp: the containers-common profile this host ships converts, and denies what Docker denies by default', () => {
  let text: string;
  try {
    text = readFileSync('/usr/share/containers/seccomp.json', 'utf8');
  } catch {
    assert.unreachable(
      '/usr/share/containers/seccomp.json is missing: apt-get install golang-github-containers-common',
    );
    return;
  }
  const d = seccompFromProfile(text, {
    caps: DEFAULT_CAPABILITIES,
    arch: 'x64',
    kernel: '6.1.0',
    source: 'containers-common',
  });
  const allowed = new Set(d.syscalls?.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));
  assert.ok(allowed.has('read') && allowed.has('clone') && allowed.has('arch_prctl'));
  for (const denied of ['kexec_load', 'init_module', 'acct', 'settimeofday'])
    assert.not.ok(allowed.has(denied), denied);
});

test('--privileged: no masked paths, /sys writable, every device allowed, host devices', () => {
  const s = applyOpts(defaultSpec(), withPrivileged([{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }]));
  assert.equal(s.linux.maskedPaths, []);
  assert.equal(s.linux.readonlyPaths, []);
  assert.not.ok(s.mounts.find((m) => m.type === 'sysfs')?.options?.includes('ro'));
  assert.equal(s.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
  assert.equal(s.linux.devices, [{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }]);
});

test('--device: HOST[:CTR][:PERMS], one allow rule per node', () => {
  assert.equal(parseDevice('/dev/fuse'), { host: '/dev/fuse', container: '/dev/fuse', permissions: 'rwm' });
  assert.equal(parseDevice('/dev/fuse:r'), { host: '/dev/fuse', container: '/dev/fuse', permissions: 'r' });
  assert.equal(parseDevice('/dev/sda:/dev/xvda:rw'), { host: '/dev/sda', container: '/dev/xvda', permissions: 'rw' });
  throwsCode(() => parseDevice('/dev/sda:/dev/xvda:rx'), 'ERR_USAGE', /bad cgroup permissions/);
  throwsCode(() => parseDevice('/dev/sda:xvda'), 'ERR_USAGE', /invalid device mode: xvda/);
  const dev = { path: '/dev/xvda', type: 'b' as const, major: 8, minor: 0, fileMode: 0o660 };
  const s = applyOpts(defaultSpec(), withDevices([{ device: dev, permissions: 'rw' }]));
  assert.equal(s.linux.devices, [dev]);
  assert.equal(s.linux.resources?.devices, [{ allow: true, type: 'b', major: 8, minor: 0, access: 'rw' }]);
});

test('--ipc, --pid, --uts, --userns', () => {
  assert.equal(parseIpcMode('container:db'), { mode: 'container', container: 'db' });
  assert.equal(parseIpcMode(undefined), { mode: 'private' });
  throwsCode(() => parseIpcMode('bogus'), 'ERR_USAGE', /invalid IPC mode/);
  throwsCode(() => parsePidMode('private:x'), 'ERR_USAGE', /invalid PID mode/);
  throwsCode(() => parseUtsMode('container:x'), 'ERR_USAGE');
  checkUsernsMode('host');
  throwsCode(() => checkUsernsMode('auto'), 'ERR_USAGE', /--userns=auto is not supported/);

  const host = applyOpts(defaultSpec(), withIpcMode({ mode: 'host' }), withPidMode({ mode: 'host' }), withUtsHost());
  assert.equal(
    host.linux.namespaces.map((n) => n.type),
    ['mount', 'network'],
  );
  assert.is(host.hostname, undefined);
  assert.equal(
    host.mounts.find((m) => m.destination === '/dev/shm'),
    { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] },
  );
  const none = applyOpts(defaultSpec(), withIpcMode({ mode: 'none' }));
  assert.is(
    none.mounts.find((m) => m.destination === '/dev/shm'),
    undefined,
  );
  assert.ok(none.linux.namespaces.some((n) => n.type === 'ipc'));
  const join = applyOpts(
    defaultSpec(),
    withIpcMode({ mode: 'container', container: 'x' }, { nsPath: '/proc/7/ns/ipc', shmPath: '/store/x/shm' }),
    withPidMode({ mode: 'container', container: 'x' }, { nsPath: '/proc/7/ns/pid' }),
  );
  assert.equal(
    join.linux.namespaces.filter((n) => n.path),
    [
      { type: 'pid', path: '/proc/7/ns/pid' },
      { type: 'ipc', path: '/proc/7/ns/ipc' },
    ],
  );
  assert.equal(
    join.mounts.find((m) => m.destination === '/dev/shm'),
    {
      destination: '/dev/shm',
      type: 'bind',
      source: '/store/x/shm',
      options: ['rbind', 'nosuid', 'noexec', 'nodev', 'rprivate'],
    },
  );
  // shareable: /dev/shm is the host-side tmpfs others can bind; private keeps the in-container tmpfs.
  assert.is(
    applyOpts(defaultSpec(), withIpcMode({ mode: 'shareable' }, { shmPath: '/store/y/shm' })).mounts.find(
      (m) => m.destination === '/dev/shm',
    )?.source,
    '/store/y/shm',
  );
  assert.is(
    applyOpts(defaultSpec(), withIpcMode({ mode: 'private' }, { shmPath: '/store/y/shm' })).mounts.find(
      (m) => m.destination === '/dev/shm',
    )?.type,
    'tmpfs',
  );
  // At create the target's pid is not known yet: nothing changes until start.
  assert.equal(
    applyOpts(defaultSpec(), withPidMode({ mode: 'container', container: 'x' })).linux.namespaces,
    defaultSpec().linux.namespaces,
  );
});

test("--tmpfs and --mount: Docker's defaults merged with the user's options; bind and tmpfs in one sorted list", () => {
  assert.equal(mergeTmpfsOptions([]), ['noexec', 'nosuid', 'nodev']);
  assert.equal(mergeTmpfsOptions(['exec', 'size=1m', 'size=2m', 'mode=1777']), [
    'nosuid',
    'nodev',
    'exec',
    'size=2m',
    'mode=1777',
  ]);
  throwsCode(() => mergeTmpfsOptions(['bogus=1']), 'ERR_USAGE', /invalid tmpfs option "bogus=1"/);
  assert.equal(parseTmpfs('/run:size=64m'), {
    destination: '/run',
    options: ['noexec', 'nosuid', 'nodev', 'size=64m'],
  });
  throwsCode(() => parseTmpfs('run'), 'ERR_USAGE');
  assert.equal(parseMount('type=bind,src=./data,dst=/data,readonly,bind-propagation=rshared', '/home/u'), {
    type: 'bind',
    source: '/home/u/data',
    destination: '/data',
    readonly: true,
    propagation: 'rshared',
    nonRecursive: false,
  });
  assert.equal(parseMount('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700', '/'), {
    type: 'tmpfs',
    destination: '/t',
    readonly: false,
    options: ['noexec', 'nosuid', 'nodev', 'size=1048576', 'mode=700'],
  });
  assert.equal(parseMount('"type=bind","source=/a,b",target=/x,ro=false', '/').source, '/a,b');
  assert.equal(parseMount('source=vol,target=/x,volume-nocopy,volume-label=a=b,ro', '/'), {
    type: 'volume',
    source: 'vol',
    destination: '/x',
    readonly: true,
    nocopy: true,
    labels: { a: 'b' },
  });
  assert.equal(parseMount('type=volume,dst=/x', '/'), {
    type: 'volume',
    destination: '/x',
    readonly: false,
    nocopy: false,
  });
  throwsCode(() => parseMount('type=bind,target=/x', '/'), 'ERR_USAGE', /source is required/);
  throwsCode(() => parseMount('type=bind,source=/a', '/'), 'ERR_USAGE', /target is required/);
  throwsCode(() => parseMount('type=bind,source=/a,target=/x,color=red', '/'), 'ERR_USAGE', /unexpected key 'color'/);
  throwsCode(() => parseMount('type=tmpfs,source=/a,target=/x', '/'), 'ERR_USAGE', /source is not supported/);
  const s = applyOpts(
    defaultSpec(),
    withBindMounts(
      [{ source: '/h/a', destination: '/data/a', propagation: 'rshared', nonRecursive: true }],
      [{ destination: '/data', options: ['size=1m'] }],
    ),
  );
  assert.equal(s.mounts.slice(-2), [
    { destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
    { destination: '/data/a', type: 'bind', source: '/h/a', options: ['bind', 'rshared'] },
  ]);
  throwsCode(
    () => withBindMounts([{ source: '/a', destination: '/x' }], [{ destination: '/x/', options: [] }]),
    'ERR_USAGE',
    /Duplicate mount point: \/x/,
  );
});

test('-v: ./ and ../ sources from the cwd, options ro/rw/z/Z/nocopy/propagation; bare names are not host paths', () => {
  assert.equal(parseVolume('./d:/x', '/work/app'), { source: '/work/app/d', destination: '/x', readonly: false });
  assert.equal(parseVolume('../d:/x:ro,z', '/work/app'), { source: '/work/d', destination: '/x', readonly: true });
  assert.equal(parseVolume('.:/src:rw,rslave,nocopy', '/work/app'), {
    source: '/work/app',
    destination: '/src',
    readonly: false,
    propagation: 'rslave',
  });
  assert.equal(parseVolume('~/d:/x:Z', '/', '/home/u'), { source: '/home/u/d', destination: '/x', readonly: false });
  throwsCode(() => parseVolume('data:/x', '/'), 'ERR_USAGE', /the source is not a host path/);
  throwsCode(() => parseVolume('/a:/x:rx', '/'), 'ERR_USAGE', /invalid mode: rx/);
});

test('--ulimit, --oom-score-adj, --group-add, --sysctl, --shm-size, --init, -m 0', () => {
  assert.equal(parseUlimit('nofile=1024:2048'), { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
  assert.equal(parseUlimit('nproc=100'), { type: 'RLIMIT_NPROC', soft: 100, hard: 100 });
  assert.equal(parseUlimit('core=-1'), { type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY });
  assert.equal(parseUlimit('memlock=1:-1'), { type: 'RLIMIT_MEMLOCK', soft: 1, hard: RLIM_INFINITY });
  throwsCode(() => parseUlimit('nofile=2:1'), 'ERR_USAGE', /soft limit must be less than or equal to hard limit/);
  throwsCode(() => parseUlimit('files=1'), 'ERR_USAGE', /invalid ulimit type: files/);
  throwsCode(() => parseUlimit('nofile'), 'ERR_USAGE');

  assert.is(applyOpts(defaultSpec(), withOomScoreAdj(-500)).process.oomScoreAdj, -500);
  throwsCode(() => withOomScoreAdj(1001), 'ERR_USAGE', /range for oom score adj is \[-1000, 1000\]/);

  const g = applyOpts(
    defaultSpec(),
    (s) => {
      s.process.user = { uid: 1, gid: 1, additionalGids: [1, 50] };
    },
    withGroupAdd([50, 99]),
  );
  assert.equal(g.process.user.additionalGids, [1, 50, 99]);

  assert.equal(
    parseSysctls(['net.ipv4.ip_forward=1', 'kernel.shmmax=100', 'fs.mqueue.msg_max=20'], {
      hostNetwork: false,
      hostIpc: false,
    }),
    { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100', 'fs.mqueue.msg_max': '20' },
  );
  throwsCode(
    () => parseSysctls(['kernel.hostname=x'], { hostNetwork: false, hostIpc: false }),
    'ERR_USAGE',
    /is not allowed/,
  );
  throwsCode(
    () => parseSysctls(['net.core.somaxconn=1'], { hostNetwork: true, hostIpc: false }),
    'ERR_USAGE',
    /host network namespace/,
  );
  throwsCode(
    () => parseSysctls(['kernel.sem=1 2 3 4'], { hostNetwork: false, hostIpc: true }),
    'ERR_USAGE',
    /host IPC namespace/,
  );
  throwsCode(() => parseSysctls(['net.x'], { hostNetwork: false, hostIpc: false }), 'ERR_USAGE', /must be KEY=VALUE/);
  assert.equal(applyOpts(defaultSpec(), withSysctls({ 'net.ipv4.ip_forward': '1' })).linux.sysctl, {
    'net.ipv4.ip_forward': '1',
  });

  const shm = applyOpts(defaultSpec(), withShmSize(1 << 20)).mounts.find((m) => m.destination === '/dev/shm');
  assert.equal(shm?.options, ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=1048576']);
  throwsCode(() => withShmSize(0), 'ERR_USAGE');

  const init = applyOpts(defaultSpec(), withInit('/usr/bin/catatonit', ['sleep', '1']));
  assert.equal(init.process.args, [INIT_PATH, '--', 'sleep', '1']);
  assert.equal(init.mounts.at(-1), {
    destination: INIT_PATH,
    type: 'bind',
    source: '/usr/bin/catatonit',
    options: ['rbind', 'ro', 'rprivate'],
  });

  assert.is(applyOpts(defaultSpec(), withResources({ memory: 0 })).linux.resources, undefined, '-m 0: no limit');
});

test("--restart: Docker's policies, and when each restarts", () => {
  assert.equal(parseRestartPolicy(undefined), { Name: 'no', MaximumRetryCount: 0 });
  assert.equal(parseRestartPolicy('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.equal(parseRestartPolicy('unless-stopped'), { Name: 'unless-stopped', MaximumRetryCount: 0 });
  throwsCode(() => parseRestartPolicy('always:3'), 'ERR_USAGE', /can only be used with 'on-failure'/);
  throwsCode(() => parseRestartPolicy('sometimes'), 'ERR_USAGE', /invalid restart policy/);
  throwsCode(() => parseRestartPolicy('on-failure:x'), 'ERR_USAGE');
  const onf = parseRestartPolicy('on-failure:2');
  assert.is(shouldRestart(onf, 1, 0), true);
  assert.is(shouldRestart(onf, 1, 2), false);
  assert.is(shouldRestart(onf, 0, 0), false);
  assert.is(shouldRestart(parseRestartPolicy('on-failure'), 1, 99), true);
  assert.is(shouldRestart(parseRestartPolicy('always'), 0, 99), true);
  assert.is(shouldRestart(parseRestartPolicy('no'), 1, 0), false);
  assert.equal([0, 1, 2, 20].map(restartDelay), [100, 200, 400, 10_000]);
});

test.run();
