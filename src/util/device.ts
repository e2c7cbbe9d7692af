/** Whether this process may read and write a device node, and its mode (for messages). */
import { constants as C, promises as fs } from 'node:fs';

export async function deviceAccess(p: string): Promise<{ usable: boolean; mode: string }> {
  const usable = await fs.access(p, C.R_OK | C.W_OK).then(
    () => true,
    () => false,
  );
  const mode = await fs.stat(p).then(
    (s) => (s.mode & 0o777).toString(8).padStart(4, '0'),
    () => 'missing',
  );
  return { usable, mode };
}
