/**
 * `_ping`, `version`, `info`: what clients ask first. The API version served is 1.43 (Docker 24);
 * an older client's prefix is served as well (never refused), and a newer client negotiates down
 * from `Api-Version`. `Builder-Version: 1`: builds go through the classic `/build` endpoint
 * (tsrun's builder), not BuildKit's session protocol.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { systemInfo } from '../app/info.js';
import type { Router } from './router.js';
import { sendJson } from './router.js';
import type { ApiState } from './state.js';

export const API_VERSION = '1.43';
export const MIN_API_VERSION = '1.24';

const goArch = (): string =>
  ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[
    process.arch as string
  ] ?? process.arch;

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export function registerSystemRoutes(router: Router, state: ApiState): void {
  const ping = (head: boolean) => async (r: { res: import('node:http').ServerResponse }) => {
    r.res.writeHead(200, {
      'Api-Version': API_VERSION,
      'Builder-Version': '1',
      'Docker-Experimental': 'false',
      Ostype: 'linux',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': '2',
    });
    r.res.end(head ? undefined : 'OK');
    return Promise.resolve();
  };
  router.add('GET', '/_ping', ping(false));
  router.add('HEAD', '/_ping', ping(true));

  router.add('GET', '/version', async ({ res }) => {
    const info = await systemInfo(state.ctx, state.version);
    const components: Record<string, unknown>[] = [
      {
        Name: 'Engine',
        Version: state.version,
        Details: {
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          GoVersion: `node ${process.version}`,
          Os: 'linux',
          Arch: goArch(),
          KernelVersion: os.release(),
          Experimental: 'false',
        },
      },
    ];
    if (info.runtime.version)
      components.push({ Name: info.runtime.name, Version: info.runtime.version.replace(/^\S+ version /, '') });
    sendJson(res, 200, {
      Platform: { Name: 'tsrun (daemonless)' },
      Components: components,
      Version: state.version,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: os.release(),
      BuildTime: '',
    });
  });

  router.add('GET', '/info', async ({ res }) => {
    const info = await systemInfo(state.ctx, state.version);
    const list = await state.env.containers.list();
    const running = list.filter((c) => c.observed.status === 'running' && !c.observed.paused).length;
    const paused = list.filter((c) => c.observed.paused).length;
    const images = Object.keys((await state.env.store.readImages()).images).length;
    let cgroupVersion = '1';
    try {
      readFileSync('/sys/fs/cgroup/cgroup.controllers');
      cgroupVersion = '2';
    } catch {
      /* v1 */
    }
    sendJson(res, 200, {
      ID: '',
      Containers: list.length,
      ContainersRunning: running,
      ContainersPaused: paused,
      ContainersStopped: list.length - running - paused,
      Images: images,
      Driver: info.storage.split(' ')[0],
      DriverStatus: [],
      DockerRootDir: info.rootDir,
      Plugins: { Volume: [], Network: ['bridge', 'host', 'null'], Log: [] },
      MemoryLimit: true,
      SwapLimit: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: cgroupVersion,
      NEventsListener: 0,
      KernelVersion: os.release(),
      OperatingSystem: osName(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: os.machine(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ['127.0.0.0/8'], Mirrors: [] },
      NCPU: os.cpus().length,
      MemTotal: os.totalmem(),
      Name: os.hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: state.version,
      Runtimes: { [info.runtime.name]: { path: info.runtime.path ?? '' } },
      DefaultRuntime: info.runtime.name,
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '' },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'catatonit',
      SecurityOptions: info.rootless
        ? ['name=seccomp,profile=default', 'name=rootless']
        : ['name=seccomp,profile=default'],
      Warnings: null,
    });
  });
}
