/**
 * `GET /system/df`: what `docker system df` tabulates, from the same views the list endpoints
 * give: images (`GET /images/json`'s, with how many containers use each), containers with their
 * sizes (`ps --size`, app/ps.ts), volumes with their sizes and users (app/volumes.ts). No build
 * cache is reported (tsrun's builder caches in the image store: its layers are the images').
 *
 * LayersSize is the sum of the images' sizes, so a layer two images share counts twice (Docker
 * counts it once); the rows per image are exact.
 */
import { listContainers } from '../app/ps.js';
import { listVolumes, volumeStore } from '../app/volumes.js';
import { summaryJson } from './containers.js';
import { imageSummaries } from './images.js';
import { sendJson, type Router } from './router.js';
import type { ApiState } from './state.js';

const bare = (id: string) => id.replace(/^sha256:/, '');

export function registerDfRoutes(router: Router, state: ApiState): void {
  router.add('GET', '/system/df', async ({ res }) => {
    const containers = await listContainers(state.env, { all: true, size: true });
    const images = (await imageSummaries(state)).map((i) => ({
      ...i,
      SharedSize: 0,
      Containers: containers.filter((c) => bare(c.imageId) === bare(i.Id)).length,
    }));
    const vs = volumeStore(state.env);
    const volumes = await Promise.all(
      (await listVolumes(state.env)).map(async ({ links, ...v }) => ({
        ...v,
        UsageData: { Size: await vs.size(v.Name).catch(() => -1), RefCount: links },
      })),
    );
    sendJson(res, 200, {
      LayersSize: images.reduce((n, i) => n + i.Size, 0),
      Images: images,
      Containers: containers.map(summaryJson),
      Volumes: volumes,
      BuildCache: [],
    });
  });
}
