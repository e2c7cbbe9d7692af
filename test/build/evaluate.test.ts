import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDockerfile, type Instruction } from '../../src/build/dockerfile.js';
import {
  applyMetadata,
  commandOf,
  declareArgs,
  parseDuration,
  resolveChown,
  scopeVars,
} from '../../src/build/evaluate.js';
import type { ContainerConfig } from '../../src/oci/schemas.js';

const E = suite('build/evaluate: what each instruction does to the config');

async function instrs(body: string): Promise<Instruction[]> {
  return (await parseDockerfile(`FROM x\n${body}\n`)).stages[0]!.instructions;
}
async function apply(
  body: string,
  base: ContainerConfig = {},
  args = new Map<string, string>(),
): Promise<ContainerConfig> {
  let c = base;
  const flags = { cmdSet: false };
  for (const ins of await instrs(body)) c = applyMetadata(ins, c, scopeVars(c, args), '\\', flags).config;
  return c;
}

E('ENV replaces by key and sees earlier ENVs; ENV wins over ARG', async () => {
  const c = await apply('ENV A=1 B=2\nENV A=3 C=$A', { Env: ['PATH=/bin'] });
  assert.equal(c.Env, ['PATH=/bin', 'A=3', 'B=2', 'C=1']);
  assert.is(
    scopeVars(
      { Env: ['X=env'] },
      new Map([
        ['X', 'arg'],
        ['Y', 'arg'],
      ]),
    ).get('X'),
    'env',
  );
});

E('ENTRYPOINT clears an inherited CMD, but not one set in the stage', async () => {
  assert.is((await apply('ENTRYPOINT ["app"]', { Cmd: ['sh'] })).Cmd, null);
  const c = await apply('CMD ["--help"]\nENTRYPOINT ["app"]', { Cmd: ['sh'] });
  assert.equal([c.Entrypoint, c.Cmd], [['app'], ['--help']]);
});

E('shell form uses SHELL', async () => {
  const c = await apply('SHELL ["/bin/bash", "-ec"]\nCMD echo $HOME');
  assert.equal(c.Cmd, ['/bin/bash', '-ec', 'echo $HOME']);
  const [run] = await instrs('RUN echo hi');
  assert.equal(commandOf(run!, {}), ['/bin/sh', '-c', 'echo hi']);
});

E(
  'RUN heredocs: a bare one is the script (<<- strips tabs); after a command the shell gets it as written',
  async () => {
    const [bare, strip, piped, shebang] = await instrs(
      'RUN <<EOF\necho one\necho two\nEOF\nRUN <<-EOT\n\techo tab\nEOT\nRUN cat <<EOF > /x\nhello $HOME\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF',
    );
    assert.equal(commandOf(bare!, {}), ['/bin/sh', '-c', 'echo one\necho two']);
    assert.is(bare!.text, 'RUN <<EOF');
    assert.equal(commandOf(strip!, {}), ['/bin/sh', '-c', 'echo tab']);
    assert.equal(commandOf(piped!, {}), ['/bin/sh', '-c', 'cat <<EOF > /x\nhello $HOME\nEOF']);
    assert.throws(() => commandOf(shebang!, {}), /#! interpreter is not supported yet/);
  },
);

E('EXPOSE (ranges, protocols), LABEL, USER, WORKDIR relative to the last, VOLUME, STOPSIGNAL', async () => {
  const c = await apply(
    'ARG P=3000\nEXPOSE $P 53/udp 8000-8001\nLABEL "a b"="c d" e=f\nUSER app:staff\nWORKDIR /srv\nWORKDIR app/../web\nVOLUME ["/data"]\nSTOPSIGNAL SIGINT'
      .split('\n')
      .filter((l) => !l.startsWith('ARG'))
      .join('\n'),
    {},
    new Map([['P', '3000']]),
  );
  assert.equal(Object.keys(c.ExposedPorts ?? {}), ['3000/tcp', '53/udp', '8000/tcp', '8001/tcp']);
  assert.equal(c.Labels, { 'a b': 'c d', e: 'f' });
  assert.is(c.User, 'app:staff');
  assert.is(c.WorkingDir, '/srv/web');
  assert.equal(Object.keys(c.Volumes ?? {}), ['/data']);
  assert.is(c.StopSignal, 'SIGINT');
  await apply('EXPOSE http').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /invalid port "http"/),
  );
});

E('HEALTHCHECK is recorded with durations in nanoseconds', async () => {
  const c = await apply('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD wget -q localhost || exit 1');
  assert.equal(c.Healthcheck, {
    Test: ['CMD-SHELL', 'wget -q localhost || exit 1'],
    Interval: 90e9,
    Timeout: 5e8,
    Retries: 2,
  });
  assert.equal((await apply('HEALTHCHECK NONE')).Healthcheck, { Test: ['NONE'] });
  assert.throws(() => parseDuration('5 minutes', 'x'), /invalid duration/);
});

E('ARG: --build-arg beats the default; a bare ARG in a stage takes the global value', async () => {
  const [a] = await instrs('ARG V=dflt W X');
  assert.equal(declareArgs(a!, new Map(), '\\', new Map([['W', 'given']]), new Map([['X', 'global']])), [
    ['V', 'dflt'],
    ['W', 'given'],
    ['X', 'global'],
  ]);
});

E('--chown: names through the image files; a user alone means gid = uid', () => {
  const passwd = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:app\n';
  assert.equal(resolveChown('app:staff', passwd, group), { uid: 1000, gid: 50 });
  assert.equal(resolveChown('1234', passwd, group), { uid: 1234, gid: 1234 });
  assert.throws(() => resolveChown('ghost', passwd, group), /no user "ghost"/);
});
E.run();
