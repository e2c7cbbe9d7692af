/**
 * The option table of `run` and `create` (Docker's flags, names and short forms), and the
 * translation of parsed flags into app/run.ts's RunOptions. `create` has everything `run` has but
 * -d, --sig-proxy and -a's streaming (Docker: those only make sense for a run).
 */
import type { Command } from 'commander';
import type { RunOptions } from '../../app/run.js';
import { healthFlags, healthOptions, type HealthFlagValues } from './healthcheck.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export interface RunFlags extends HealthFlagValues {
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  name?: string;
  env: string[];
  envFile: string[];
  volume: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  readOnly?: boolean;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  runtime?: string;
  network?: string;
  networkAlias?: string[];
  ip?: string;
  net?: string;
  label: string[];
  pull?: string;
  platform?: string;
  sigProxy: boolean;
  publish: string[];
  publishAll?: boolean;
  privileged?: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  device: string[];
  ipc?: string;
  pid?: string;
  uts?: string;
  userns?: string;
  attach: string[];
  mount: string[];
  tmpfs: string[];
  ulimit: string[];
  init?: boolean;
  stopSignal?: string;
  stopTimeout?: string;
  macAddress?: string;
  labelFile: string[];
  cidfile?: string;
  groupAdd: string[];
  shmSize?: string;
  sysctl: string[];
  oomScoreAdj?: string;
  restart?: string;
  detachKeys?: string;
  addHost: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  dryRun?: boolean;
  out?: string;
}

export function runOptions(cmd: Command, o: { run: boolean }): Command {
  cmd
    .argument('<image>', 'image to run (pulled if missing)')
    .argument('[command...]', "command and arguments (default: the image's ENTRYPOINT/CMD)");
  if (o.run) cmd.option('-d, --detach', 'run in the background and print the container id');
  if (o.run)
    cmd
      .option('--dry-run', 'prepare everything, start nothing: write a bundle, replay.sh and undo.sh (see --out)')
      .option('--out <dir>', 'with --dry-run: where to write them (default ./tsrun-dry-run-<id12>)')
      .addHelpText(
        'after',
        '\nA run to replay by hand (docs/how-containers-work.md):\n  tsrun run --dry-run --out lesson -p 8080:80 busybox httpd -f -p 80\n  less lesson/replay.sh; sh lesson/replay.sh   # as root; then: sh lesson/undo.sh\n',
      );
  cmd
    .option('-a, --attach <stream>', 'attach to STDIN, STDOUT or STDERR (default: stdout and stderr)', collect, [])
    .option('-i, --interactive', 'keep stdin open and pass it to the container')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone takes it from here)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file', collect, [])
    .option(
      '-v, --volume <host:ctr[:opts]>',
      'bind-mount a host path (absolute or ./relative; opts: ro, rw, z, Z, rshared, ...)',
      collect,
      [],
    )
    .option(
      '--mount <spec>',
      'type=bind,source=DIR,target=PATH[,readonly] or type=tmpfs,target=PATH[,tmpfs-size=N]',
      collect,
      [],
    )
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs (options as mount(8): size=64m,mode=1777,exec ...)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with group')
    .option('--group-add <group>', 'add a supplementary group (name from the image or gid)', collect, [])
    .option('--entrypoint <cmd>', "override the image's ENTRYPOINT ('' to clear it)")
    .option('-h, --hostname <name>', 'container host name')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-m, --memory <bytes>', 'memory limit (e.g. 512m; 0: none)')
    .option('--cpus <n>', 'number of CPUs (e.g. 1.5)')
    .option('--pids-limit <n>', 'process limit (-1 for unlimited)')
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (e.g. nofile=1024:2048)', collect, [])
    .option('--oom-score-adj <n>', "tune the OOM killer's preference (-1000 to 1000)")
    .option('--sysctl <key=value>', 'set a namespaced kernel parameter', collect, [])
    .option('--privileged', 'all capabilities, all devices, no masked paths, no seccomp')
    .option('--cap-add <cap>', 'add a capability (ALL, or a name with or without CAP_)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability (ALL, or a name)', collect, [])
    .option('--security-opt <opt>', 'no-new-privileges, seccomp=unconfined|FILE, apparmor=..., label=...', collect, [])
    .option('--device <host[:ctr[:perms]]>', 'add a host device', collect, [])
    .option('--ipc <mode>', 'IPC namespace: private, shareable, none, host, container:NAME')
    .option('--pid <mode>', 'PID namespace: host or container:NAME')
    .option('--uts <mode>', 'UTS namespace: host')
    .option('--userns <mode>', 'user namespace: host (the only mode)')
    .option('--init', 'run an init (catatonit or tini) as pid 1 that forwards signals and reaps zombies')
    .option('--stop-signal <signal>', 'signal that stops the container (default SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds `stop` waits before killing (default 10)')
    .option('--restart <policy>', 'no, on-failure[:max-retries], always, unless-stopped (see README)')
    .option('--runtime <name>', 'OCI runtime: runc (default) or crun')
    .option('--network <mode>', 'bridge (default), none, host, or a user network (tsrun network create)')
    .option('--net <mode>', 'the same as --network')
    .option('--network-alias <name>', "another name for the container on its user network's DNS", collect, [])
    .option('--ip <address>', 'IPv4 address on the user network (one made with --subnet)')
    .option('--mac-address <mac>', "the container's MAC address on the bridge")
    .option('-l, --label <key=value>', 'set a label', collect, [])
    .option('--label-file <file>', 'read labels from a file of KEY=VALUE lines', collect, [])
    .option('--cidfile <file>', 'write the container id to a file (which must not exist)')
    .option('--pull <policy>', 'pull the image: missing (default), always, never')
    .option('--platform <os/arch>', 'platform to pull if the image is missing');
  healthOptions(cmd);
  if (o.run) {
    cmd
      .option('--sig-proxy', 'forward received signals to the container (the default)', true)
      .option('--no-sig-proxy', 'do not forward received signals to the container')
      .option(
        '--detach-keys <keys>',
        'key sequence that detaches from an attached -it container (default ctrl-p,ctrl-q)',
      );
  }
  return cmd
    .option(
      '-p, --publish <[ip:][host:]ctr[/proto]>',
      'publish a container port on the host (ranges allowed)',
      collect,
      [],
    )
    .option('-P, --publish-all', 'publish every exposed port on a free host port')
    .option('--add-host <host:ip>', 'add a line to /etc/hosts (ip "host-gateway": the host)', collect, [])
    .option('--dns <ip>', 'set a DNS server', collect, [])
    .option('--dns-search <domain>', 'set a DNS search domain', collect, [])
    .option('--dns-option <option>', 'set a DNS option', collect, [])
    .passThroughOptions();
}

export function toRunOptions(image: string, args: string[], f: RunFlags): RunOptions {
  return {
    image,
    args,
    name: f.name,
    detach: f.detach,
    interactive: f.interactive,
    tty: f.tty,
    rm: f.rm,
    env: f.env,
    envFiles: f.envFile,
    volumes: f.volume,
    workdir: f.workdir,
    user: f.user,
    entrypoint: f.entrypoint,
    hostname: f.hostname,
    readOnly: f.readOnly,
    memory: f.memory,
    cpus: f.cpus,
    pidsLimit: f.pidsLimit,
    runtime: f.runtime,
    network: f.network ?? f.net,
    networkAliases: f.networkAlias,
    ip: f.ip,
    labels: f.label,
    pull: f.pull,
    platform: f.platform,
    publish: f.publish,
    publishAll: f.publishAll,
    addHost: f.addHost,
    dns: f.dns,
    dnsSearch: f.dnsSearch,
    dnsOption: f.dnsOption,
    privileged: f.privileged,
    capAdd: f.capAdd,
    capDrop: f.capDrop,
    securityOpt: f.securityOpt,
    device: f.device,
    ipc: f.ipc,
    pid: f.pid,
    uts: f.uts,
    userns: f.userns,
    mount: f.mount,
    tmpfs: f.tmpfs,
    ulimit: f.ulimit,
    init: f.init,
    stopSignal: f.stopSignal,
    stopTimeout: f.stopTimeout,
    macAddress: f.macAddress,
    labelFiles: f.labelFile,
    cidfile: f.cidfile,
    groupAdd: f.groupAdd,
    shmSize: f.shmSize,
    sysctl: f.sysctl,
    oomScoreAdj: f.oomScoreAdj,
    restart: f.restart,
    health: healthFlags(f),
  };
}

export interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** docker/cli: -a picks the streams (case-insensitive); none given means stdout and stderr; -i adds stdin. */
export async function attachStreams(f: RunFlags): Promise<AttachStreams> {
  const { TsrunError } = await import('../../errors.js');
  const picked = f.attach.map((s) => s.toLowerCase());
  for (const s of picked) {
    if (!['stdin', 'stdout', 'stderr'].includes(s)) {
      throw new TsrunError(
        'ERR_USAGE',
        `invalid argument "${s}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`,
      );
    }
  }
  if (f.detach && picked.length > 0)
    throw new TsrunError('ERR_USAGE', 'Conflicting options: -a and -d', { hint: 'drop one of them' });
  const none = picked.length === 0;
  return {
    stdin: picked.includes('stdin') || Boolean(f.interactive),
    stdout: none || picked.includes('stdout'),
    stderr: none || picked.includes('stderr'),
  };
}
