/**
 * The image stages of `--explain`: pull's (resolve, manifest, layers, store), the same told as
 * one "Image" stage by run and create, build's (base image, steps, result) and push's. Text from
 * events only; each with a command to look at the result and one that does the step by hand
 * (curl against the registry's API: never with credentials, tsrun has none to show).
 */
import type { TsrunEvent } from '../../events.js';
import { detail, hand, humanBytes, look, looks, raw, short, why, type Line, type StageText } from './layout.js';
import type { TextCtx } from './render.js';

type Ev<T extends TsrunEvent['type']> = Extract<TsrunEvent, { type: T }>;

export const all = <T extends TsrunEvent['type']>(events: readonly TsrunEvent[], type: T): Ev<T>[] =>
  events.filter((e): e is Ev<T> => e.type === type);
export const first = <T extends TsrunEvent['type']>(events: readonly TsrunEvent[], type: T): Ev<T> | undefined =>
  all(events, type)[0];

/** An endpoint as a URL: loopback speaks plain HTTP (as tsrun's client does), others HTTPS. */
export function endpointUrl(endpoint: string): string {
  if (endpoint.includes('://')) return endpoint.replace(/\/+$/, '');
  return `${/^(localhost|127\.|\[::1\])/.test(endpoint) ? 'http' : 'https'}://${endpoint}`;
}

/** `R=…/v2/REPO` and `D=DIGEST` first, so each command fits a line and reads as one. */
function repoVars(r: Ev<'resolve'>, digest: string): string[] {
  return [`R=${endpointUrl(r.endpoint)}/v2/${r.repository}`, `D=${digest}`];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The registry's base URL for a repository named as Docker names it (`host:5000/app`). */
function registryUrl(repository: string): { base: string; repo: string } {
  const [head, ...rest] = repository.split('/');
  if (rest.length > 0 && head && /[.:]|^localhost$/.test(head)) {
    const loop = /^(localhost|127\.|\[::1\])/.test(head);
    return { base: `${loop ? 'http' : 'https'}://${head}`, repo: rest.join('/') };
  }
  return { base: 'https://registry-1.docker.io', repo: rest.length > 0 ? repository : `library/${repository}` };
}

const PULL_TYPES = new Set([
  'resolve',
  'manifest',
  'config',
  'layer-start',
  'layer-exists',
  'layer-done',
  'layer-retry',
  'blob-resume',
  'image-stored',
]);

function resolveLines(r: Ev<'resolve'> | undefined): Line[] {
  if (!r) return [];
  const m = r.mirror ? ` (a mirror of ${r.registry})` : '';
  return [detail('registry', `${r.endpoint}${m}, repository ${r.repository}`)];
}

function manifestLines(ev: readonly TsrunEvent[]): Line[] {
  const out: Line[] = [];
  const m = first(ev, 'manifest');
  if (m?.fromIndex) out.push(detail('index', `${m.fromIndex} → ${m.platform ?? 'this platform'}`));
  if (m) out.push(detail('manifest', m.digest));
  const c = first(ev, 'config');
  if (c) out.push(detail('config', c.digest));
  return out;
}

function layerLines(ev: readonly TsrunEvent[], ctx: TextCtx): Line[] {
  const out: Line[] = [];
  const done = new Map(all(ev, 'layer-done').map((d) => [d.digest, d]));
  const sizes = new Map(all(ev, 'layer-start').map((s) => [s.digest, s.size]));
  const seen = new Set<string>();
  for (const e of ev) {
    if ((e.type !== 'layer-exists' && e.type !== 'layer-start') || seen.has(e.digest)) continue;
    seen.add(e.digest);
    const d = done.get(e.digest);
    out.push(detail(`layer ${seen.size}`, e.digest));
    if (e.type === 'layer-exists') out.push(detail('', `already in the store (chain ${short(e.chainId)})`));
    else {
      const size = sizes.get(e.digest) ?? 0;
      out.push(
        detail(
          '',
          `fetched ${humanBytes(size)}, checked, unpacked ${d ? humanBytes(d.unpackedBytes) : '(not finished)'} ` +
            `(chain ${short(d?.chainId ?? e.chainId)})`,
        ),
      );
      if (ctx.mode === 'full' && d) out.push(detail('', `diff id ${d.diffId}`), detail('', `chain id ${d.chainId}`));
    }
  }
  for (const r of all(ev, 'layer-retry')) out.push(detail('retry', `${short(r.digest)}: ${r.reason}`));
  for (const r of all(ev, 'blob-resume'))
    out.push(detail('resume', `${short(r.digest)} at byte ${r.offset}: ${r.reason}`));
  return out;
}

function pullLooks(ev: readonly TsrunEvent[]): Line[] {
  const r = first(ev, 'resolve');
  const m = first(ev, 'manifest');
  const out: Line[] = [];
  if (r && m) {
    out.push(...looks([...repoVars(r, m.digest), `curl -s -H 'Accept: ${m.mediaType}' $R/manifests/$D | jq .`]));
    const l = ev.find((e) => e.type === 'layer-start' || e.type === 'layer-exists') as Ev<'layer-start'> | undefined;
    if (l) out.push(...hand([...repoVars(r, l.digest), 'mkdir layer && curl -sL $R/blobs/$D | tar -xzf - -C layer']));
  }
  return out;
}

const WHY_IMAGE =
  'an image is a manifest (a list of layers: tar files named by their sha256) and a config (command, ' +
  'environment, user); tsrun fetches each layer it does not have, checks its digest and unpacks it ' +
  'once into the store, where every container of the image shares it';

/** run/create/build's one image stage: the pull, or why there was none. */
export function imageText(ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const lines: Line[] = [];
  const notLocal = first(ev, 'image-not-local');
  const damaged = first(ev, 'image-damaged');
  const platform = first(ev, 'image-platform');
  const stored = first(ev, 'image-stored');
  const from = first(ev, 'build-step');
  if (from) lines.push(detail(`step ${from.step}`, from.instruction));
  if (notLocal) lines.push(detail('missing', `${notLocal.reference} is not in the store: pulled it`));
  if (damaged) lines.push(detail('damaged', `layer ${short(damaged.chainId)}: ${damaged.reason}; pulled again`));
  if (platform) lines.push(detail('platform', platform.message));
  const pulled = ev.some((e) => PULL_TYPES.has(e.type));
  if (!pulled) {
    return {
      summary: from
        ? `${from.instruction.replace(/^from\s+/i, '')}: already in the store, nothing to pull`
        : 'already in the store: nothing to pull',
      lines: [...lines, why(WHY_IMAGE), look('tsrun images'), look('tsrun image layers IMAGE')],
    };
  }
  lines.push(...resolveLines(first(ev, 'resolve')), ...manifestLines(ev), ...layerLines(ev, ctx));
  const summary = stored
    ? `pulled ${stored.name ?? notLocal?.reference ?? 'the image'}: ${stored.digest}`
    : 'pulling (not finished)';
  return { summary, lines: [...lines, why(WHY_IMAGE), ...pullLooks(ev)] };
}

export function resolveText(ev: readonly TsrunEvent[]): StageText {
  const r = first(ev, 'resolve');
  if (!r) return { summary: 'not reached', lines: [] };
  return {
    summary: `${r.reference} → ${r.endpoint}/v2/${r.repository}`,
    lines: [
      ...resolveLines(r),
      why(
        'a short name is filled in as Docker does (busybox is docker.io/library/busybox:latest); ' +
          'registries.conf may send it to a mirror; a registry speaks HTTP under /v2/',
      ),
      look(`curl -s ${endpointUrl(r.endpoint)}/v2/${r.repository}/tags/list`),
    ],
  };
}

export function manifestText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[]): StageText {
  const m = first(ev, 'manifest');
  const r = first(seen, 'resolve');
  const c = first(ev, 'config');
  if (!m) return { summary: 'not reached', lines: [] };
  const lines = manifestLines(ev);
  lines.push(
    why(
      'the manifest lists the layers and the config by digest; a multi-platform name is first an index, ' +
        'from which the manifest for this machine is chosen',
    ),
  );
  if (r) {
    lines.push(...looks([...repoVars(r, m.digest), `curl -s -H 'Accept: ${m.mediaType}' $R/manifests/$D | jq .`]));
    if (c) lines.push(...hand([`D=${c.digest}`, 'curl -sL $R/blobs/$D | jq .config   # the image config']));
  }
  return { summary: `manifest ${m.digest}`, lines };
}

export function layersText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const lines = layerLines(ev, ctx);
  const fetched = new Set(all(ev, 'layer-start').map((e) => e.digest)).size;
  const had = new Set(all(ev, 'layer-exists').map((e) => e.digest)).size;
  lines.push(
    why(
      'each layer is a tar file of the files a build step changed; it is fetched, its sha256 checked ' +
        'and unpacked once into the store (a chain id names a layer on top of the ones below it)',
    ),
  );
  const r = first(seen, 'resolve');
  const l = ev.find((e) => e.type === 'layer-start' || e.type === 'layer-exists') as Ev<'layer-start'> | undefined;
  if (r && l) {
    lines.push(look('tsrun image layers IMAGE'));
    lines.push(...hand([...repoVars(r, l.digest), 'mkdir layer && curl -sL $R/blobs/$D | tar -xzf - -C layer']));
  }
  return { summary: `${plural(fetched + had, 'layer')}: ${fetched} fetched, ${had} already in the store`, lines };
}

export function storeText(ev: readonly TsrunEvent[]): StageText {
  const s = first(ev, 'image-stored');
  if (!s) return { summary: 'not reached', lines: [] };
  const name = s.name ?? s.id;
  return {
    summary: `${s.fresh ? 'stored' : 'already up to date:'} ${name} as image ${s.id}`,
    lines: [
      why('the image id is the sha256 of its config; the name now points at it in the store'),
      look(`tsrun image inspect ${name}`),
      look(`tsrun image layers ${name}`),
    ],
  };
}

/** build: the steps after FROM, each a line; the cache and the RUN containers. */
export function stepsText(ev: readonly TsrunEvent[], ctx: TextCtx): StageText {
  const lines: Line[] = [];
  let steps = 0;
  let cached = 0;
  let ran = 0;
  for (const e of ev) {
    if (e.type === 'build-step') {
      steps++;
      lines.push(detail(`${e.step}/${e.total}`, e.instruction));
    } else if (e.type === 'build-cache-hit') {
      cached++;
      lines.push(detail('', `from the cache: state ${short(e.id)}`));
    } else if (e.type === 'build-run') {
      ran++;
      lines.push(detail('', `ran in a container on the ${e.network} network`));
      if (e.buildArgs.length > 0) lines.push(detail('', `build args in scope (names only): ${e.buildArgs.join(', ')}`));
      if (ctx.mode === 'full') lines.push(raw('argv', e.argv.join(' ')));
    } else if (e.type === 'build-step-done') lines.push(detail('', `→ state ${short(e.id)}`));
    else if (e.type === 'build-unused-arg') lines.push(detail('unused', `build arg ${e.name} was not used`));
  }
  lines.push(
    why(
      'each instruction makes a new state from the one before: RUN runs its command in a container ' +
        'on that state and keeps what it changed as a new layer; a step already built from the same ' +
        'input comes from the cache',
    ),
    look('tsrun history IMAGE'),
  );
  return { summary: `${steps} steps: ${ran} ran, ${cached} from the cache`, lines };
}

export function resultText(seen: readonly TsrunEvent[]): StageText {
  const done = all(seen, 'build-step-done').at(-1);
  if (!done) return { summary: 'not reached', lines: [] };
  return {
    summary: `the last state ${short(done.id)} is the image`,
    lines: [
      why("the image is the last step's layers and config; -t names point at it"),
      look('tsrun image layers IMAGE'),
    ],
  };
}

export function pushTargetText(ev: readonly TsrunEvent[]): StageText {
  const s = first(ev, 'push-start');
  if (!s) return { summary: 'not reached', lines: [] };
  const u = registryUrl(s.repository);
  return {
    summary: `${s.repository}:${s.tag} → ${u.base}/v2/${u.repo}`,
    lines: [
      why('a push sends the blobs the registry lacks, then the manifest that names them'),
      look(`curl -s ${u.base}/v2/${u.repo}/tags/list`),
    ],
  };
}

export function blobsText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[]): StageText {
  const lines: Line[] = [];
  const count = { exists: 0, mounted: 0, pushed: 0 };
  for (const b of all(ev, 'push-blob')) {
    count[b.outcome]++;
    const what =
      b.outcome === 'exists'
        ? 'the registry has it'
        : b.outcome === 'mounted'
          ? `mounted from ${b.from ?? 'another repository'}`
          : 'uploaded';
    lines.push(detail(b.config ? 'config' : 'layer', `${b.digest}: ${what}`));
  }
  const s = first(seen, 'push-start');
  lines.push(
    why(
      'the registry is asked for each blob (HEAD); a missing one is mounted from a repository that has it, or uploaded',
    ),
  );
  if (s) {
    const u = registryUrl(s.repository);
    const b = all(ev, 'push-blob')[0];
    if (b) lines.push(look(`curl -sI ${u.base}/v2/${u.repo}/blobs/${b.digest}`));
    lines.push(
      ...hand([
        `curl -si -X POST ${u.base}/v2/${u.repo}/blobs/uploads/`,
        'curl -X PUT --data-binary @BLOB "LOCATION&digest=DIGEST"',
      ]),
    );
  }
  return { summary: `${count.pushed} uploaded, ${count.mounted} mounted, ${count.exists} already there`, lines };
}

export function pushManifestText(ev: readonly TsrunEvent[], seen: readonly TsrunEvent[]): StageText {
  const m = first(ev, 'push-manifest');
  if (!m) return { summary: 'not reached', lines: [] };
  const s = first(seen, 'push-start');
  const lines: Line[] = [why('the manifest goes last: once it is there, the tag names the image')];
  if (s) {
    const u = registryUrl(s.repository);
    lines.push(look(`curl -s ${u.base}/v2/${u.repo}/manifests/${m.digest}`));
    lines.push(
      ...hand([
        `curl -X PUT -H 'Content-Type: MEDIATYPE' --data-binary @manifest.json ${u.base}/v2/${u.repo}/manifests/${m.tag}`,
      ]),
    );
  }
  return { summary: `${m.tag}: ${m.digest} (${m.size} bytes)`, lines };
}
