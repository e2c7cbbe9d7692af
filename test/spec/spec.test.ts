/**
 * src/spec: the expected values are what Docker (docker/cli + moby + runc's user library) does;
 * each test names the rule it checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { TsrunError } from '../../src/errors.js';
import type { ContainerConfig } from '../../src/oci/schemas.js';
import { DEFAULT_PATH_ENV, defaultSpec, serializeSpec } from '../../src/spec/defaults.js';
import {
  applyOpts,
  parseMemory,
  resolveCwd,
  resolveProcessArgs,
  withBindMounts,
  withCwd,
  withEtcFiles,
  withHostname,
  withProcessArgs,
  withReadonlyRootfs,
  withResources,
  withRlimits,
  withTty,
  withUser,
} from '../../src/spec/options.js';
import { mergeEnv, parseEnvFile, withEnv, type EnvContext } from '../../src/spec/env.js';
import { RLIM_INFINITY } from '../../src/spec/types.js';
import { parseGroup, parsePasswd, resolveUser } from '../../src/spec/user.js';

function throwsCode(fn: () => unknown, code: string, re?: RegExp): TsrunError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, TsrunError, String(err));
    assert.is((err as TsrunError).code, code, (err as Error).message);
    if (re) assert.match((err as Error).message, re);
    return err as TsrunError;
  }
  return assert.unreachable(`expected ${code}`) as never;
}

const CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

// ---------------------------------------------------------------------------------------------
// defaultSpec

test('defaultSpec: Docker DefaultCapabilities in bounding/effective/permitted, no inheritable/ambient', () => {
  const s = defaultSpec();
  assert.equal(s.process.capabilities.bounding, CAPS);
  assert.equal(s.process.capabilities.effective, CAPS);
  assert.equal(s.process.capabilities.permitted, CAPS);
  assert.is(s.process.capabilities.inheritable, undefined);
  assert.is(s.process.capabilities.ambient, undefined);
  assert.not.ok(CAPS.includes('CAP_SYS_ADMIN'));
});

test('defaultSpec: process defaults (terminal false, cwd /, root user, noNewPrivileges false)', () => {
  const s = defaultSpec();
  assert.is(s.ociVersion, '1.1.0');
  assert.is(s.process.terminal, false);
  assert.is(s.process.cwd, '/');
  assert.equal(s.process.user, { uid: 0, gid: 0 });
  assert.is(s.process.noNewPrivileges, false);
  assert.equal(s.root, { path: 'rootfs', readonly: false });
});

test('defaultSpec: namespaces pid, ipc, uts, mount, network (no user, no cgroup)', () => {
  const types = defaultSpec()
    .linux.namespaces.map((n) => n.type)
    .sort();
  assert.equal(types, ['ipc', 'mount', 'network', 'pid', 'uts']);
});

test('defaultSpec: Docker default mounts with their options', () => {
  const m = Object.fromEntries(defaultSpec().mounts.map((x) => [x.destination, x]));
  assert.equal(Object.keys(m), ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
  assert.is(m['/proc']!.type, 'proc');
  assert.is(m['/dev']!.type, 'tmpfs');
  assert.equal(m['/dev']!.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  assert.is(m['/dev/pts']!.type, 'devpts');
  for (const o of ['newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'])
    assert.ok(m['/dev/pts']!.options!.includes(o), o);
  assert.is(m['/sys']!.type, 'sysfs');
  for (const o of ['ro', 'nosuid', 'noexec', 'nodev']) assert.ok(m['/sys']!.options!.includes(o), o);
  assert.is(m['/sys/fs/cgroup']!.type, 'cgroup');
  assert.ok(m['/sys/fs/cgroup']!.options!.includes('ro'));
  assert.is(m['/dev/mqueue']!.type, 'mqueue');
  assert.is(m['/dev/shm']!.type, 'tmpfs');
  assert.ok(m['/dev/shm']!.options!.includes('size=65536k'));
});

test('defaultSpec: Docker masked and readonly paths', () => {
  const s = defaultSpec();
  assert.equal(s.linux.maskedPaths, [
    '/proc/asound',
    '/proc/acpi',
    '/proc/kcore',
    '/proc/keys',
    '/proc/latency_stats',
    '/proc/timer_list',
    '/proc/timer_stats',
    '/proc/sched_debug',
    '/proc/scsi',
    '/sys/firmware',
    '/sys/devices/virtual/powercap',
  ]);
  assert.equal(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
});

test('defaultSpec: each call is a fresh object (mutating one spec does not leak)', () => {
  const a = defaultSpec();
  a.process.capabilities.bounding.push('CAP_SYS_ADMIN');
  a.mounts.pop();
  a.linux.maskedPaths.length = 0;
  const b = defaultSpec();
  assert.equal(b.process.capabilities.bounding, CAPS);
  assert.is(b.mounts.length, 7);
  assert.is(b.linux.maskedPaths.length, 11);
});

test('serializeSpec: RLIM_INFINITY is written as the exact uint64 18446744073709551615', () => {
  const s = applyOpts(defaultSpec(), withRlimits([{ type: 'RLIMIT_CORE', soft: 0, hard: RLIM_INFINITY }]));
  const text = serializeSpec(s);
  assert.match(text, /"hard": 18446744073709551615\b/);
  assert.match(text, /"soft": 0\b/);
  const parsed = JSON.parse(text) as { process: { capabilities: { bounding: string[] } } };
  assert.equal(parsed.process.capabilities.bounding, CAPS);
});

// ---------------------------------------------------------------------------------------------
// process args

const IMG: ContainerConfig = { Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'] };

test('args: no overrides → image ENTRYPOINT ++ image CMD', () => {
  assert.equal(resolveProcessArgs(IMG, {}), ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
});

test('args: command-line args replace CMD but keep ENTRYPOINT', () => {
  assert.equal(resolveProcessArgs(IMG, { cmd: ['sh'] }), ['/docker-entrypoint.sh', 'sh']);
});

test('args: --entrypoint X replaces ENTRYPOINT and discards the image CMD', () => {
  assert.equal(resolveProcessArgs(IMG, { entrypoint: ['/bin/sh'] }), ['/bin/sh']);
  assert.equal(resolveProcessArgs(IMG, { entrypoint: ['/bin/sh'], cmd: ['-c', 'id'] }), ['/bin/sh', '-c', 'id']);
});

test("args: --entrypoint '' + args runs the args alone", () => {
  assert.equal(resolveProcessArgs(IMG, { entrypoint: '', cmd: ['ls', '-l'] }), ['ls', '-l']);
  assert.equal(resolveProcessArgs(IMG, { entrypoint: [''], cmd: ['ls'] }), ['ls']);
});

test("args: --entrypoint '' without args discards the image CMD too → no command specified", () => {
  const e = throwsCode(() => resolveProcessArgs(IMG, { entrypoint: '' }), 'ERR_USAGE', /no command specified/);
  assert.ok(e.hint);
});

test('args: an explicit empty entrypoint list (API Entrypoint: []) clears ENTRYPOINT but keeps the image CMD (moby merge: nil vs empty)', () => {
  assert.equal(resolveProcessArgs(IMG, { entrypoint: [] }), ['nginx', '-g', 'daemon off;']);
  assert.equal(resolveProcessArgs(IMG, { entrypoint: [], cmd: ['id'] }), ['id']);
});

test('args: image with only ENTRYPOINT runs it; args are appended', () => {
  const img: ContainerConfig = { Entrypoint: ['/app'], Cmd: null };
  assert.equal(resolveProcessArgs(img, {}), ['/app']);
  assert.equal(resolveProcessArgs(img, { cmd: ['--port', '80'] }), ['/app', '--port', '80']);
});

test('args: image with only CMD; args replace it', () => {
  const img: ContainerConfig = { Cmd: ['/bin/sh'] };
  assert.equal(resolveProcessArgs(img, {}), ['/bin/sh']);
  assert.equal(resolveProcessArgs(img, { cmd: ['echo', 'hi'] }), ['echo', 'hi']);
  assert.equal(resolveProcessArgs(img, { cmd: [] }), ['/bin/sh'], 'empty args list means none given');
});

test('args: nothing anywhere → ERR_USAGE "no command specified" (Docker: No command specified)', () => {
  throwsCode(() => resolveProcessArgs({}, {}), 'ERR_USAGE', /^no command specified$/);
  throwsCode(() => resolveProcessArgs(undefined, {}), 'ERR_USAGE');
  throwsCode(() => withProcessArgs(null, { cmd: [] }), 'ERR_USAGE');
});

test('withProcessArgs sets process.args', () => {
  const s = applyOpts(defaultSpec(), withProcessArgs(IMG, { cmd: ['nginx-debug'] }));
  assert.equal(s.process.args, ['/docker-entrypoint.sh', 'nginx-debug']);
});

// ---------------------------------------------------------------------------------------------
// env

const ctx = (over: Partial<EnvContext> = {}): EnvContext => ({
  hostname: 'abc123',
  tty: false,
  home: '/root',
  ...over,
});

test('env: no image env → Docker defaults PATH, HOSTNAME, then HOME from the user', () => {
  assert.equal(mergeEnv([], [], ctx()), [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=abc123', 'HOME=/root']);
  assert.is(DEFAULT_PATH_ENV, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
});

test("env: image PATH replaces Docker's default PATH in place", () => {
  const env = mergeEnv(['PATH=/opt/bin:/bin', 'NODE_VERSION=20'], [], ctx());
  assert.equal(env, ['PATH=/opt/bin:/bin', 'HOSTNAME=abc123', 'NODE_VERSION=20', 'HOME=/root']);
});

test('env: -e overrides image ENV by key; user values come before the remaining image values (moby merge)', () => {
  const env = mergeEnv(['A=image', 'B=image'], ['B=user', 'C=user'], ctx());
  assert.equal(env, [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=abc123', 'B=user', 'C=user', 'A=image', 'HOME=/root']);
});

test('env: values keep everything after the first "=" (A=b=c)', () => {
  assert.ok(mergeEnv([], ['A=b=c', 'E='], ctx()).includes('A=b=c'));
  assert.ok(mergeEnv([], ['E='], ctx()).includes('E='));
});

test("env: bare -e KEY takes the caller's value", () => {
  const env = mergeEnv(['FOO=image'], ['FOO'], ctx({ callerEnv: { FOO: 'from-shell' } }));
  assert.ok(env.includes('FOO=from-shell'));
  assert.not.ok(env.includes('FOO=image'));
});

test('env: bare -e KEY unset in the caller is dropped — and unsets the image value too (moby ReplaceOrAppendEnvValues)', () => {
  const env = mergeEnv(['FOO=image', 'KEEP=1'], ['FOO', 'NOPE'], ctx({ callerEnv: {} }));
  assert.not.ok(
    env.some((e) => e.startsWith('FOO')),
    env.join(' '),
  );
  assert.not.ok(
    env.some((e) => e.startsWith('NOPE')),
    env.join(' '),
  );
  assert.ok(env.includes('KEEP=1'));
});

test('env: bare -e of a Docker default (HOSTNAME, PATH) unset in the caller removes it (ReplaceOrAppendEnvValues)', () => {
  const env = mergeEnv(['PATH=/img'], ['HOSTNAME', 'PATH'], ctx({ callerEnv: {} }));
  assert.equal(env, ['HOME=/root']);
});

test('env: TERM=xterm only with a tty, after HOSTNAME; user TERM wins', () => {
  assert.equal(mergeEnv([], [], ctx({ tty: true })), [
    `PATH=${DEFAULT_PATH_ENV}`,
    'HOSTNAME=abc123',
    'TERM=xterm',
    'HOME=/root',
  ]);
  assert.not.ok(mergeEnv([], [], ctx()).some((e) => e.startsWith('TERM=')));
  assert.ok(mergeEnv([], ['TERM=dumb'], ctx({ tty: true })).includes('TERM=dumb'));
});

test('env: HOME is not overridden when the image or the user sets it', () => {
  const a = mergeEnv(['HOME=/home/app'], [], ctx());
  assert.equal(
    a.filter((e) => e.startsWith('HOME=')),
    ['HOME=/home/app'],
  );
  const b = mergeEnv([], ['HOME=/tmp'], ctx());
  assert.equal(
    b.filter((e) => e.startsWith('HOME=')),
    ['HOME=/tmp'],
  );
});

test('env: -e given twice keeps the last value once', () => {
  const env = mergeEnv([], ['A=1', 'A=2'], ctx());
  assert.equal(
    env.filter((e) => e.startsWith('A=')),
    ['A=2'],
  );
});

test('env: empty key (-e =x) is ERR_USAGE', () => {
  throwsCode(() => mergeEnv([], ['=x'], ctx()), 'ERR_USAGE', /invalid environment variable/);
});

test('withEnv sets process.env', () => {
  const s = applyOpts(defaultSpec(), withEnv(['X=1'], [], ctx({ home: '/home/app' })));
  assert.equal(s.process.env, [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=abc123', 'X=1', 'HOME=/home/app']);
});

test('parseEnvFile: KEY=VAL lines, # comments, blank lines, bare KEY, values untouched', () => {
  const text = '\uFEFF# comment\n\nA=1\n  B= spaced value \n  # indented comment\nC\nD="quoted"\r\nE=\n';
  assert.equal(parseEnvFile(text), ['A=1', 'B= spaced value ', 'C', 'D="quoted"', 'E=']);
});

test('parseEnvFile: a key with whitespace ("B ") is an error in Docker', () => {
  // Docker trims only the front of the variable name, so "B = x" has key "B " → error.
  throwsCode(() => parseEnvFile('B = x\n'), 'ERR_USAGE', /variable 'B ' contains whitespaces/);
  throwsCode(() => parseEnvFile('=x\n'), 'ERR_USAGE', /no variable name/);
});

test('parseEnvFile + mergeEnv: bare KEY from the file takes the caller environment', () => {
  const env = mergeEnv([], parseEnvFile('SECRET\nA=1\n'), ctx({ callerEnv: { SECRET: 's3' } }));
  assert.ok(env.includes('SECRET=s3'));
  assert.ok(env.includes('A=1'));
});

// ---------------------------------------------------------------------------------------------
// cwd, tty, readonly, hostname

test('cwd: -w wins over image WorkingDir; image WorkingDir over "/"; paths are cleaned', () => {
  assert.is(resolveCwd('/app', '/srv'), '/srv');
  assert.is(resolveCwd('/app', undefined), '/app');
  assert.is(resolveCwd('/app/', ''), '/app');
  assert.is(resolveCwd(undefined, undefined), '/');
  assert.is(resolveCwd('', undefined), '/');
  assert.is(resolveCwd(undefined, '/a//b/../c/'), '/a/c');
});

test('cwd: relative -w is ERR_USAGE (Docker: needs to be an absolute path)', () => {
  const e = throwsCode(
    () => withCwd('/app', 'src'),
    'ERR_USAGE',
    /the working directory 'src' is invalid, it needs to be an absolute path/,
  );
  assert.ok(e.hint);
});

test('cwd: relative image WorkingDir is ERR_CONFIG', () => {
  throwsCode(() => resolveCwd('app', undefined), 'ERR_CONFIG');
});

test('withCwd/withTty/withReadonlyRootfs/withHostname set their fields', () => {
  const s = applyOpts(
    defaultSpec(),
    withCwd('/app', undefined),
    withTty(true),
    withReadonlyRootfs(true),
    withHostname('web-1.local'),
  );
  assert.is(s.process.cwd, '/app');
  assert.is(s.process.terminal, true);
  assert.is(s.root.readonly, true);
  assert.is(s.hostname, 'web-1.local');
});

test('withHostname: invalid names are ERR_USAGE', () => {
  for (const h of ['', 'has space', 'a/b', '-lead', 'x'.repeat(65)]) throwsCode(() => withHostname(h), 'ERR_USAGE');
});

// ---------------------------------------------------------------------------------------------
// user

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment line',
  '',
  'app:x:1001:1001:App:/home/app:/bin/sh',
  'nohome:x:1002:1002::',
  'broken line without fields',
  'evil:x:notanumber:0::/evil:/bin/sh',
  'evil2:x::::/evil:/bin/sh',
  'dup:x:1003:1003::/first:/bin/sh',
  '#ghost:x:1005:1005::/ghost:/bin/sh',
  'dup:x:1004:1004::/second:/bin/sh',
].join('\n');

const GROUP = [
  'root:x:0:',
  'staff:x:50:app,other',
  'docker:x:999: app ',
  '# comment',
  'garbage',
  'bad:x:abc:app',
  'app:x:1001:',
  'wheel:x:10:root',
].join('\n');

test("user: default (empty spec) is root, with root's passwd home and /etc/group memberships (alpine: groups=0,1,...,10(wheel))", () => {
  assert.equal(resolveUser('', PASSWD, GROUP), { uid: 0, gid: 0, additionalGids: [10], home: '/root' });
});

test('user: no passwd file at all → root, home "/"', () => {
  assert.equal(resolveUser('', undefined, undefined), { uid: 0, gid: 0, additionalGids: [], home: '/' });
});

test('user: name → uid, gid, home from passwd and supplementary groups from /etc/group membership', () => {
  assert.equal(resolveUser('app', PASSWD, GROUP), {
    uid: 1001,
    gid: 1001,
    additionalGids: [50, 999],
    home: '/home/app',
  });
});

test('user: root gets its supplementary groups too (wheel)', () => {
  assert.equal(resolveUser('root', PASSWD, GROUP).additionalGids, [10]);
});

test('user: numeric uid present in passwd takes that entry', () => {
  assert.equal(resolveUser('1001', PASSWD, GROUP), {
    uid: 1001,
    gid: 1001,
    additionalGids: [50, 999],
    home: '/home/app',
  });
});

test('user: -u 1000 not in passwd → uid 1000, gid 0, home "/", no groups', () => {
  assert.equal(resolveUser('1000', PASSWD, GROUP), { uid: 1000, gid: 0, additionalGids: [], home: '/' });
  assert.equal(resolveUser('1000', undefined, undefined), { uid: 1000, gid: 0, additionalGids: [], home: '/' });
});

test('user: uid:gid numeric, neither needs to exist', () => {
  assert.equal(resolveUser('1000:2000', PASSWD, GROUP), { uid: 1000, gid: 2000, additionalGids: [], home: '/' });
});

test('user: -u app:staff → gid of staff, and no supplementary groups (explicit group form)', () => {
  assert.equal(resolveUser('app:staff', PASSWD, GROUP), { uid: 1001, gid: 50, additionalGids: [], home: '/home/app' });
});

test('user: :gid keeps root as user and sets the gid', () => {
  assert.equal(resolveUser(':50', PASSWD, GROUP), { uid: 0, gid: 50, additionalGids: [], home: '/root' });
  assert.equal(resolveUser(':staff', PASSWD, GROUP), { uid: 0, gid: 50, additionalGids: [], home: '/root' });
});

test('user: unknown name → ERR_USAGE "unable to find user X: no matching entries in passwd file"', () => {
  throwsCode(
    () => resolveUser('nobody', PASSWD, GROUP),
    'ERR_USAGE',
    /^unable to find user nobody: no matching entries in passwd file$/,
  );
  throwsCode(() => resolveUser('app', undefined, undefined), 'ERR_USAGE', /unable to find user app/);
});

test('user: unknown group name → ERR_USAGE "unable to find group"', () => {
  throwsCode(
    () => resolveUser('app:nogroup', PASSWD, GROUP),
    'ERR_USAGE',
    /unable to find group nogroup: no matching entries in group file/,
  );
});

test('user: ids above 2^31-1 are out of range', () => {
  throwsCode(() => resolveUser('2147483648', PASSWD, GROUP), 'ERR_USAGE', /range/);
  throwsCode(() => resolveUser('0:99999999999', PASSWD, GROUP), 'ERR_USAGE', /range/);
  assert.is(resolveUser('2147483647', undefined, undefined).uid, 2147483647);
});

test('user: malformed passwd lines never resolve (a bad uid is not read as 0 = root)', () => {
  throwsCode(() => resolveUser('evil', PASSWD, GROUP), 'ERR_USAGE', /unable to find user evil/);
  throwsCode(() => resolveUser('evil2', PASSWD, GROUP), 'ERR_USAGE', /unable to find user evil2/);
  const names = parsePasswd(PASSWD).map((u) => u.name);
  assert.equal(names, ['root', 'daemon', 'app', 'nohome', 'dup', 'dup']);
});

test('user: a commented-out passwd entry is not used (-u 1005 stays uid 1005, gid 0, home /)', () => {
  assert.equal(resolveUser('1005', PASSWD, GROUP), { uid: 1005, gid: 0, additionalGids: [], home: '/' });
});

test('user: first matching passwd entry wins; empty home falls back to "/"', () => {
  assert.equal(resolveUser('dup', PASSWD, GROUP), { uid: 1003, gid: 1003, additionalGids: [], home: '/first' });
  assert.is(resolveUser('nohome', PASSWD, GROUP).home, '/');
});

test('user: parseGroup skips comments and malformed lines, trims members', () => {
  assert.equal(
    parseGroup(GROUP).map((g) => [g.name, g.gid, g.members]),
    [
      ['root', 0, []],
      ['staff', 50, ['app', 'other']],
      ['docker', 999, ['app']],
      ['app', 1001, []],
      ['wheel', 10, ['root']],
    ],
  );
  assert.equal(
    parsePasswd('\r\nroot:x:0:0:root:/root:/bin/sh\r\n').map((u) => u.home),
    ['/root'],
  );
});

test('withUser: additionalGids is the primary gid then the supplementary groups (moby getUser)', () => {
  const s = applyOpts(defaultSpec(), withUser(resolveUser('app', PASSWD, GROUP)));
  assert.equal(s.process.user, { uid: 1001, gid: 1001, additionalGids: [1001, 50, 999] });
});

// ---------------------------------------------------------------------------------------------
// mounts

test('withBindMounts: rbind + rprivate, ro when asked, type bind', () => {
  const s = applyOpts(
    defaultSpec(),
    withBindMounts([
      { source: '/host/data', destination: '/data' },
      { source: '/host/conf', destination: '/etc/app', readonly: true },
    ]),
  );
  const user = s.mounts.slice(7);
  assert.equal(user, [
    { destination: '/data', type: 'bind', source: '/host/data', options: ['rbind', 'rprivate'] },
    { destination: '/etc/app', type: 'bind', source: '/host/conf', options: ['rbind', 'ro', 'rprivate'] },
  ]);
});

test('withBindMounts: relative destination or source is ERR_USAGE', () => {
  throwsCode(
    () => withBindMounts([{ source: '/x', destination: 'data' }]),
    'ERR_USAGE',
    /destination 'data' must be an absolute path/,
  );
  throwsCode(() => withBindMounts([{ source: 'x', destination: '/data' }]), 'ERR_USAGE', /source 'x'/);
  throwsCode(() => withBindMounts([{ source: '/x', destination: '/' }]), 'ERR_USAGE');
});

test('withBindMounts: duplicate mount point is ERR_USAGE (after cleaning)', () => {
  throwsCode(
    () =>
      withBindMounts([
        { source: '/a', destination: '/d' },
        { source: '/b', destination: '/d/' },
      ]),
    'ERR_USAGE',
    /Duplicate mount point: \/d/,
  );
});

test('withBindMounts: parents mount before children (moby sortMounts)', () => {
  const s = applyOpts(
    defaultSpec(),
    withBindMounts([
      { source: '/h/sub', destination: '/data/sub' },
      { source: '/h', destination: '/data' },
    ]),
  );
  assert.equal(
    s.mounts.slice(7).map((m) => m.destination),
    ['/data', '/data/sub'],
  );
});

test('withBindMounts: a mount on a default destination (/dev/shm) replaces the default', () => {
  const s = applyOpts(defaultSpec(), withBindMounts([{ source: '/host/shm', destination: '/dev/shm' }]));
  const shm = s.mounts.filter((m) => m.destination === '/dev/shm');
  assert.is(shm.length, 1);
  assert.is(shm[0]!.type, 'bind');
});

test('withEtcFiles: bind mounts /etc/hosts, /etc/hostname, /etc/resolv.conf, writable even with --read-only', () => {
  const s = applyOpts(
    defaultSpec(),
    withReadonlyRootfs(true),
    withEtcFiles({
      hosts: '/run/c1/hosts',
      hostname: '/run/c1/hostname',
      resolvConf: '/run/c1/resolv.conf',
    }),
  );
  const etc = Object.fromEntries(
    s.mounts.filter((m) => m.destination.startsWith('/etc/')).map((m) => [m.destination, m]),
  );
  assert.equal(etc['/etc/hosts'], {
    destination: '/etc/hosts',
    type: 'bind',
    source: '/run/c1/hosts',
    options: ['rbind', 'rprivate'],
  });
  assert.is(etc['/etc/hostname']!.source, '/run/c1/hostname');
  assert.is(etc['/etc/resolv.conf']!.source, '/run/c1/resolv.conf');
  assert.not.ok(etc['/etc/hosts']!.options!.includes('ro'));
});

test('withEtcFiles: only the files given are mounted', () => {
  const s = applyOpts(defaultSpec(), withEtcFiles({ hosts: '/run/c1/hosts' }));
  assert.equal(
    s.mounts.filter((m) => m.destination.startsWith('/etc/')).map((m) => m.destination),
    ['/etc/hosts'],
  );
});

// ---------------------------------------------------------------------------------------------
// rlimits, resources

test('withRlimits: passes the given limits through unchanged (no raised defaults)', () => {
  const s = applyOpts(
    defaultSpec(),
    withRlimits([
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: RLIM_INFINITY, hard: RLIM_INFINITY },
    ]),
  );
  assert.equal(s.process.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
    { type: 'RLIMIT_NPROC', soft: RLIM_INFINITY, hard: RLIM_INFINITY },
  ]);
  assert.is(defaultSpec().process.rlimits, undefined, 'the default spec sets none');
});

test('withRlimits: soft > hard is ERR_USAGE (Docker: soft limit must be <= hard limit); later duplicate wins', () => {
  throwsCode(
    () => withRlimits([{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }]),
    'ERR_USAGE',
    /soft limit must be less than or equal to hard limit/,
  );
  throwsCode(() => withRlimits([{ type: 'RLIMIT_NOFILE', soft: RLIM_INFINITY, hard: 5 }]), 'ERR_USAGE');
  throwsCode(() => withRlimits([{ type: 'nofile', soft: 1, hard: 1 }]), 'ERR_USAGE');
  throwsCode(() => withRlimits([{ type: 'RLIMIT_NOFILE', soft: -1, hard: 1 }]), 'ERR_USAGE');
  const s = applyOpts(
    defaultSpec(),
    withRlimits([
      { type: 'RLIMIT_NOFILE', soft: 1, hard: 2 },
      { type: 'RLIMIT_NOFILE', soft: 3, hard: 4 },
    ]),
  );
  assert.equal(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 3, hard: 4 }]);
});

test('withResources: --memory limit and swap = 2×memory; --cpus 1.5 → quota 150000 / period 100000; --pids-limit', () => {
  const s = applyOpts(defaultSpec(), withResources({ memory: 512 * 1024 * 1024, cpus: 1.5, pidsLimit: 100 }));
  assert.equal(s.linux.resources, {
    memory: { limit: 536870912, swap: 1073741824 },
    cpu: { quota: 150000, period: 100000 },
    pids: { limit: 100 },
  });
  assert.equal(applyOpts(defaultSpec(), withResources({ cpus: 0.5 })).linux.resources, {
    cpu: { quota: 50000, period: 100000 },
  });
  assert.equal(applyOpts(defaultSpec(), withResources({ pidsLimit: -1 })).linux.resources, { pids: { limit: -1 } });
  assert.is(applyOpts(defaultSpec(), withResources({})).linux.resources, undefined);
});

test('withResources: memory below 6MB and cpus below 0.01 are ERR_USAGE (Docker minimums)', () => {
  throwsCode(() => withResources({ memory: 4 * 1024 * 1024 }), 'ERR_USAGE', /Minimum memory limit allowed is 6MB/);
  throwsCode(() => withResources({ cpus: 0.001 }), 'ERR_USAGE');
  throwsCode(() => withResources({ cpus: Number.NaN }), 'ERR_USAGE');
  assert.ok(withResources({ memory: 6 * 1024 * 1024, cpus: 0.01 }));
});

test("parseMemory: Docker's RAMInBytes (binary units, case-insensitive, optional i/b)", () => {
  const cases: [string, number][] = [
    ['512m', 536870912],
    ['512M', 536870912],
    ['512mb', 536870912],
    ['512MiB', 536870912],
    ['1g', 1073741824],
    ['1G', 1073741824],
    ['64k', 65536],
    ['64K', 65536],
    ['100', 100],
    ['100b', 100],
    ['1.5g', 1610612736],
    ['1.9', 1],
    ['1.9b', 1],
    ['0.5k', 512],
    ['1 m', 1048576],
    ['2t', 2 * 1024 ** 4],
  ];
  for (const [input, want] of cases) assert.is(parseMemory(input), want, input);
});

test('parseMemory: invalid sizes are ERR_USAGE', () => {
  for (const s of ['', 'm', '-1m', '12x', '1.2.3m', 'abc', '1mm', ' 1m'])
    throwsCode(() => parseMemory(s), 'ERR_USAGE', /invalid size/);
});

// ---------------------------------------------------------------------------------------------
// composition

test('applyOpts composes a full `tsrun run -it -u app -w /srv -e A=1 nginx sh` spec', () => {
  const user = resolveUser('app', PASSWD, GROUP);
  const s = applyOpts(
    defaultSpec(),
    withProcessArgs(IMG, { cmd: ['sh'] }),
    withEnv(['NGINX_VERSION=1.25'], ['A=1'], { hostname: 'c0ffee', tty: true, home: user.home }),
    withUser(user),
    withCwd('/', '/srv'),
    withTty(true),
    withHostname('c0ffee'),
  );
  assert.equal(s.process.args, ['/docker-entrypoint.sh', 'sh']);
  assert.equal(s.process.env, [
    `PATH=${DEFAULT_PATH_ENV}`,
    'HOSTNAME=c0ffee',
    'TERM=xterm',
    'A=1',
    'NGINX_VERSION=1.25',
    'HOME=/home/app',
  ]);
  assert.is(s.process.user.uid, 1001);
  assert.is(s.process.cwd, '/srv');
  assert.is(s.process.terminal, true);
  assert.is(s.hostname, 'c0ffee');
  // Round-trips through config.json text.
  assert.equal(JSON.parse(serializeSpec(s)), JSON.parse(JSON.stringify(s)));
});

test.run();
