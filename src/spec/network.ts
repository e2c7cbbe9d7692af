/**
 * The network side of a container's spec, as containerd's `WithLinuxNamespace` and
 * `WithHostNamespace`: join a network namespace made beforehand (network/attach.ts), or share the
 * host's. Used alike by `create` (app/run.ts) and a build's RUN steps (build/run-step.ts).
 */
import type { SpecOpt } from './options.js';

/** Join the network namespace at `nsPath` instead of a new, empty one. */
export function withNetworkNamespace(nsPath: string): SpecOpt {
  return (s) => {
    s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'network' ? { ...n, path: nsPath } : n));
  };
}

/** The host's network, and its UTS namespace too, as Docker does: the runtime may not set a hostname then. */
export function withHostNetwork(): SpecOpt {
  return (s) => {
    s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'network' && n.type !== 'uts');
    delete s.hostname;
  };
}
