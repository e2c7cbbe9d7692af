/**
 * The store and container records a container command works on (`Env`), opened from the
 * process's context. Its own module so that a command that only reads records (`ps`) does not
 * load the container use cases' graph (network, runtime, spec: app/containers.ts re-exports it).
 *
 * Contract: `openEnv` opens the store (creating it when missing) and makes the store's run
 * directory; it starts nothing and changes no record.
 */
import { quickFs } from '../util/fs-quick.js';
import path from 'node:path';
import { Store } from '../store/store.js';
import { storePaths } from '../runtime/paths.js';
import { Containers } from '../runtime/records.js';
import type { AppContext } from './context.js';

export interface Env {
  store: Store;
  containers: Containers;
  ctx: AppContext;
}

export async function openEnv(ctx: AppContext): Promise<Env> {
  const store = await Store.open(ctx.root);
  const sp = storePaths(store.root, ctx.uid, ctx.env);
  await quickFs.mkdir(sp.run, { recursive: true, mode: 0o700 });
  return { store, containers: new Containers(sp, path.join(store.root, 'locks')), ctx };
}
