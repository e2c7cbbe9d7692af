/**
 * `-v` told apart into binds and volumes as Docker's Linux parser does, `--mount type=volume`,
 * and the image's VOLUME entries (spec/volumes.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMount } from '../../src/spec/mount-flags.js';
import { imageVolumes, parseVolumeFlag, volumeFromMount } from '../../src/spec/volumes.js';
import { TsrunError } from '../../src/errors.js';

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

test('-v: /ctr and /ctr:ro are anonymous, NAME:/ctr named, paths binds (./ ../ ~/ absolute)', () => {
  assert.equal(parseVolumeFlag('/data', '/w'), { volume: { destination: '/data', readonly: false, nocopy: false } });
  assert.equal(parseVolumeFlag('/data:ro', '/w'), { volume: { destination: '/data', readonly: true, nocopy: false } });
  assert.equal(parseVolumeFlag('todo-db:/etc/todos', '/w'), {
    volume: { name: 'todo-db', destination: '/etc/todos', readonly: false, nocopy: false },
  });
  assert.equal(parseVolumeFlag('db:/x:ro,nocopy', '/w'), {
    volume: { name: 'db', destination: '/x', readonly: true, nocopy: true },
  });
  assert.equal(parseVolumeFlag('./src:/app', '/w').bind, { source: '/w/src', destination: '/app', readonly: false });
  assert.equal(parseVolumeFlag('.:/app', '/w').bind?.source, '/w');
  assert.equal(parseVolumeFlag('~/d:/d', '/w', '/home/u').bind?.source, '/home/u/d');
  assert.equal(parseVolumeFlag('/h:/c:ro', '/w').bind, { source: '/h', destination: '/c', readonly: true });
  throwsCode(() => parseVolumeFlag('data', '/w'), 'ERR_USAGE', /the container path must be absolute/);
  throwsCode(
    () => parseVolumeFlag('a/b:/x', '/w'),
    'ERR_USAGE',
    /"a\/b" includes invalid characters for a local volume name/,
  );
  throwsCode(() => parseVolumeFlag('xy:/y:rx', '/w'), 'ERR_USAGE', /invalid mode: rx/);
  throwsCode(() => parseVolumeFlag('x:y', '/w'), 'ERR_USAGE', /must be absolute/);
  throwsCode(() => parseVolumeFlag('a:/b:ro:x', '/w'), 'ERR_USAGE', /invalid volume specification/);
});

test('--mount type=volume: named or anonymous, nocopy, driver, labels, options', () => {
  assert.equal(volumeFromMount(parseMount('type=volume,src=db,dst=/d,readonly,volume-nocopy', '/')), {
    name: 'db',
    destination: '/d',
    readonly: true,
    nocopy: true,
  });
  assert.equal(volumeFromMount(parseMount('type=volume,dst=/d,volume-driver=nfs,volume-opt=o=addr', '/')), {
    destination: '/d',
    readonly: false,
    nocopy: false,
    driver: 'nfs',
    options: { o: 'addr' },
  });
  throwsCode(() => volumeFromMount(parseMount('type=volume,src=/abs,dst=/d', '/')), 'ERR_USAGE', /invalid characters/);
});

test("the image's VOLUME entries: anonymous, except where the user mounts something", () => {
  assert.equal(
    imageVolumes({ '/data': {}, '/logs/': {}, '/taken': {}, rel: {} }, ['/taken/']).map((v) => v.destination),
    ['/data', '/logs'],
  );
  assert.equal(imageVolumes(null, []), []);
});

test.run();
