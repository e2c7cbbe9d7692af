/**
 * The data shapes of a container's network attachment: what `-p`, `--add-host` and the bridge
 * gave it. network/ makes them; runtime/'s container record stores them. They live here, with the
 * other plain types, so the record does not depend on the network stage (docs/architecture.md).
 * Pure types, no I/O.
 */

export type Protocol = 'tcp' | 'udp';

/** One published port (`-p`). */
export interface PortMapping {
  /** '' means every address (shown as 0.0.0.0, as Docker does). */
  hostIP: string;
  /** 0: any free port. */
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** A host range offered for one container port: the first free one is used. */
  hostRange?: [number, number];
}

/** What the bridge gave the container, for /etc/hosts, inspect, ps and port. */
export interface NetworkInfo {
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  bridge: string;
  ports: PortMapping[];
}

/** One `--add-host NAME:IP` entry. */
export interface ExtraHost {
  name: string;
  /** An address, or "host-gateway". */
  ip: string;
}
