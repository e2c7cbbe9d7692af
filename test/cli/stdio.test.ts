/**
 * printOut (src/cli/stdio.ts): a listing's whole output written to fd 1 before Node's stdout
 * stream exists must reach its reader whole and in order, through a blocking pipe, a
 * non-blocking one whose reader is slow (EAGAIN: the rest goes through the stream), a file, and
 * after the stream was made; a reader that went away is the broken-pipe rule (exit 141).
 * Each case is a child Node process running the built module, as main.ts uses it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STDIO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/stdio.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-stdio-'));
const S = suite('cli stdio printOut');
S.after(() => rmSync(tmp, { recursive: true, force: true }));

/** 4 MB of numbered lines: far more than a pipe holds. */
const LINES = 400_000;
const text = Array.from({ length: LINES }, (_, i) => `row ${i}\n`).join('');
const sum = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/**
 * A child that prints `text` (made in the child) with printOut, then `tail` through process.stdout,
 * and exits as main.ts does (flushStdio, then exit). `before` runs first (e.g. making the stream).
 */
function child(o: { before?: string; tail?: string } = {}): string {
  return [
    `import { guardStdio, printOut, flushStdio } from ${JSON.stringify(STDIO)};`,
    `guardStdio(() => process.exit(141));`,
    o.before ?? '',
    `printOut(Array.from({ length: ${LINES} }, (_, i) => 'row ' + i + '\\n').join(''));`,
    o.tail ? `process.stdout.write(${JSON.stringify(o.tail)});` : '',
    `await flushStdio();`,
    `process.exit(0);`,
  ].join('\n');
}
const node = (script: string) => `node --input-type=module -e '${script.replace(/'/g, `'\\''`)}'`;

S('a blocking pipe into a slow reader gets every byte, then what the stream writes after', async () => {
  const r = await execa('bash', ['-c', `set -o pipefail; ${node(child({ tail: 'end\n' }))} | (sleep 1; sha256sum)`]);
  assert.is(r.stdout.split(' ')[0], sum(`${text}end\n`));
});

S('a non-blocking pipe whose reader is slow (EAGAIN): the rest goes through the stream, in order', async () => {
  // python3 (node-gyp's, so on every build machine) makes the pipe, sets O_NONBLOCK on the
  // child's end and reads it only after a pause: the first write(2) fills it and the next is EAGAIN.
  const py = [
    'import fcntl, hashlib, os, subprocess, sys, time',
    'r, w = os.pipe()',
    'fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)',
    'p = subprocess.Popen(["node", "--input-type=module", "-e", sys.argv[1]], stdout=w)',
    'os.close(w)',
    'time.sleep(1)',
    'h = hashlib.sha256()',
    'while True:',
    '    b = os.read(r, 65536)',
    '    if not b: break',
    '    h.update(b)',
    'print(h.hexdigest(), p.wait())',
  ].join('\n');
  const r = await execa('python3', ['-c', py, child({ tail: 'end\n' })]);
  assert.is(r.stdout, `${sum(`${text}end\n`)} 0`);
});

S('a file; and once the stream exists, printOut writes through it (never around what it queued)', async () => {
  const file = path.join(tmp, 'out');
  await execa('bash', ['-c', `${node(child())} > ${file}`]);
  assert.is(sum(readFileSync(file)), sum(text));
  // With the stream made first, every byte goes through its write (a direct write(2) could pass
  // what a pipe's stream still queues): counted in the child, told on stderr.
  const before = [
    "process.stdout.write('first\\n');",
    'const write = process.stdout.write.bind(process.stdout);',
    'let calls = 0;',
    'process.stdout.write = (...a) => (calls++, write(...a));',
    "process.on('exit', () => process.stderr.write(`calls ${calls}`));",
  ].join(' ');
  const r = await execa('bash', ['-c', `${node(child({ before }))} > ${file}`]);
  assert.is(sum(readFileSync(file)), sum(`first\n${text}`));
  assert.is(r.stderr, 'calls 1');
});

S("a reader that goes away: exit 141, as the stream's broken-pipe rule", async () => {
  const r = await execa('bash', ['-c', `${node(child())} | head -c 3; echo " \${PIPESTATUS[0]}"`]);
  assert.is(r.stdout, 'row 141');
});

S.run();
