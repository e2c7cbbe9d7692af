/**
 * The one event interface every pipeline stage reports through.
 *
 * Stages never print: they call `reporter.emit(event)`. The CLI attaches listeners (a progress
 * display on a terminal, plain lines otherwise, nothing with -q, everything with --debug, and
 * later --explain). Events are plain data so they can be logged as JSON.
 */

export type PullEvent =
  | { type: 'resolve'; reference: string; registry: string; repository: string; endpoint: string; mirror?: boolean }
  | { type: 'manifest'; digest: string; mediaType: string; platform?: string; fromIndex?: string }
  | { type: 'config'; digest: string }
  | { type: 'layer-start'; digest: string; size: number; chainId: string }
  | { type: 'layer-exists'; digest: string; chainId: string }
  | { type: 'layer-wait'; digest: string; chainId: string }
  | { type: 'layer-progress'; digest: string; done: number; size: number }
  | { type: 'layer-verifying'; digest: string }
  | { type: 'layer-done'; digest: string; chainId: string; diffId: string; unpackedBytes: number }
  | { type: 'layer-retry'; digest: string; attempt: number; reason: string }
  | { type: 'blob-resume'; digest: string; offset: number; size: number; attempt: number; reason: string }
  | { type: 'image-stored'; id: string; name?: string; digest: string; fresh: boolean };

/**
 * Each HTTP request to a registry or its token service (registry/http.ts `send`: pull, push,
 * login, search, tags), one per attempt. Never a secret: `url` has no user:password and no query
 * (pre-signed blob URLs and token requests carry credentials there: shown as `?…`), and `auth` is
 * only the scheme of the Authorization header sent (basic: a username and password; bearer: a
 * token from the registry's token service; other: a scheme tsrun passes on unread).
 */
export type RegistryEvent = {
  type: 'registry-request';
  method: string;
  url: string;
  auth: 'none' | 'basic' | 'bearer' | 'other';
  /** The final answer's status, after redirects (absent when no answer came: see `error`). */
  status?: number;
  /** Why no answer came (connection refused, TLS, timeout). */
  error?: string;
  /** Redirects followed, and where the last one led (redacted like `url`). */
  redirects?: number;
  redirectedTo?: string;
  /** The redirect left the registry's host (blob storage such as S3 or a CDN): the Authorization header was dropped there. */
  blobStore?: boolean;
  /** The answer's Content-Length, when it announced one. */
  bytes?: number;
  /** The request body's size, when it was sent from memory (manifests, token forms). */
  sent?: number;
  /** The attempt, from the second on (retries after 429/5xx or a reset). */
  attempt?: number;
};

export type PushEvent =
  | { type: 'push-start'; repository: string; tag: string }
  | {
      type: 'push-blob';
      digest: string;
      outcome: 'exists' | 'mounted' | 'pushed';
      from?: string;
      /** The image config (Docker lists only layers). */ config?: boolean;
    }
  | { type: 'push-manifest'; tag: string; digest: string; size: number };

/**
 * A build's steps (build/builder.ts). `id` of build-step-done and build-cache-hit is the state's
 * id (build/cache.ts: what Docker prints as ` ---> 1a2b3c4d5e6f`); build-run names the step's
 * runtime container, its argv, network, the names (never the values) of the build arguments in
 * scope, and its RUN --mount targets.
 */
export type BuildEvent =
  | { type: 'build-step'; step: number; total: number; instruction: string }
  | { type: 'build-triggers'; count: number }
  | { type: 'build-trigger'; instruction: string }
  | { type: 'build-cache-hit'; key: string; id: string }
  | {
      type: 'build-run';
      id: string;
      argv: string[];
      network: string;
      buildArgs: string[];
      mounts: { type: string; target: string }[];
    }
  | { type: 'build-step-done'; id: string }
  | { type: 'build-unused-arg'; name: string };

/**
 * An image by reference for run, create and build's FROM (app/image-source.ts): not in the store
 * (so pulled), a damaged layer (pulled again), or a local image of another platform.
 */
export type ImageSourceEvent =
  | { type: 'image-not-local'; reference: string }
  | { type: 'image-damaged'; reference: string; chainId: string; reason: string }
  | { type: 'image-platform'; reference: string; message: string };

/**
 * Where a part of the spec came from (spec/provenance.ts): the image's config (`detail` names
 * the instruction: CMD, ENV, USER, WORKDIR, VOLUME), a flag of run/create (`flag` names it),
 * the command line after the image, or tsrun's default.
 */
export interface Provenance {
  from: 'image' | 'flag' | 'command line' | 'default';
  flag?: string;
  detail?: string;
}

/** Per part of the spec; `env` by variable name, `mounts` by destination, `namespaces` by type. */
export interface SpecProvenance {
  args: Provenance;
  env: Record<string, Provenance>;
  user: Provenance;
  cwd: Provenance;
  hostname: Provenance;
  mounts: Record<string, Provenance>;
  capabilities: Provenance;
  namespaces: Record<string, Provenance>;
  rlimits: Provenance;
  maskedPaths: Provenance;
  cgroupsPath: Provenance;
}

/**
 * A container's life (app/run.ts, app/containers.ts, app/exec.ts). Never a secret: the
 * environment appears as variable names only (`-e K=V` values are not events' business).
 */
export type ContainerEvent =
  | {
      type: 'container-create';
      id: string;
      name: string;
      image: string;
      bundle: string;
      /** The runtime spec's path (config.json). */
      config: string;
      args: string[];
      cwd: string;
      user: { uid: number; gid: number; additionalGids?: number[] };
      hostname?: string;
      network: string;
      /** Names of the environment variables the process gets. */
      envNames: string[];
      namespaces: { type: string; path?: string }[];
      capabilities: string[];
      mounts: { destination: string; type?: string; source?: string }[];
      maskedPaths: string[];
      readonlyPaths: string[];
      rlimits: { type: string; soft: string; hard: string }[];
      cgroupsPath?: string;
      /** Where each of the above came from. */
      provenance?: SpecProvenance;
      /** `run --dry-run`: the bundle is under its output directory and no container exists. */
      dryRun?: boolean;
    }
  /**
   * The root filesystem mounted (snapshot/overlay.ts): the driver (overlay: the kernel's, as
   * root; overlay-userxattr: the kernel's in the rootless user namespace; fuse-overlayfs; copy:
   * no mount, the layers copied), why it was chosen, its lowerdirs (top first, absolute), upper
   * and work.
   */
  | {
      type: 'rootfs-mount';
      id: string;
      target: string;
      driver: string;
      /** e.g. "rootless: the kernel refuses overlayfs in the user namespace (…), fuse-overlayfs found at /usr/bin/fuse-overlayfs". */
      reason: string;
      lowerdirs: string[];
      upperdir?: string;
      workdir?: string;
    }
  | { type: 'container-start'; id: string; pid: number; monitorPid: number; ports: string[]; log: string }
  | { type: 'container-stop'; id: string; signal: string; timeoutSec: number; killed: boolean }
  | { type: 'container-remove'; id: string; name: string; force: boolean }
  | { type: 'container-exit'; id: string; exitCode: number; finishedAt: string }
  /** The runtime's container deleted, the network detached, the root unmounted (and the record removed, with --rm). */
  | { type: 'container-cleanup'; id: string; removed: boolean }
  | { type: 'container-exec'; id: string; argv: string[]; user?: string; cwd?: string; tty: boolean; detach: boolean }
  | { type: 'container-warning'; message: string };

/**
 * Each invocation of the OCI runtime (runtime/oci-runtime.ts): its argv (`--env` values of exec
 * hidden) and, once it returned, its exit status.
 */
export type RuntimeEvent = { type: 'runtime'; argv: string[]; exitCode?: number; cwd?: string };

/**
 * The monitor started (runtime/monitor.ts): its own argv and pid, and the container's pid (or
 * the exec'd process's). The runtime's `create`/`exec` it runs is a `runtime` event of its own.
 */
export type MonitorEvent = { type: 'monitor'; id: string; argv: string[]; monitorPid: number; pid: number };

/** The network (network/attach.ts, bridge.ts, cni.ts, slirp.ts): what was made, with the real values. */
export type NetworkEvent =
  | { type: 'etc-files'; hostname: string; hosts: string; resolvConf: string; network: string }
  | { type: 'netns'; action: 'add' | 'delete'; name: string; path: string }
  | {
      type: 'cni';
      command: 'ADD' | 'DEL';
      plugin: string;
      path: string;
      containerId: string;
      netns: string;
      ifName: string;
      /** The plugin's stdin (its config, prevResult, runtimeConfig). */
      input: Record<string, unknown>;
      exitCode: number;
      result?: unknown;
      /** Wall time of the plugin run, ms. */
      ms?: number;
    }
  | {
      type: 'network-attach';
      id: string;
      driver: 'bridge' | 'slirp4netns';
      netns: string;
      ip: string;
      prefixLen: number;
      gateway: string;
      mac: string;
      ports: { protocol: string; hostIP: string; hostPort: number; containerPort: number }[];
      /** The network's name (`tsrun` for the default bridge) and the Linux bridge it is on. */
      network?: string;
      bridge?: string;
      /** The interface in the container (eth0, eth1 …) and the host's end of its veth pair. */
      ifName?: string;
      veth?: { host: string; container: string };
      /** A user network: the names its DNS answers for the container (name, short id, --network-alias). */
      aliases?: string[];
    }
  | { type: 'network-detach'; id: string; driver: 'bridge' | 'slirp4netns'; network?: string }
  /**
   * The iptables rules that exist for the container once its network is attached (or, after a
   * detach, that are left: none, normally), read back with iptables-save: every rule naming its
   * address or id, and every rule of the per-container chains those jump to (TSRUN-HOSTPORT-DNAT →
   * TSRUN-DN-<id12> for -p; CNI-DN-… for a container attached by an older tsrun, whose ports the
   * portmap plugin published). NAT and forwarding are the network's rules: `network-rules`.
   * Each rule in `iptables -S` form: `-A CHAIN …`; list one table with `iptables -t TABLE -S CHAIN`.
   */
  | {
      type: 'iptables-rules';
      id: string;
      ip: string;
      when: 'attach' | 'detach';
      network: string;
      rules: { table: string; chain: string; rule: string }[];
    }
  /** The container's names registered with (or dropped from) a user network's DNS server (aardvark-dns). */
  | {
      type: 'dns';
      action: 'add' | 'remove';
      id: string;
      network: string;
      /** The DNS server's address (the network's gateway). */
      server?: string;
      names?: string[];
      ip?: string;
    }
  /** The networks' NAT, forwarding and isolation rules applied (network/firewall.ts): iptables-restore's input. */
  | { type: 'network-rules'; input: string; ms: number }
  /** A container's published ports written (`add`) or removed (network/published.ts): iptables-restore's input. */
  | { type: 'port-rules'; id: string; action: 'add' | 'remove'; input: string; ms: number }
  /** Rootless: slirp4netns started for the namespace (its argv and pid), and each call to its API. */
  | { type: 'slirp4netns'; id: string; argv: string[]; pid: number; netns: string; apiSocket: string }
  | { type: 'slirp4netns-api'; id: string; request: unknown; error?: string };

/**
 * Rootless (rootless/namespace.ts): the user namespace tsrun's containers live in — its uid and
 * gid maps (`/proc/self/uid_map`: inside, outside, count per line) and the /etc/subuid and
 * /etc/subgid entries they were made from (absent: a single-id namespace, your uid as root only).
 */
export type RootlessEvent = {
  type: 'userns';
  user: string;
  uid: number;
  uidMap: { inside: number; outside: number; count: number }[];
  gidMap: { inside: number; outside: number; count: number }[];
  subuid?: string;
  subgid?: string;
};

/**
 * One step of a container's cleanup (app/containers.ts cleanupContainer, after its exit or on
 * rm): the runtime's container deleted, the network detached (its own netns, cni DEL and
 * iptables-rules events tell the parts), the root and host mounts unmounted, the record and
 * state directories removed, an anonymous volume removed. `error` when the step failed (it is
 * tried again by the next cleanup).
 */
export type CleanupEvent = {
  type: 'cleanup-step';
  id: string;
  step: 'runtime-delete' | 'network' | 'unmount' | 'state-dir' | 'volume';
  /** What the step undid: the mount targets, the directories, the volume's name. */
  targets: string[];
  error?: string;
};

export type WarningEvent = { type: 'warning'; message: string };

export type DebugEvent = { type: 'debug'; scope: string; message: string; data?: unknown };

export type TsrunEvent =
  | PullEvent
  | RegistryEvent
  | PushEvent
  | BuildEvent
  | ImageSourceEvent
  | ContainerEvent
  | RuntimeEvent
  | MonitorEvent
  | NetworkEvent
  | RootlessEvent
  | CleanupEvent
  | WarningEvent
  | DebugEvent;

export interface Reporter {
  emit(event: TsrunEvent): void;
  /**
   * This listener wants the events that cost work to produce even when nothing else needs it
   * (`iptables-rules`, read back with iptables-save after each attach and detach): --debug and
   * --explain. Progress bars and `Step n/m` do not, so a plain run does not pay for them.
   */
  readonly detailed?: boolean;
}

/** A reporter that drops everything (the default for library callers and tests). */
export const silentReporter: Reporter = { emit() {} };

/** Fan out to several listeners. */
export function fanout(...reporters: Reporter[]): Reporter {
  return {
    detailed: reporters.some((r) => r.detailed),
    emit: (e) => {
      for (const r of reporters) r.emit(e);
    },
  };
}

/** Collects events into an array (tests, --explain). */
export function collectingReporter(): Reporter & { events: TsrunEvent[] } {
  const events: TsrunEvent[] = [];
  return {
    events,
    detailed: true,
    emit: (e) => {
      events.push(e);
    },
  };
}
