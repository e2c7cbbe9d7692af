/**
 * Property-based tests (fast-check) for the parsers that read what users and registries type:
 * image references, `-p` specs, Dockerfile word expansion, registries.conf, manifest/index JSON.
 * The property everywhere: any input gives a result or a TsrunError with a message that names
 * the input — never another exception (a crash). Where a grammar is known, generated valid
 * inputs must also parse and round-trip. Counterexamples found are kept below as named cases.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { TsrunError } from '../../src/errors.js';
import { formatReference, parseNormalizedNamed, parseReference } from '../../src/reference/reference.js';
import { parsePublish } from '../../src/network/ports.js';
import { expandWord, expandWords, keyValues } from '../../src/build/words.js';
import { parseRegistriesConf } from '../../src/registry/registries-conf.js';
import { parseManifestOrIndex } from '../../src/registry/manifest.js';
import { MediaType } from '../../src/oci/media-types.js';

const RUNS = { numRuns: 400 };

/** `fn(input)` returns, or throws a TsrunError; anything else fails the property. */
function total<T>(fn: (input: T) => unknown): (input: T) => void {
  return (input) => {
    try {
      fn(input);
    } catch (err) {
      if (!(err instanceof TsrunError))
        throw new Error(`not a TsrunError for ${JSON.stringify(input)}: ${String(err)}`, { cause: err });
      assert.ok(err.message.length > 0);
    }
  };
}

const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom(...'ab:/@.-_[]%#0123456789sha'.split('')) }),
);

// References -----------------------------------------------------------------------------------

const lower = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const component = fc
  .tuple(lower, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), lower), { maxLength: 2 }))
  .map(([head, tail]) => head + tail.map(([s, c]) => s + c).join(''));
const domain = fc.oneof(
  fc.constant('localhost'),
  fc.tuple(lower, fc.constantFrom('.io', '.example.com', '.local')).map(([a, b]) => a + b),
  fc
    .tuple(fc.constantFrom('127.0.0.1', 'registry.local', 'localhost'), fc.integer({ min: 1, max: 65535 }))
    .map(([h, p]) => `${h}:${p}`),
);
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const hex64 = fc.stringMatching(/^[a-f0-9]{64}$/);
const validRef = fc
  .record({
    domain: fc.option(domain, { nil: undefined }),
    path: fc.array(component, { minLength: 1, maxLength: 3 }),
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(hex64, { nil: undefined }),
  })
  // Without a registry, a first component with '.' or ':' (or "localhost") would be read as one.
  .filter(
    (r) => r.domain !== undefined || r.path.length === 1 || (!/[.:]/.test(r.path[0]!) && r.path[0] !== 'localhost'),
  )
  .map(
    (r) =>
      `${r.domain ? `${r.domain}/` : ''}${r.path.join('/')}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@sha256:${r.digest}` : ''}`,
  )
  .filter((s) => s.split('@')[0]!.length <= 255 && !/^[a-f0-9]{64}$/.test(s));

test('references: any text parses or fails with ERR_REFERENCE', () => {
  fc.assert(
    fc.property(
      anyText,
      total((s: string) => parseReference(s)),
    ),
    RUNS,
  );
});

test('references: every reference of the grammar parses, and its normal form is a fixed point', () => {
  fc.assert(
    fc.property(validRef, (s) => {
      const r = parseNormalizedNamed(s);
      const again = parseNormalizedNamed(formatReference(r));
      assert.equal(again, r);
    }),
    RUNS,
  );
});

// -p ------------------------------------------------------------------------------------------

test('-p: any text parses or fails with a usage error', () => {
  fc.assert(
    fc.property(
      anyText,
      total((s: string) => parsePublish(s)),
    ),
    RUNS,
  );
});

test('-p: [ip:][host:]ctr[-ctr2][/proto] gives one mapping per container port, in range', () => {
  const spec = fc.record({
    ip: fc.option(fc.constantFrom('127.0.0.1', '0.0.0.0', '[::1]'), { nil: undefined }),
    host: fc.option(fc.integer({ min: 1, max: 65000 }), { nil: undefined }),
    ctr: fc.integer({ min: 1, max: 65000 }),
    span: fc.integer({ min: 0, max: 20 }),
    proto: fc.constantFrom('', '/tcp', '/udp'),
  });
  fc.assert(
    fc.property(spec, (p) => {
      const hostPart = p.host === undefined ? '' : p.span ? `${p.host}-${p.host + p.span}:` : `${p.host}:`;
      // An address needs both colons: ip:hostPort:ctr, or ip::ctr for any host port.
      const ipPart = p.ip === undefined ? '' : hostPart ? `${p.ip}:` : `${p.ip}::`;
      const text = `${ipPart}${hostPart}${p.ctr}${p.span ? `-${p.ctr + p.span}` : ''}${p.proto}`;
      const m = parsePublish(text);
      assert.is(m.length, p.span + 1, text);
      m.forEach((x, i) => {
        assert.is(x.containerPort, p.ctr + i);
        assert.is(x.protocol, p.proto === '/udp' ? 'udp' : 'tcp');
        if (p.host !== undefined) assert.is(x.hostPort, p.host + i);
      });
    }),
    RUNS,
  );
});

// Dockerfile words ----------------------------------------------------------------------------

const vars = new Map([
  ['A', 'alpha'],
  ['EMPTY', ''],
  ['SP', 'a b'],
]);
const dockerText = fc.string({ unit: fc.constantFrom(...'ab $${}:-+?"\'\\\\AEMPTYSP \t`'.split('')) });

test('Dockerfile words: any text expands or fails with a TsrunError', () => {
  fc.assert(
    fc.property(
      fc.oneof(anyText, dockerText),
      total((s: string) => {
        expandWord(s, vars);
        expandWords(s, vars);
        expandWord(s, vars, '`');
      }),
    ),
    RUNS,
  );
  fc.assert(
    fc.property(
      fc.oneof(anyText, dockerText),
      total((s: string) => keyValues(s, vars)),
    ),
    RUNS,
  );
});

test('Dockerfile words: text without $, quotes or escapes is left as it is', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9_./:,=+-]*$/), (s) => {
      assert.is(expandWord(s, vars), s);
    }),
    RUNS,
  );
});

test('Dockerfile words: $VAR and ${VAR} expand to the value, unset to nothing', () => {
  fc.assert(
    fc.property(fc.constantFrom('A', 'EMPTY', 'SP', 'NOPE'), fc.boolean(), (name, braces) => {
      assert.is(
        expandWord(braces ? `x\${${name}}y` : `x$${name} y`.replace(' y', '/y'), vars),
        `x${vars.get(name) ?? ''}${braces ? 'y' : '/y'}`,
      );
    }),
    RUNS,
  );
});

// registries.conf -----------------------------------------------------------------------------

const tomlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '[[registry]]',
        '[[registry.mirror]]',
        'prefix = "docker.io"',
        'location = "127.0.0.1:5000"',
        'insecure = true',
        'blocked = "yes"',
        'unqualified-search-registries = ["docker.io"]',
        'short-name-mode = "permissive"',
        'mirror-by-digest-only = 1',
        'pull-from-mirror = "all"',
        'location = ""',
        'prefix = "*.example.com"',
        '[registries.search]',
        'registries = []',
        '= =',
        '"',
      ),
      fc.string(),
    ),
    { maxLength: 12 },
  )
  .map((lines) => lines.join('\n'));

test('registries.conf: any text parses or fails with a TsrunError naming the file', () => {
  fc.assert(
    fc.property(fc.oneof(tomlish, anyText), (text) => {
      try {
        parseRegistriesConf(text, '/etc/containers/registries.conf');
      } catch (err) {
        if (!(err instanceof TsrunError))
          throw new Error(`not a TsrunError for ${JSON.stringify(text)}: ${String(err)}`, { cause: err });
        assert.match(err.message, 'registries.conf');
      }
    }),
    RUNS,
  );
});

// Manifests -----------------------------------------------------------------------------------

const descriptor = fc.record(
  {
    mediaType: fc.constantFrom(MediaType.OCILayerGzip, 'x', ''),
    digest: fc.oneof(
      hex64.map((h) => `sha256:${h}`),
      fc.string(),
    ),
    size: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.string()),
  },
  { requiredKeys: [] },
);
const manifestish = fc.record(
  {
    schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), fc.anything()),
    mediaType: fc.constantFrom(MediaType.OCIManifest, MediaType.OCIIndex, 'text/plain', undefined),
    config: fc.oneof(descriptor, fc.anything()),
    layers: fc.oneof(fc.array(descriptor, { maxLength: 3 }), fc.anything()),
    manifests: fc.oneof(fc.array(descriptor, { maxLength: 3 }), fc.anything()),
  },
  { requiredKeys: [] },
);

test('manifests: any bytes under any media type parse or fail with a TsrunError', () => {
  const types = fc.constantFrom(
    MediaType.OCIManifest,
    MediaType.OCIIndex,
    MediaType.DockerManifest,
    '',
    'application/json',
  );
  fc.assert(
    fc.property(
      fc.oneof(
        manifestish.map((m) => JSON.stringify(m)),
        fc.json(),
        anyText,
      ),
      types,
      (text, type) => total((b: Buffer) => parseManifestOrIndex(b, type))(Buffer.from(text)),
    ),
    RUNS,
  );
});

test.run();
