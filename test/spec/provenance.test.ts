/**
 * src/spec/provenance.ts: where each part of a spec came from, for specs built by the real
 * option functions (spec/options.ts, env.ts) from an image config and flags, as app/run-plan.ts
 * builds them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyOpts, withBindMounts, withCwd, withProcessArgs } from '../../src/spec/options.js';
import { withEnv } from '../../src/spec/env.js';
import { defaultSpec } from '../../src/spec/defaults.js';
import { specProvenance } from '../../src/spec/provenance.js';
import type { ContainerConfig } from '../../src/oci/schemas.js';

const IMAGE: ContainerConfig = {
  Entrypoint: ['/entry'],
  Cmd: ['serve'],
  Env: ['PATH=/opt/bin:/bin', 'LANG=C.UTF-8'],
  WorkingDir: '/srv',
  User: 'app',
};

function spec(image: ContainerConfig, o: { args: string[]; entrypoint?: string; env?: string[]; workdir?: string }) {
  return applyOpts(
    defaultSpec(),
    withProcessArgs(image, {
      entrypoint: o.entrypoint === undefined ? undefined : o.entrypoint === '' ? '' : [o.entrypoint],
      cmd: o.args,
    }),
    withEnv(image.Env, o.env ?? [], { hostname: 'h', tty: false, home: '/root' }),
    withCwd(image.WorkingDir, o.workdir),
    withBindMounts([{ source: '/tmp/data', destination: '/data', readonly: false }], []),
  );
}

test('nothing given: args, env, user and cwd come from the image; the rest is the default', () => {
  const p = specProvenance(IMAGE, { args: [] }, spec(IMAGE, { args: [] }));
  assert.equal(p.args, { from: 'image', detail: 'ENTRYPOINT + CMD' });
  assert.equal(p.env['PATH'], { from: 'image', detail: 'ENV' });
  assert.equal(p.env['LANG'], { from: 'image', detail: 'ENV' });
  assert.equal(p.env['HOSTNAME'], { from: 'default' });
  assert.equal(p.user, { from: 'image', detail: 'USER' });
  assert.equal(p.cwd, { from: 'image', detail: 'WORKDIR' });
  assert.is(p.capabilities.from, 'default');
  assert.equal(p.rlimits, { from: 'default' });
  assert.equal(p.maskedPaths, { from: 'default' });
  assert.is(p.hostname.from, 'default');
  assert.equal(p.namespaces['pid'], { from: 'default' });
  assert.equal(p.namespaces['network'], { from: 'default', detail: 'the bridge network' });
  assert.equal(p.mounts['/proc'], { from: 'default' });
});

test('a command after the image, -e, --env-file, --user, --workdir, -v are flags or the command line', () => {
  const o = { args: ['sh', '-c', 'true'], env: ['SECRET=value', 'FROM_FILE=x'], workdir: '/w' };
  const s = spec(IMAGE, o);
  const p = specProvenance(
    IMAGE,
    {
      args: o.args,
      envFlagNames: ['SECRET'],
      envFileNames: ['FROM_FILE'],
      user: '1000',
      workdir: '/w',
      mounts: [{ flag: '-v', destinations: ['/data'] }],
    },
    s,
  );
  assert.is(p.args.from, 'command line');
  assert.match(p.args.detail ?? '', /ENTRYPOINT, then the command line/);
  assert.equal(p.env['SECRET'], { from: 'flag', flag: '-e' });
  assert.equal(p.env['FROM_FILE'], { from: 'flag', flag: '--env-file' });
  assert.equal(p.user, { from: 'flag', flag: '--user' });
  assert.equal(p.cwd, { from: 'flag', flag: '--workdir' });
  assert.equal(p.mounts['/data'], { from: 'flag', flag: '-v' });
  // Names only: no value of the environment anywhere in the map.
  assert.not.ok(JSON.stringify(p).includes('value'));
});

test('-e overrides the image: the name is the flag’s; --entrypoint is a flag; no WORKDIR or USER: default', () => {
  const image: ContainerConfig = { Cmd: ['sh'], Env: ['PATH=/bin', 'MODE=image'] };
  const s = spec(image, { args: [], entrypoint: '/bin/echo', env: ['MODE=flag'] });
  const p = specProvenance(image, { args: [], entrypoint: '/bin/echo', envFlagNames: ['MODE'] }, s);
  assert.equal(p.env['MODE'], { from: 'flag', flag: '-e' });
  assert.equal(p.args, { from: 'flag', flag: '--entrypoint', detail: 'the entrypoint' });
  assert.equal(p.cwd, { from: 'default' });
  assert.equal(p.user, { from: 'default' });
  const noEntry = specProvenance(image, { args: [] }, spec(image, { args: [] }));
  assert.equal(noEntry.args, { from: 'image', detail: 'CMD' });
});

test('host flags: --privileged, --cap-add, --ulimit, --network host, --pid host, --hostname, --security-opt', () => {
  const s = spec(IMAGE, { args: [] });
  s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'network' && n.type !== 'pid');
  const p = specProvenance(
    IMAGE,
    {
      args: [],
      network: 'host',
      pid: 'host',
      capAdd: ['NET_ADMIN'],
      ulimit: ['nofile=10:10'],
      hostname: 'web',
      securityOpt: ['systempaths=unconfined'],
    },
    s,
  );
  assert.equal(p.capabilities, { from: 'flag', flag: '--cap-add' });
  assert.equal(p.rlimits, { from: 'flag', flag: '--ulimit' });
  assert.equal(p.namespaces['network'], { from: 'flag', flag: '--network', detail: "host: the host's" });
  assert.equal(p.namespaces['pid'], { from: 'flag', flag: '--pid', detail: "host: the host's" });
  assert.equal(p.hostname, { from: 'flag', flag: '--hostname' });
  assert.is(p.maskedPaths.flag, '--security-opt');
  const priv = specProvenance(IMAGE, { args: [], privileged: true }, spec(IMAGE, { args: [] }));
  assert.equal(priv.capabilities, { from: 'flag', flag: '--privileged', detail: 'every capability' });
  assert.is(priv.maskedPaths.flag, '--privileged');
});

test.run();
