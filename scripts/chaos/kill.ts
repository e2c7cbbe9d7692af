/**
 * Issue 19's crash-consistency loop (test/e2e/chaos.ts): SIGKILL at random moments of pull,
 * build, run -d, run --rm (attached), rm -f, rmi, push, system prune and a container's monitor,
 * until POINTS kills (default 20) landed in each (while it was in progress; the kill moments are
 * drawn over each operation's own --debug event timeline), checking after every kill that every command still works,
 * prune removes what the crash left, no record refers to missing data, every listed image runs,
 * no temp file survives, and no mount, namespace, veth, lease or iptables rule is left.
 *
 *   npm run build --silent && flock /tmp/tsrun-e2e.lock node dist/scripts/chaos/kill.js [POINTS [SEED [OPS]]]
 *
 * OPS: a comma-separated subset (pull,build,run-d,run-rm,rm-f,rmi,push,prune,monitor). As root,
 * with the test prerequisites (.ci/run): it starts its own loopback registry and store.
 * Exits 1 if one check failed or an operation got fewer than POINTS landed kills; prints each
 * failure and, per operation, the kills tried and landed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chaos, OPERATIONS, type Operation } from '../../test/e2e/chaos.js';
import { tsrun } from '../../test/e2e/cli.js';
import { bulkLayer, busyboxLayer } from '../../test/e2e/fixtures.js';
import { runDir } from '../../test/e2e/containers.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { pushImage } from '../../test/helpers/push.js';

const points = Number(process.argv[2] ?? 20);
const seed = Number(process.argv[3] ?? Date.now() % 100000);
const ops = (process.argv[4]?.split(',') ?? OPERATIONS) as Operation[];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-chaos-kill-'));
const root = path.join(tmp, 'root');
const reg = await startRegistry({ auth: 'anonymous' });
try {
  const base = busyboxLayer();
  await pushImage(reg, 'chaos/busybox', 'latest', {
    layers: [base],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  await pushImage(reg, 'chaos/big', 'latest', {
    layers: [base, bulkLayer(24, 24)],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  const image = `${reg.host}/chaos/busybox`;
  if ((await tsrun(['pull', '-q', image], { root })).code !== 0) throw new Error('pull failed');
  const context = path.join(tmp, 'ctx');
  mkdirSync(context);
  writeFileSync(path.join(context, 'Dockerfile'), `FROM ${image}\nRUN echo step > /f && sleep 0.3\nCOPY . /ctx\n`);
  console.log(`seed ${seed}, ${points} points per operation`);
  const r = await chaos({
    root,
    image,
    bigImage: `${reg.host}/chaos/big`,
    registry: reg.host,
    context,
    points,
    // Short operations (rmi: ~100 ms, half of it Node's start-up) miss more often.
    attemptsPerPoint: 8,
    ops,
    seed,
    log: (l) => console.log(l),
  });
  console.log('operation      attempts  landed');
  for (const op of ops)
    console.log(
      `${op.padEnd(14)} ${String(r.attempts[op] ?? 0).padStart(8)}  ${String(r.landed[op] ?? 0).padStart(6)}`,
    );
  const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  console.log(
    `${total(r.landed)} kills landed of ${total(r.attempts)} in ${r.seconds} s: ${r.failures.length} failed checks`,
  );
  for (const f of r.failures) console.log(`  ${f}`);
  const short = ops.filter((op) => (r.landed[op] ?? 0) < points);
  if (short.length > 0) console.log(`fewer than ${points} landed kills: ${short.join(', ')}`);
  process.exitCode = r.failures.length === 0 && short.length === 0 ? 0 : 1;
} finally {
  await reg.stop();
  for (const id of (await tsrun(['ps', '-aq'], { root })).stdout.split('\n').filter(Boolean))
    await tsrun(['rm', '-f', id], { root });
  await tsrun(['system', 'prune', '-a', '-f'], { root });
  rmSync(runDir(root), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
}
