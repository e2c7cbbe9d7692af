/**
 * The rest of what clients call: `events` (read back from the store as `tsrun events` does,
 * app/events.ts).
 *
 * Networks: networks.ts. Volumes: volumes.ts.
 */
import { streamEvents } from '../app/events.js';
import { queryFilters, type Router } from './router.js';
import type { ApiState } from './state.js';

export function registerExtraRoutes(router: Router, state: ApiState): void {
  router.add('GET', '/events', async ({ req, res, query }) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const ac = new AbortController();
    req.socket.once('close', () => ac.abort());
    await streamEvents(
      state.ctx,
      { since: query.get('since') || undefined, until: query.get('until') || undefined, filters: queryFilters(query) },
      (e) => void res.write(`${JSON.stringify(e)}\n`),
      ac.signal,
    );
    res.end();
  });
}
