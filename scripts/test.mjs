#!/usr/bin/env node
// `npm test`: build, lint, then run every uvu suite under dist/test, and end with one plain
// "N passed, N failed" line. uvu's own totals are printed per run; we sum them so CI can read it.
import { spawnSync } from 'node:child_process';

const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
// The linter (eslint.config.js: type-aware rules such as no-floating-promises) is part of the test.
const lint = spawnSync('npm', ['run', 'lint', '--silent'], { stdio: 'inherit' });
if (lint.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const pattern = process.argv[2] ?? '.*\\.test\\.js$';
const run = spawnSync(process.execPath, ['node_modules/uvu/bin.js', 'dist/test', pattern], {
  encoding: 'utf8',
  stdio: ['inherit', 'pipe', 'inherit'],
  maxBuffer: 256 * 1024 * 1024,
});
process.stdout.write(run.stdout ?? '');
const num = (label) => Number((run.stdout ?? '').match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
const total = num('Total');
const passed = num('Passed');
const failed = total - passed - num('Skipped');
if (run.status !== 0 && failed === 0 && total === 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
