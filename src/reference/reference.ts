/**
 * Image references, normalised exactly as Docker does it (github.com/distribution/reference:
 * regexp.go for the grammar, normalize.go `ParseNormalizedNamed` / `FamiliarString`).
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [domain "/"] path-component ["/" path-component]*      (≤ 255 characters)
 *   domain     := host [":" port]   host := domain-component ("." domain-component)* | "[" IPv6 "]"
 *   path-comp  := [a-z0-9]+ (separator [a-z0-9]+)*    separator := [_.] | "__" | "-"+
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := "sha256:" 64 lowercase hex   (the only algorithm tsrun accepts)
 *
 * Normalisation (splitDockerDomain): the first component is a registry only if it contains '.' or
 * ':' or is 'localhost'; otherwise the registry is docker.io. `index.docker.io` is docker.io, and
 * a single-component docker.io repository gets the `library/` prefix. A bare 64-hex string is
 * refused (it is an image id, not a name).
 *
 * Contract: pure, no I/O; every failure is TsrunError('ERR_REFERENCE', 'parsing reference "X": …').
 * `parseReference` adds the tag 'latest' when neither tag nor digest is given (Docker's
 * TagNameOnly); a reference with both a tag and a digest keeps both (the digest wins when pulling).
 */
import { TsrunError } from '../errors.js';

export interface Reference {
  /** Registry host[:port], normalised: 'docker.io', 'localhost:5000', 'ghcr.io'. */
  registry: string;
  /** Path within the registry: 'library/node', 'user/app'. */
  repository: string;
  tag?: string;
  /** 'sha256:<64 hex>' */
  digest?: string;
}

export const DEFAULT_REGISTRY = 'docker.io';
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
export const NAME_TOTAL_LENGTH_MAX = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)(?:%[a-zA-Z0-9._-]+)?\\]';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** distribution's DigestRegexp: the shape of any digest, before we insist on sha256. */
const ANY_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

const HINT =
  'a reference looks like [registry[:port]/]repository[:tag][@sha256:<64 hex>], e.g. node:20 or ghcr.io/user/app@sha256:…';

function fail(input: string, cause: string): never {
  throw new TsrunError('ERR_REFERENCE', `parsing reference "${input}": ${cause}`, { hint: HINT });
}

/** Parse and normalise a reference the way `docker pull` does; adds ':latest' when untagged. */
export function parseReference(input: string): Reference {
  const ref = parseNormalizedNamed(input);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Like parseReference but never adds a default tag (Docker's ParseNormalizedNamed). */
export function parseNormalizedNamed(input: string): Reference {
  if (input === '') fail(input, 'repository name must have at least one component');
  if (IDENTIFIER_RE.test(input)) fail(input, 'invalid repository name, cannot specify 64-byte hexadecimal strings');

  // Split off the digest first ('@' cannot occur elsewhere), then the tag: the last ':' after the
  // last '/' (a ':' before a '/' is the registry's port).
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!ANY_DIGEST_RE.test(digest)) fail(input, 'invalid digest format');
    if (!digest.startsWith('sha256:'))
      fail(input, `unsupported digest algorithm "${digest.split(':')[0]}" (only sha256 is supported)`);
    if (!DIGEST_RE.test(digest)) {
      fail(
        input,
        digest.length !== 'sha256:'.length + 64 ? 'invalid checksum digest length' : 'invalid checksum digest format',
      );
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag))
      fail(
        input,
        `invalid tag "${tag}": a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'`,
      );
  }
  const name = rest;
  if (name === '') fail(input, 'repository name must have at least one component');

  // splitDockerDomain
  const slash = name.indexOf('/');
  let registry: string;
  let repository: string;
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost')) {
    registry = DEFAULT_REGISTRY;
    repository = name;
  } else {
    registry = first;
    repository = name.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) fail(input, `invalid registry "${registry}"`);
  }
  if (repository.toLowerCase() !== repository)
    fail(input, 'invalid reference format: repository name must be lowercase');
  if (repository === '') fail(input, 'repository name must have at least one component');
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) {
      fail(
        input,
        component === ''
          ? 'invalid reference format: empty path component'
          : `invalid reference format: path component "${component}" must be lowercase letters and digits, separated by '.', '_', '__' or '-'`,
      );
    }
  }
  // Docker measures the name as written (before docker.io/library/ is added).
  if (name.length > NAME_TOTAL_LENGTH_MAX)
    fail(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);

  if (registry === LEGACY_DEFAULT_REGISTRY) registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = OFFICIAL_PREFIX + repository;

  const ref: Reference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

function suffix(r: Reference): string {
  return (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** docker.io/library/node */
export function repositoryName(r: Reference): string {
  return `${r.registry}/${r.repository}`;
}

/** The full form: docker.io/library/node:latest, localhost:5000/x@sha256:… */
export function formatReference(r: Reference): string {
  return repositoryName(r) + suffix(r);
}

/** The short name Docker shows: node, user/app, localhost:5000/x (docker.io/library/a/b stays library/a/b). */
export function familiarRepository(r: Reference): string {
  if (r.registry !== DEFAULT_REGISTRY) return repositoryName(r);
  const parts = r.repository.split('/');
  if (parts.length === 2 && parts[0] === 'library') return parts[1] as string;
  return r.repository;
}

/** Docker's FamiliarString: node:latest, user/app:1, localhost:5000/x:y, node@sha256:… */
export function familiarName(r: Reference): string {
  return familiarRepository(r) + suffix(r);
}
