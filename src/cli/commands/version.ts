/**
 * `version` (Docker's layout and `--format`: docker/cli cli/command/system/version.go) and the
 * struct `info --format` sees (Docker's system.Info field names: `{{.ServerVersion}}`,
 * `{{.Driver}}`, `{{.DockerRootDir}}`, `{{.NCPU}}` …, and tsrun's own report under `.Tsrun`).
 *
 * tsrun has no daemon: the "Server" is the engine in this process (tsrun itself and its OCI
 * runtime), and there is no Engine API, so the API versions read "n/a".
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
import type { CliIo } from '../output.js';
import type { Info } from '../../app/info.js';

const VERSION_TEMPLATE = `{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Node version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Node version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`;

const goArch = (): string =>
  (
    ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }) as Record<
      string,
      string
    >
  )[process.arch] ?? process.arch;

async function versionInfo(io: CliIo): Promise<Record<string, unknown>> {
  const { processContext } = await import('../../app/context.js');
  const { systemInfo } = await import('../../app/info.js');
  const info = await systemInfo(processContext({ root: io.globals().root }), io.version);
  const client = {
    Platform: { Name: 'tsrun' },
    Version: io.version,
    APIVersion: 'n/a',
    DefaultAPIVersion: 'n/a',
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: goArch(),
    BuildTime: '',
    Context: 'default',
  };
  const components: Record<string, unknown>[] = [
    {
      Name: 'Engine',
      Version: io.version,
      Details: {
        ApiVersion: 'n/a',
        Arch: goArch(),
        BuildTime: '',
        Experimental: 'false',
        GitCommit: '',
        GoVersion: `node ${process.version}`,
        KernelVersion: os.release(),
        MinAPIVersion: 'n/a',
        Os: 'linux',
      },
    },
  ];
  if (info.runtime.version)
    components.push({
      Name: info.runtime.name,
      Version: info.runtime.version.replace(/^\S+ version /, ''),
      Details: { Path: info.runtime.path ?? '' },
    });
  const server = {
    Platform: { Name: 'tsrun (daemonless)' },
    Version: io.version,
    APIVersion: 'n/a',
    MinAPIVersion: 'n/a',
    Os: 'linux',
    Arch: goArch(),
    Components: components,
    GoVersion: `node ${process.version}`,
    KernelVersion: os.release(),
    Experimental: false,
  };
  return { Client: client, Server: server };
}

export function registerVersionCommand(program: Command, io: CliIo): void {
  program
    .command('version')
    .description('Show the tsrun version information')
    .option('-f, --format <format>', 'Go template, or json')
    .action(async (o: { format?: string }) => {
      const { Template } = await import('../gotemplate/exec.js');
      const { FUNCS } = await import('../gotemplate/funcs.js');
      const { TemplateError } = await import('../gotemplate/errors.js');
      const { TsrunError } = await import('../../errors.js');
      const { tabwrite } = await import('../tabwriter.js');
      const { inspectStruct } = await import('../views.js');
      const text = !o.format ? VERSION_TEMPLATE : o.format === 'json' ? '{{json .}}' : o.format;
      const funcs = {
        ...FUNCS,
        getDetailsOrder: (a: unknown[]) =>
          Object.keys(((a[0] as { field(n: string): unknown })?.field?.('Details') ?? {}) as object).sort(),
      };
      let tmpl;
      try {
        tmpl = Template.parse(text, Object.keys(funcs));
      } catch (e) {
        if (e instanceof TemplateError)
          throw new TsrunError('ERR_USAGE', `template parsing error: ${e.message}`, { detail: { exitCode: 64 } });
        throw e;
      }
      const data = inspectStruct(await versionInfo(io), 'system.versionInfo');
      try {
        io.out.write(tabwrite(`${tmpl.execute(data, funcs)}\n`, 20, 1));
      } catch (e) {
        if (e instanceof TemplateError) throw new TsrunError('ERR_USAGE', `template parsing error: ${e.message}`);
        throw e;
      }
    });
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

/** `info --format`'s data: Docker's field names for what tsrun knows, tsrun's report as `.Tsrun`. */
export function infoObject(
  info: Info,
  counts: { containers: number; running: number; stopped: number; images: number },
): Record<string, unknown> {
  let cgroupVersion = '1';
  try {
    readFileSync('/sys/fs/cgroup/cgroup.controllers');
    cgroupVersion = '2';
  } catch {
    /* v1 */
  }
  return {
    ID: '',
    Containers: counts.containers,
    ContainersRunning: counts.running,
    ContainersPaused: 0,
    ContainersStopped: counts.stopped,
    Images: counts.images,
    Driver: info.storage.split(' ')[0],
    DockerRootDir: info.rootDir,
    Debug: false,
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
    Name: os.hostname(),
    OperatingSystem: osName(),
    OSType: 'linux',
    Architecture: os.machine(),
    KernelVersion: os.release(),
    ServerVersion: info.version,
    DefaultRuntime: info.runtime.name,
    Runtimes: { [info.runtime.name]: { path: info.runtime.path ?? '' } },
    CgroupDriver: 'cgroupfs',
    CgroupVersion: cgroupVersion,
    SecurityOptions: info.rootless ? ['name=rootless'] : [],
    Labels: [],
    LoggingDriver: 'tsrun',
    Rootless: info.rootless,
    Tsrun: info,
  };
}

/** `info --format`: counts the store's containers and images, then renders. */
export async function infoFormat(io: CliIo, info: Info, format: string): Promise<string> {
  const { processContext } = await import('../../app/context.js');
  const { openEnv } = await import('../../app/containers.js');
  const { renderObject } = await import('../template.js');
  const { inspectStruct } = await import('../views.js');
  const env = await openEnv(processContext({ root: io.globals().root }));
  const list = await env.containers.list();
  const images = Object.keys((await env.store.readImages()).images).length;
  const running = list.filter((c) => c.observed.status === 'running').length;
  const obj = infoObject(info, { containers: list.length, running, stopped: list.length - running, images });
  return renderObject(format, inspectStruct(obj, 'system.Info'));
}
