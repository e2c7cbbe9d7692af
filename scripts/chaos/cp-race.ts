/**
 * The long run of issue 13's cp race (test/e2e/cp-race.ts): a container swapping /x/d between a
 * directory and a symlink to "/" while cp reads /x/d<host dir>/marker out of it and writes into
 * /x/d<host dir>/ — COUNT times each way (default 20000; half of them through the O_PATH walk
 * that stands in for openat2). Then export, diff and commit against a container swapping a
 * directory and a symlink to a host directory (test/e2e/fs-race.ts), FS_COUNT rounds (default
 * 2000: ~100 s; each round 1 export walk, 20 diff walks, 1 commit, and every tenth the
 * commands themselves). Exits 1 if a single host file was read or written, or got into an
 * exported tar, a diff line or a committed layer.
 *
 *   npm run build --silent && flock /tmp/tsrun-e2e.lock node dist/scripts/chaos/cp-race.js [COUNT [FS_COUNT]]
 *
 * As root, with the test prerequisites (.ci/run): it starts its own loopback registry and store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { raceCp, removeTree } from '../../test/e2e/cp-race.js';
import { raceFs } from '../../test/e2e/fs-race.js';
import { tsrun } from '../../test/e2e/cli.js';
import { busyboxLayer } from '../../test/e2e/fixtures.js';
import { runDir } from '../../test/e2e/containers.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { pushImage } from '../../test/helpers/push.js';

const count = Number(process.argv[2] ?? 20000);
const fsCount = Number(process.argv[3] ?? 2000);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-chaos-cp-'));
const root = path.join(tmp, 'root');
const reg = await startRegistry({ auth: 'anonymous' });
try {
  await pushImage(reg, 'chaos/busybox', 'latest', {
    layers: [busyboxLayer()],
    config: { config: { Cmd: ['sh'], Env: ['PATH=/bin'] } },
  });
  const image = `${reg.host}/chaos/busybox`;
  const pulled = await tsrun(['pull', '-q', image], { root });
  if (pulled.code !== 0) throw new Error(pulled.stderr);
  const r = await raceCp({ root, image, count, log: (s) => console.log(s) });
  console.log(JSON.stringify(r));
  console.log(
    `${r.attempts.out + r.attempts.in + r.attempts.cli} copies in ${r.seconds} s: ${r.hostReads} host files read, ${r.hostWrites} written`,
  );
  const f = await raceFs({ root, image, count: fsCount, log: (s) => console.log(s) });
  console.log(JSON.stringify(f));
  const leaks = f.leaks.export + f.leaks.diff + f.leaks.commit;
  console.log(
    `${f.attempts.export} exports, ${f.attempts.diff} diffs, ${f.attempts.commit} commits in ${f.seconds} s: ${leaks} with a host file`,
  );
  process.exitCode = r.hostReads + r.hostWrites + leaks === 0 ? 0 : 1;
} finally {
  await reg.stop();
  rmSync(runDir(root), { recursive: true, force: true });
  await removeTree(tmp);
}
