/**
 * Image endpoints: create (pull, with Docker's streamed JSON progress made from the pull's
 * events, src/events.ts), list, inspect, tag, push, DELETE, prune, and build (a tar context in
 * the body, the builder's lines streamed as `{"stream": …}`). Registry credentials come from the
 * user's files as for the CLI, or from `X-Registry-Auth` (base64 JSON), given to the use case as
 * a private auth file for that one request.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppContext } from '../app/context.js';
import { pull } from '../app/pull.js';
import { push } from '../app/push.js';
import { inspectImages, tagImage } from '../app/images.js';
import { pruneImages, removeImages } from '../app/rmi.js';
import { build } from '../app/build.js';
import { fanout, type Reporter, type TsrunEvent } from '../events.js';
import { buildTextReporter } from '../cli/build-output.js';
import { familiarName, familiarRepository, parseReference } from '../reference/reference.js';
import { ApiError, notFoundImage, toApiError } from './errors.js';
import { queryBool, queryFilters, sendJson, type Router } from './router.js';
import type { ApiState } from './state.js';
import { importFromSrc } from './container-tools.js';

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** `X-Registry-Auth` → a context whose credentials are that (REGISTRY_AUTH_FILE wins, credentials.ts). */
async function withRegistryAuth<T>(
  ctx: AppContext,
  req: IncomingMessage,
  fn: (ctx: AppContext) => Promise<T>,
): Promise<T> {
  const header = req.headers['x-registry-auth'];
  if (typeof header !== 'string' || header === '') return fn(ctx);
  let auth: { username?: string; password?: string; serveraddress?: string; identitytoken?: string };
  try {
    auth = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as typeof auth;
  } catch {
    return fn(ctx);
  }
  if (!auth?.serveraddress || (!auth.username && !auth.identitytoken)) return fn(ctx);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsrun-api-auth-'));
  try {
    const entry = auth.identitytoken
      ? { auth: Buffer.from(`${auth.username ?? '<token>'}:`).toString('base64'), identitytoken: auth.identitytoken }
      : { auth: Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64') };
    const file = path.join(dir, 'auth.json');
    await fs.writeFile(file, JSON.stringify({ auths: { [auth.serveraddress]: entry } }), { mode: 0o600 });
    return await fn({ ...ctx, env: { ...ctx.env, REGISTRY_AUTH_FILE: file } });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** A JSON-lines response (Docker's jsonmessage stream). */
function jsonStream(res: ServerResponse): { send(m: object): void; end(): void } {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  return { send: (m) => void res.write(`${JSON.stringify(m)}\r\n`), end: () => res.end() };
}

/** Docker's pull progress messages, from the pull's events. */
function pullMessages(send: (m: object) => void): Reporter {
  return {
    emit(e: TsrunEvent) {
      switch (e.type) {
        case 'layer-start':
          send({ status: 'Pulling fs layer', progressDetail: {}, id: short(e.digest) });
          break;
        case 'layer-exists':
          send({ status: 'Already exists', progressDetail: {}, id: short(e.digest) });
          break;
        case 'layer-progress':
          send({
            status: 'Downloading',
            progressDetail: { current: e.done, total: e.size },
            id: short(e.digest),
          });
          break;
        case 'layer-verifying':
          send({ status: 'Verifying Checksum', progressDetail: {}, id: short(e.digest) });
          break;
        case 'layer-done':
          send({ status: 'Pull complete', progressDetail: {}, id: short(e.digest) });
          break;
        default:
      }
    },
  };
}

function imageRef(query: URLSearchParams, nameKey: string): string {
  const from = query.get(nameKey) ?? '';
  const tag = query.get('tag') ?? '';
  if (!from) throw new ApiError(400, `invalid ${nameKey}: an image name is required`);
  if (!tag) return from;
  if (tag.includes(':')) return `${from}@${tag}`;
  return `${from}:${tag}`;
}

/** image.Summary of every image in the store, as `GET /images/json` lists them (also `system/df`'s). */
export async function imageSummaries(state: ApiState) {
  const file = await state.env.store.readImages();
  const r = await inspectImages(state.ctx, Object.keys(file.images));
  return (r.found as Record<string, unknown>[]).map((i) => {
    const config = (i.Config ?? {}) as { Labels?: Record<string, string> | null };
    return {
      Id: i.Id as string,
      ParentId: '',
      RepoTags: (i.RepoTags ?? []) as string[],
      RepoDigests: i.RepoDigests ?? [],
      Created: Math.floor(Date.parse(String(i.Created ?? '')) / 1000) || 0,
      Size: (i.Size ?? 0) as number,
      SharedSize: -1,
      VirtualSize: i.Size ?? 0,
      Labels: config.Labels ?? {},
      Containers: -1,
    };
  });
}

export function registerImageRoutes(router: Router, state: ApiState): void {
  router.add('POST', '/images/create', async (r) => {
    const { req, res, query } = r;
    if (query.get('fromSrc')) return importFromSrc(state, r);
    const ref = imageRef(query, 'fromImage');
    const named = familiarName(parseReference(ref));
    // Errors before the first byte are a status; after it, a message in the stream (Docker's way).
    const out = jsonStream(res);
    const tag = ref.includes('@') ? ref.slice(ref.indexOf('@') + 1) : (parseReference(ref).tag ?? 'latest');
    out.send({ status: `Pulling from ${familiarRepository(parseReference(ref))}`, id: tag });
    try {
      const r = await withRegistryAuth(state.ctx, req, (ctx) =>
        pull(
          { ...ctx, reporter: pullMessages(out.send) },
          { reference: ref, platform: query.get('platform') || undefined },
        ),
      );
      out.send({ status: `Digest: ${r.digest}` });
      out.send({
        status: r.fresh ? `Status: Downloaded newer image for ${named}` : `Status: Image is up to date for ${named}`,
      });
    } catch (err) {
      const e = toApiError(err);
      out.send({ errorDetail: { message: e.message }, error: e.message });
    }
    out.end();
  });

  router.add('GET', '/images/json', async ({ res, query }) => {
    const filters = queryFilters(query);
    const out = await imageSummaries(state);
    const matches = (img: (typeof out)[number]) =>
      filters.every((f) => {
        const [k, v = ''] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
        if (k === 'reference')
          return (img.RepoTags as string[]).some(
            (t) =>
              t === v || t.startsWith(`${v}:`) || familiarName(parseReference(t)) === familiarName(parseReference(v)),
          );
        if (k === 'dangling') return (v === 'true') === ((img.RepoTags as string[]).length === 0);
        if (k === 'label') {
          const [lk, lv] = v.split('=');
          return lv === undefined ? lk! in img.Labels : img.Labels[lk!] === lv;
        }
        return true;
      });
    sendJson(res, 200, out.filter(matches));
  });

  router.add('GET', '/images/{name*}/json', async ({ res, params }) => {
    const r = await inspectImages(state.ctx, [params.name ?? '']);
    if (r.found.length === 0) throw notFoundImage(params.name ?? '');
    sendJson(res, 200, r.found[0]);
  });

  router.add('POST', '/images/{name*}/tag', async ({ res, params, query }) => {
    const repo = query.get('repo') ?? '';
    if (!repo) throw new ApiError(400, 'invalid repo: a repository is required');
    const target = query.get('tag') ? `${repo}:${query.get('tag')}` : repo;
    await tagImage(state.ctx, params.name ?? '', target).catch((err: unknown) => {
      const e = toApiError(err);
      if (e.status === 404) throw notFoundImage(params.name ?? '');
      throw e;
    });
    res.writeHead(201);
    res.end();
  });

  router.add('POST', '/images/{name*}/push', async ({ req, res, params, query }) => {
    const ref = query.get('tag') ? `${params.name}:${query.get('tag')}` : (params.name ?? '');
    const inspected = await inspectImages(state.ctx, [ref]);
    if (inspected.found.length === 0) throw notFoundImage(ref);
    const out = jsonStream(res);
    out.send({
      status: `The push refers to repository [${parseReference(ref).registry}/${parseReference(ref).repository}]`,
    });
    try {
      const pushed = await withRegistryAuth(state.ctx, req, (ctx) =>
        push(
          {
            ...ctx,
            reporter: {
              emit: (e) => {
                if (e.type === 'push-blob' && !e.config)
                  out.send({
                    status:
                      e.outcome === 'exists'
                        ? 'Layer already exists'
                        : e.outcome === 'mounted'
                          ? 'Mounted from'
                          : 'Pushed',
                    progressDetail: {},
                    id: short(e.digest),
                  });
              },
            },
          },
          { reference: ref },
        ),
      );
      for (const p of pushed) {
        out.send({ status: `${p.tag}: digest: ${p.digest} size: ${p.size}` });
        out.send({ progressDetail: {}, aux: { Tag: p.tag, Digest: p.digest, Size: p.size } });
      }
    } catch (err) {
      const e = toApiError(err);
      out.send({ errorDetail: { message: e.message }, error: e.message });
    }
    out.end();
  });

  router.add('DELETE', '/images/{name*}', async ({ res, params, query }) => {
    const r = await removeImages(state.ctx, [params.name ?? ''], queryBool(query, 'force'));
    if (r.errors.length > 0) {
      const e = toApiError(r.errors[0]);
      if (e.status === 404) throw notFoundImage(params.name ?? '');
      throw e;
    }
    sendJson(
      res,
      200,
      r.lines.map((l) => ('untagged' in l ? { Untagged: l.untagged } : { Deleted: l.deleted })),
    );
  });

  router.add('POST', '/images/prune', async ({ res, query }) => {
    const dangling = queryFilters(query).find((f) => f.startsWith('dangling='));
    const r = await pruneImages(state.env, { all: dangling === 'dangling=false' || dangling === 'dangling=0' });
    sendJson(res, 200, {
      ImagesDeleted: r.lines.map((l) => ('untagged' in l ? { Untagged: l.untagged } : { Deleted: l.deleted })),
      SpaceReclaimed: r.reclaimed ?? 0,
    });
  });

  router.add('POST', '/build', async ({ req, res, query }) => {
    const json = (k: string): Record<string, string> => {
      const v = query.get(k);
      if (!v) return {};
      try {
        return JSON.parse(v) as Record<string, string>;
      } catch {
        throw new ApiError(400, `invalid ${k}: not JSON`);
      }
    };
    const quiet = queryBool(query, 'q');
    const out = jsonStream(res);
    try {
      // Docker's classic builder text (the CLI's listener of the build's events), as stream messages.
      const text = { write: (t: string) => out.send({ stream: t }) } as unknown as NodeJS.WritableStream;
      const result = await withRegistryAuth(state.ctx, req, (ctx) =>
        build(
          { ...ctx, reporter: fanout(pullMessages(out.send), buildTextReporter(text, text, quiet)) },
          {
            context: '-',
            stdin: req,
            file: query.get('dockerfile') || undefined,
            tags: query.getAll('t'),
            buildArgs: Object.entries(json('buildargs')).map(([k, v]) => `${k}=${v}`),
            target: query.get('target') || undefined,
            noCache: queryBool(query, 'nocache'),
            pull: queryBool(query, 'pull'),
            network:
              query.get('networkmode') && query.get('networkmode') !== 'default'
                ? (query.get('networkmode') ?? undefined)
                : undefined,
            labels: Object.entries(json('labels')).map(([k, v]) => `${k}=${v}`),
            platform: query.get('platform') || undefined,
            stepOutput: (c) => quiet || out.send({ stream: c.toString('utf8') }),
          },
        ),
      );
      out.send({ aux: { ID: result.id } });
      if (!quiet) {
        out.send({ stream: `Successfully built ${result.id.slice(7, 19)}\n` });
        for (const n of result.names) out.send({ stream: `Successfully tagged ${familiarName(parseReference(n))}\n` });
      } else out.send({ stream: `${result.id}\n` });
    } catch (err) {
      const e = toApiError(err);
      out.send({ errorDetail: { message: e.message }, error: e.message });
    }
    out.end();
  });
}
