/**
 * Platforms and choosing a manifest from an image index, with containerd's `platforms` package
 * semantics (containerd/platforms: database.go normalisation, platforms.go Only/Ordered matching).
 *
 * Normalisation: os lowercase; i386→386, x86_64/x86-64→amd64, aarch64→arm64, armhf→arm/v7,
 * armel→arm/v6; variants "8"→"v8". Default variants: amd64 '' ≡ v1, arm64 '' ≡ v8, arm '' ≡ v7.
 * Matching (containerd `Only`): same os and architecture; the wanted variant first, then older
 * variants of the same family that the CPU can also run (arm/v7 runs v6 and v5; amd64/v3 runs v2
 * and v1; arm64/v8.2 runs v8.1 and v8). Among equals, the index's order decides, as in containerd.
 * Entries without a platform and attestation manifests (BuildKit's
 * `vnd.docker.reference.type=attestation-manifest`) are never chosen.
 *
 * Contract: pure, no I/O.
 */
import { TsrunError } from '../errors.js';
import type { Descriptor, Index, Platform } from '../oci/schemas.js';

const ARCH_MAP: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  amd64: 'amd64',
  i386: '386',
  i686: '386',
  386: '386',
  aarch64: 'arm64',
  arm64: 'arm64',
  arm: 'arm',
  armhf: 'arm',
  armel: 'arm',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64le',
  loong64: 'loong64',
};
const KNOWN_OS = new Set([
  'linux',
  'windows',
  'darwin',
  'freebsd',
  'netbsd',
  'openbsd',
  'solaris',
  'illumos',
  'android',
  'ios',
  'aix',
  'plan9',
  'js',
  'wasip1',
]);
const SPECIFIER_RE = /^[A-Za-z0-9_.-]+$/;

const PLATFORM_HINT = 'a platform looks like os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8';

/** Normalise a platform the way containerd does, filling default variants. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const rawArch = p.architecture.toLowerCase();
  const architecture = ARCH_MAP[rawArch] ?? rawArch;
  let variant = (p.variant ?? '').toLowerCase();
  if (/^\d/.test(variant)) variant = 'v' + variant;
  if (rawArch === 'armhf' && variant === '') variant = 'v7';
  if (rawArch === 'armel' && variant === '') variant = 'v6';
  if (variant === '') variant = defaultVariant(architecture);
  const out: Platform = { ...p, os, architecture };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

function defaultVariant(arch: string): string {
  switch (arch) {
    case 'amd64':
      return 'v1';
    case 'arm64':
      return 'v8';
    case 'arm':
      return 'v7';
    default:
      return '';
  }
}

/** The platform this process runs on (always linux for tsrun). */
export function hostPlatform(): Platform {
  switch (process.arch) {
    case 'x64':
      return { os: 'linux', architecture: 'amd64' };
    case 'arm64':
      return { os: 'linux', architecture: 'arm64', variant: 'v8' };
    case 'arm': {
      const vars = (process.config as { variables?: Record<string, unknown> }).variables ?? {};
      const v = Number(vars['arm_version'] ?? 7);
      return { os: 'linux', architecture: 'arm', variant: `v${Number.isFinite(v) && v > 0 ? v : 7}` };
    }
    case 'ia32':
      return { os: 'linux', architecture: '386' };
    case 'ppc64':
      return { os: 'linux', architecture: 'ppc64le' };
    case 's390x':
      return { os: 'linux', architecture: 's390x' };
    case 'riscv64':
      return { os: 'linux', architecture: 'riscv64' };
    default:
      return { os: 'linux', architecture: process.arch };
  }
}

/**
 * 'linux/arm64/v8', 'linux/amd64', or a single 'arm64' (host os) / 'linux' (host arch), as
 * containerd's platforms.Parse. The result keeps what was written (normalised names, no default
 * variant added), so `formatPlatform(parsePlatform(s))` reads like the input.
 */
export function parsePlatform(spec: string): Platform {
  const bad = (why: string): never => {
    throw new TsrunError('ERR_PLATFORM', `parsing platform "${spec}": ${why}`, { hint: PLATFORM_HINT });
  };
  if (spec.trim() === '') bad('empty platform');
  const parts = spec.split('/');
  if (parts.length > 3) bad('too many components (os/arch/variant at most)');
  for (const part of parts) if (!SPECIFIER_RE.test(part)) bad(`invalid component "${part}"`);
  const lower = parts.map((p) => p.toLowerCase());
  let os: string;
  let arch: string;
  let variant: string | undefined;
  if (lower.length === 1) {
    const only = lower[0] as string;
    if (KNOWN_OS.has(only)) {
      os = only;
      arch = hostPlatform().architecture;
      variant = only === 'linux' ? hostPlatform().variant : undefined;
    } else if (ARCH_MAP[only]) {
      os = 'linux';
      arch = only;
    } else return bad(`"${only}" is neither a known operating system nor a known architecture`);
  } else {
    os = lower[0] as string;
    arch = lower[1] as string;
    variant = lower[2];
  }
  const mapped = ARCH_MAP[arch] ?? arch;
  if (variant && /^\d/.test(variant)) variant = 'v' + variant;
  if (!variant && arch === 'armhf') variant = 'v7';
  if (!variant && arch === 'armel') variant = 'v6';
  const p: Platform = { os, architecture: mapped };
  if (variant) p.variant = variant;
  return p;
}

/** 'linux/arm64/v8'; the variant is shown when set. */
/** The platform fields of an image config. */
export interface PlatformOf {
  os: string;
  architecture: string;
  variant?: string;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x).join('/');
}

/** os/arch[/variant] of an image config. */
export function configPlatform(config: PlatformOf): string {
  return `${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}`;
}

/** Docker's warning for an image of another platform used without --platform (run, pull). */
export function platformWarning(config: PlatformOf): string {
  return `The requested image's platform (${configPlatform(config)}) does not match the detected host platform (${formatPlatform(hostPlatform())}) and no specific platform was requested`;
}

export function platformMatches(config: PlatformOf, want: Platform): boolean {
  if (config.os !== want.os || config.architecture !== want.architecture) return false;
  if (!want.variant || !config.variant) return true;
  return config.variant === want.variant;
}

/** Variants of `want`'s family the same CPU can run, best first (containerd Only). */
function compatibleVariants(arch: string, variant: string): string[] {
  if (arch === 'arm') {
    const n = Number(variant.slice(1));
    if (!Number.isInteger(n)) return [variant];
    const out: string[] = [];
    for (let i = n; i >= 5; i--) out.push(`v${i}`);
    return out.length ? out : [variant];
  }
  if (arch === 'amd64') {
    const n = Number(variant.slice(1));
    if (!Number.isInteger(n)) return [variant];
    const out: string[] = [];
    for (let i = n; i >= 1; i--) out.push(`v${i}`);
    return out;
  }
  if (arch === 'arm64') {
    // v8.x and v9.x: v9.N runs v8.(N+5) and below (containerd's arm64 table).
    const m = /^v(8|9)(?:\.(\d+))?$/.exec(variant);
    if (!m) return [variant];
    const major = Number(m[1]);
    const minor = Number(m[2] ?? 0);
    const out: string[] = [];
    if (major === 9) for (let i = minor; i >= 0; i--) out.push(i === 0 ? 'v9' : `v9.${i}`);
    const max8 = major === 9 ? Math.min(minor + 5, 9) : minor;
    for (let i = max8; i >= 0; i--) out.push(i === 0 ? 'v8' : `v8.${i}`);
    return out;
  }
  return [variant];
}

export const ATTESTATION_ANNOTATION = 'vnd.docker.reference.type';

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[ATTESTATION_ANNOTATION] === 'attestation-manifest';
}

/** The platforms an index offers (attestations and platform-less entries left out). */
export function availablePlatforms(index: Index): Platform[] {
  return index.manifests.filter((d) => d.platform && !isAttestation(d)).map((d) => d.platform as Platform);
}

/** Choose the manifest for `want`; ERR_PLATFORM listing what is available when none fits. */
export function selectManifest(index: Index, want: Platform): Descriptor {
  const w = normalizePlatform(want);
  const order = compatibleVariants(w.architecture, w.variant ?? '');
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of index.manifests) {
    if (!d.platform || isAttestation(d)) continue;
    const p = normalizePlatform(d.platform);
    if (p.os !== w.os || p.architecture !== w.architecture) continue;
    const rank = order.indexOf(p.variant ?? '');
    if (rank < 0) continue;
    if (rank < bestRank) {
      best = d;
      bestRank = rank;
    }
  }
  if (best) return best;
  const available = availablePlatforms(index).map(formatPlatform);
  const list = available.length ? available.join(', ') : 'none (no entry names a platform)';
  throw new TsrunError(
    'ERR_PLATFORM',
    `no image for platform ${formatPlatform(want)} in the index; available: ${list}`,
    {
      hint: available.length
        ? `choose one with --platform, e.g. --platform ${available[0]}`
        : 'use --platform to choose a platform the image provides',
      detail: { available },
    },
  );
}
