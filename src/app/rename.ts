/**
 * `tsrun rename CONTAINER NEW_NAME`, as `docker rename`: the new name is taken first (the same
 * atomic symlink that `run --name` takes, so two renames cannot both win), then the record
 * changes, then the old name is released. Works whatever the container's state.
 */
import { TsrunError } from '../errors.js';
import { checkName } from '../runtime/records.js';
import type { AppContext } from './context.js';
import { openEnv } from './containers.js';

export async function renameContainer(ctx: AppContext, query: string, newName: string): Promise<void> {
  const name = newName.startsWith('/') ? newName.slice(1) : newName;
  checkName(name);
  const env = await openEnv(ctx);
  const found = await env.containers.find(query);
  await env.containers.lock(found.record.id, async () => {
    const record = await env.containers.read(found.record.id);
    if (!record) throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${query}`);
    if (record.name === name) {
      throw new TsrunError('ERR_USAGE', 'Renaming a container with the same name as its current name');
    }
    await env.containers.reserveName(name, record.id);
    const old = record.name;
    record.name = name;
    try {
      await env.containers.write(record);
    } catch (err) {
      await env.containers.releaseName(name, record.id);
      throw err;
    }
    await env.containers.releaseName(old, record.id);
  });
}
