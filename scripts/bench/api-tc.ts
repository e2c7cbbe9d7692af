/**
 * One testcontainers-node client against one socket (scripts/bench/api.ts runs this once per tool
 * and round: testcontainers makes its Docker client once per process, from the first
 * DOCKER_HOST). Prints a JSON line: the wall time, in ms, from `new GenericContainer(...).start()`
 * to its resolution (the container made, started, and its log line seen) for `--starts` (default
 * 2) containers one after another: the first includes the client's set-up (ping, info, version)
 * as a test's first container does, the others do not. Each is stopped after its time is taken.
 *
 *   DOCKER_HOST=unix:///S TESTCONTAINERS_RYUK_DISABLED=true node dist/scripts/bench/api-tc.js IMAGE [--starts 2]
 */
import { option } from './common.js';

async function main(): Promise<void> {
  const image = process.argv[2] ?? '';
  const starts = Number(option('--starts', '2'));
  const { GenericContainer, Wait } = await import('testcontainers');
  const ms: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t = process.hrtime.bigint();
    const c = await new GenericContainer(image)
      .withCommand(['sh', '-c', 'echo ready; exec sleep 60'])
      .withWaitStrategy(Wait.forLogMessage('ready'))
      // podman's compat API would ask for nofile 1048576 (scripts/bench/api.ts).
      .withUlimits({ nofile: { soft: 1024, hard: 20000 }, nproc: { soft: 4096, hard: 4096 } })
      .start();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    await c.stop({ timeout: 0 });
  }
  process.stdout.write(`${JSON.stringify(ms)}\n`);
}

await main();
