/**
 * The pure parts of `search`: where a term searches (Docker's splitReposSearchTerm) and Docker's
 * filter rules (daemon/search.go).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSearchFilters, splitSearchTerm } from '../../src/app/search.js';
import { isTsrunError } from '../../src/errors.js';

test('splitSearchTerm: a first component that looks like a host is a registry, else Docker Hub', () => {
  assert.equal(splitSearchTerm('node'), [undefined, 'node']);
  assert.equal(splitSearchTerm('mhart/alpine-node'), [undefined, 'mhart/alpine-node']);
  assert.equal(splitSearchTerm('localhost/app'), ['localhost', 'app']);
  assert.equal(splitSearchTerm('localhost:5000/team/app'), ['localhost:5000', 'team/app']);
  assert.equal(splitSearchTerm('registry.example.com/'), ['registry.example.com', '']);
  assert.equal(splitSearchTerm('docker.io/node'), [undefined, 'node']);
  assert.equal(splitSearchTerm('index.docker.io/library/node'), [undefined, 'library/node']);
});

test("parseSearchFilters: Docker's keys and values; the largest stars wins; anything else is refused", () => {
  assert.equal(parseSearchFilters([]), {});
  assert.equal(parseSearchFilters(['is-official=true', 'stars=3', 'stars=10', 'stars=2']), {
    official: true,
    stars: 10,
  });
  assert.equal(parseSearchFilters(['is-automated=false']), { automated: false });
  const refused = (f: string[], msg: RegExp) => {
    try {
      parseSearchFilters(f);
      assert.unreachable(f.join(' '));
    } catch (e) {
      assert.ok(isTsrunError(e, 'ERR_USAGE'), String(e));
      assert.match((e as Error).message, msg);
    }
  };
  refused(['stars=lots'], /invalid filter 'stars=lots'/);
  refused(['is-official=yes'], /invalid filter 'is-official=yes'/);
  refused(['is-official=true', 'is-official=false'], /invalid filter 'is-official=true,false'/);
  refused(['label=x'], /invalid filter 'label'/);
  refused(['stars'], /bad format of filter/);
});

test.run();
