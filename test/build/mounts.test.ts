import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRunMount } from '../../src/build/mounts.js';

const M = suite('build/mounts: RUN --mount values');

M('cache: id defaults to the target, relative targets follow WORKDIR, options parsed', () => {
  assert.equal(parseRunMount('type=cache,target=.npm,sharing=locked,mode=0700,uid=1000', '/app', 3), {
    type: 'cache',
    target: '/app/.npm',
    id: '/app/.npm',
    sharing: 'locked',
    readonly: false,
    mode: 0o700,
    uid: 1000,
    gid: 0,
  });
});

M('secret: target defaults to /run/secrets/ID, mode 0400; bind is the default type; tmpfs', () => {
  assert.equal(parseRunMount('type=secret,id=token,required', '/', 1), {
    type: 'secret',
    id: 'token',
    target: '/run/secrets/token',
    required: true,
    mode: 0o400,
    uid: 0,
    gid: 0,
  });
  assert.equal(parseRunMount('target=/src,source=app', '/', 1), { type: 'bind', target: '/src', source: 'app' });
  assert.equal(parseRunMount('type=tmpfs,target=/scratch,size=64m', '/', 1), {
    type: 'tmpfs',
    target: '/scratch',
    size: '64m',
  });
});

M('errors name the line and what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['type=cache', /line 4: .*needs target=/],
    ['type=ssh', /type must be cache, secret, bind or tmpfs/],
    ['type=cache,target=/x,sharing=sometimes', /sharing is shared, locked or private/],
    ['type=cache,target=/x,mode=rwx', /mode must be an octal mode/],
    ['type=bind,target=/x,rw', /read-write bind mounts are not supported/],
    ['type=bind,target=/x,from=build', /binding from another stage/],
    ['type=cache,target=/x,colour=red', /unknown option "colour"/],
  ];
  for (const [spec, re] of cases) assert.throws(() => parseRunMount(spec, '/', 4), re, spec);
});
M.run();
