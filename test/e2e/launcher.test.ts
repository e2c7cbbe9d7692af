/**
 * bin/tsrun.js as a program: its shell line starts Node without NODE_EXTRA_CA_CERTS (which Node
 * would read eagerly, ~40 ms per command) and hands the file on as TSRUN_EXTRA_CA_CERTS; the
 * certificates must still be trusted wherever tsrun verifies TLS: build's ADD <https url> and
 * the registry client's agent. The server is an https server on 127.0.0.1 whose certificate is
 * signed by a CA this suite makes with openssl.
 */
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { tsrun } from './cli.js';

const Launcher = suite('bin/tsrun.js launcher and NODE_EXTRA_CA_CERTS');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-e2e-launcher-'));
const root = path.join(tmp, 'store');
const ca = path.join(tmp, 'ca.pem');
let server: https.Server;
let port = 0;

function makeCertificates(): { key: Buffer; cert: Buffer } {
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: tmp, stdio: 'pipe' });
  o(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=tsrun-test-ca',
  );
  o(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'srv.key',
    '-out',
    'srv.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(path.join(tmp, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  o(
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  return { key: readFileSync(path.join(tmp, 'srv.key')), cert: readFileSync(path.join(tmp, 'srv.pem')) };
}

Launcher.before(async () => {
  server = https.createServer(makeCertificates(), (req, res) => {
    if (req.url === '/hello.txt') res.end('hello over tls\n');
    else if (req.url === '/v2/') res.end('{}');
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

Launcher.after(() => {
  server.close();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

Launcher('the shell line starts Node without NODE_EXTRA_CA_CERTS and passes the file on', async () => {
  // A `node` first in PATH that records the environment it was started with.
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin, { recursive: true });
  const dump = path.join(tmp, 'env.txt');
  writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nenv > '${dump}'\nexec '${process.execPath}' "$@"\n`);
  chmodSync(path.join(bin, 'node'), 0o755);
  const r = await tsrun(['--version'], { root, env: { PATH: `${bin}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: ca } });
  assert.is(r.code, 0, r.stderr);
  const env = readFileSync(dump, 'utf8').split('\n');
  assert.ok(env.includes(`TSRUN_EXTRA_CA_CERTS=${ca}`), 'the file is handed on');
  assert.not.ok(
    env.some((l) => l.startsWith('NODE_EXTRA_CA_CERTS=')),
    'Node does not read it at start-up',
  );
});

Launcher('build ADD <https url> trusts NODE_EXTRA_CA_CERTS, and verifies without it', async () => {
  const ctx = path.join(tmp, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(path.join(ctx, 'Dockerfile'), `FROM scratch\nADD https://127.0.0.1:${port}/hello.txt /hello.txt\n`);
  const ok = await tsrun(['build', '--no-cache', '-t', 'tls-add', ctx], { root, env: { NODE_EXTRA_CA_CERTS: ca } });
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /Successfully tagged tls-add:latest/);
  const refused = await tsrun(['build', '--no-cache', '-t', 'tls-add2', ctx], {
    root,
    env: { NODE_EXTRA_CA_CERTS: undefined },
  });
  assert.is(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /certificate/i);
});

Launcher('the registry client trusts TSRUN_EXTRA_CA_CERTS, and verifies without it', async () => {
  const http = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/registry/http.js');
  const script = `import { send } from ${JSON.stringify(http)};
    try { const r = await send({ url: 'https://127.0.0.1:${port}/v2/' }, { maxAttempts: 1 }); console.log('status ' + r.status); }
    catch (e) { console.log('error ' + e.message); }`;
  const { NODE_EXTRA_CA_CERTS: _ignored, ...bare } = process.env;
  // Asynchronously: the server answers from this process.
  const run = async (env: NodeJS.ProcessEnv) =>
    String(
      (await execa(process.execPath, ['--input-type=module', '-e', script], { env, extendEnv: false })).stdout,
    ).trim();
  assert.is(await run({ ...bare, TSRUN_EXTRA_CA_CERTS: ca }), 'status 200');
  assert.match(await run(bare), /^error .*certificate/i);
});

Launcher.run();
