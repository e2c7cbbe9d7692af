/**
 * The shape of Docker's Go structs behind `inspect` (moby api/types: container.InspectResponse,
 * image.InspectResponse), for templates: a field the struct has but tsrun's JSON leaves out
 * reads as Go's zero value (`{{if .State.Health}}` is false, `{{.Config.Domainname}}` is ""),
 * as it does when Docker executes a template on its typed value; a name the struct does not
 * have is still an error. Go field names that differ from the JSON key are aliases
 * (`.ID` for "Id", `.HostConfig.NanoCPUs` for "NanoCpus").
 *
 * Encoding: a value is the zero value; `null` a nil pointer; `[x]` a slice whose elements look
 * like x; `{ '*': x }` a map whose values look like x; `{}` a map of strings.
 */

export interface TypeShape { [field: string]: unknown }

const restartPolicy = { Name: '', MaximumRetryCount: 0 };
const mountPoint = { Type: '', Name: '', Source: '', Destination: '', Driver: '', Mode: '', RW: false, Propagation: '' };
const endpoint = {
  IPAMConfig: null, Links: [], Aliases: [], MacAddress: '', DriverOpts: {}, NetworkID: '', EndpointID: '', Gateway: '',
  IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: [],
};
const healthConfig = null;
const containerConfig = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, ExposedPorts: {},
  Tty: false, OpenStdin: false, StdinOnce: false, Env: [], Cmd: [], Healthcheck: healthConfig, ArgsEscaped: false, Image: '',
  Volumes: {}, WorkingDir: '', Entrypoint: [], NetworkDisabled: false, MacAddress: '', OnBuild: [], Labels: {},
  StopSignal: '', StopTimeout: null, Shell: [],
};

export const CONTAINER_INSPECT: TypeShape = {
  Id: '', Created: '', Path: '', Args: [], Image: '', ResolvConfPath: '', HostnamePath: '', HostsPath: '', LogPath: '',
  Node: null, Name: '', RestartCount: 0, Driver: '', Platform: '', MountLabel: '', ProcessLabel: '', AppArmorProfile: '',
  ExecIDs: [], SizeRw: null, SizeRootFs: null, ImageManifestDescriptor: null,
  State: {
    Status: '', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0,
    Error: '', StartedAt: '', FinishedAt: '', Health: null,
  },
  HostConfig: {
    Binds: [], ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: '', PortBindings: { '*': [{ HostIp: '', HostPort: '' }] },
    RestartPolicy: restartPolicy, AutoRemove: false, VolumeDriver: '', VolumesFrom: [], ConsoleSize: [0, 0], Annotations: {},
    CapAdd: [], CapDrop: [], CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: [], GroupAdd: [],
    IpcMode: '', Cgroup: '', Links: [], OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false,
    ReadonlyRootfs: false, SecurityOpt: [], StorageOpt: {}, Tmpfs: {}, UTSMode: '', UsernsMode: '', ShmSize: 0, Sysctls: {},
    Runtime: '', Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0, CpuPeriod: 0,
    CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [],
    DeviceCgroupRules: [], DeviceRequests: [], MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: null,
    OomKillDisable: null, PidsLimit: null, Ulimits: [], CpuCount: 0, CpuPercent: 0, Mounts: [], MaskedPaths: [],
    ReadonlyPaths: [], Init: null,
  },
  GraphDriver: { Name: '', Data: {} },
  Mounts: [mountPoint],
  Config: containerConfig,
  NetworkSettings: {
    Bridge: '', SandboxID: '', SandboxKey: '', Ports: { '*': [{ HostIp: '', HostPort: '' }] }, HairpinMode: false,
    LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, SecondaryIPAddresses: [], SecondaryIPv6Addresses: [],
    EndpointID: '', Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0,
    IPv6Gateway: '', MacAddress: '', Networks: { '*': endpoint },
  },
};

export const IMAGE_INSPECT: TypeShape = {
  Id: '', RepoTags: [], RepoDigests: [], Parent: '', Comment: '', Created: '', DockerVersion: '', Author: '',
  Config: {
    User: '', ExposedPorts: {}, Env: [], Entrypoint: [], Cmd: [], Volumes: {}, WorkingDir: '', Labels: {}, StopSignal: '',
    ArgsEscaped: false, Healthcheck: null, OnBuild: [], Shell: [],
  },
  Architecture: '', Variant: '', Os: '', OsVersion: '', Size: 0, GraphDriver: { Name: '', Data: {} },
  RootFS: { Type: '', Layers: [] }, Metadata: { LastTagTime: '' }, Descriptor: null, Manifests: [], Identity: null,
};

/** Go field name → JSON key, where they differ (per struct, by the JSON key of the struct). */
export const GO_NAMES: Record<string, Record<string, string>> = {
  '': { ID: 'Id' },
  HostConfig: {
    DNS: 'Dns', DNSOptions: 'DnsOptions', DNSSearch: 'DnsSearch', NanoCPUs: 'NanoCpus', CPUShares: 'CpuShares',
    CPUPeriod: 'CpuPeriod', CPUQuota: 'CpuQuota', CPURealtimePeriod: 'CpuRealtimePeriod', CPURealtimeRuntime: 'CpuRealtimeRuntime',
    CPUCount: 'CpuCount', CPUPercent: 'CpuPercent',
  },
};
