/**
 * The rest of what clients call: `events` (read back from the store as `tsrun events` does,
 * app/events.ts), `system/df`'s counts, and networks and volumes.
 *
 * Networks: tsrun's `network` verbs are being built beside this service (branch `net`); until
 * they land on main, the only networks are Docker's built-in three (bridge, host, none: what
 * `--network` takes), listed and inspected as Docker shows them, and creating a network is
 * refused with 501 and a message saying so, so a client fails clearly instead of running with
 * something it did not ask for. TODO(net): wire /networks/* to app/networks' use cases, and
 * NetworkingConfig's endpoints in create-body.ts. Volumes: volumes.ts.
 */
import { streamEvents } from '../app/events.js';
import { ApiError } from './errors.js';
import { queryFilters, sendJson, type Router } from './router.js';
import type { ApiState } from './state.js';

const BUILTIN = ['bridge', 'host', 'none'];

function networkJson(name: string): Record<string, unknown> {
  return {
    Name: name,
    Id: name,
    Created: '0001-01-01T00:00:00Z',
    Scope: 'local',
    Driver: name === 'none' ? 'null' : name,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    Containers: {},
    Options: {},
    Labels: {},
  };
}

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

  router.add('GET', '/networks', ({ res }) => {
    sendJson(res, 200, BUILTIN.map(networkJson));
    return Promise.resolve();
  });
  router.add('GET', '/networks/{id}', ({ res, params }) => {
    if (!BUILTIN.includes(params.id ?? '')) throw new ApiError(404, `network ${params.id} not found`);
    sendJson(res, 200, networkJson(params.id ?? ''));
    return Promise.resolve();
  });
  const later = (what: string) => () => {
    throw new ApiError(501, `${what} are not supported by this tsrun yet (tsrun network)`);
  };
  router.add('POST', '/networks/create', later('user-defined networks'));
}
