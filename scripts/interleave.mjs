/**
 * Time shell commands interleaved (a benchmark helper, not a test): after one untimed round,
 * N rounds in a rotating order; per command the median and min of the wall time and of the CPU
 * time (user + sys of the command and the children it waited for, from /usr/bin/time).
 *
 *   node scripts/interleave.mjs 20 'old=CMD' 'new=CMD' 'podman=CMD'
 */
import { spawnSync } from 'node:child_process';

const n = Number(process.argv[2]);
const cmds = process.argv.slice(3).map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]);
const wall = cmds.map(() => []);
const cpu = cmds.map(() => []);
for (let r = 0; r <= n; r++) {
  for (let k = 0; k < cmds.length; k++) {
    const j = (k + r) % cmds.length;
    const t0 = process.hrtime.bigint();
    const p = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', 'sh', '-c', cmds[j][1]], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (p.status !== 0) {
      console.error(`${cmds[j][0]} failed: ${p.stderr}`);
      process.exit(1);
    }
    const m = /CPU ([\d.]+) ([\d.]+)/.exec(String(p.stderr));
    if (r > 0 && m) {
      wall[j].push(ms);
      cpu[j].push((Number(m[1]) + Number(m[2])) * 1000);
    }
  }
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const [k, [label]] of cmds.entries()) {
  console.log(
    `${label.padEnd(16)} wall median ${median(wall[k]).toFixed(1)} min ${Math.min(...wall[k]).toFixed(1)}` +
      ` | cpu median ${median(cpu[k]).toFixed(0)} min ${Math.min(...cpu[k]).toFixed(0)}`,
  );
}
