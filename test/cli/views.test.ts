/**
 * What --format sees (src/cli/views.ts) and how lists print (src/cli/template.ts,
 * src/cli/tabwriter.ts), against docker/cli's formatter: its golden outputs, its default
 * formats, DisplayablePorts' grouping, ContainerContext's JSON keys.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderList, renderObjects, templateText } from '../../src/cli/template.js';
import { tabwrite } from '../../src/cli/tabwriter.js';
import {
  containerContext,
  displayablePorts,
  ellipsis,
  goQuote,
  historyContext,
  HISTORY_HEADERS,
  historyFormat,
  IMAGES_HEADERS,
  imageContext,
  imagesFormat,
  inspectStruct,
  PS_FORMAT,
  truncateID,
} from '../../src/cli/views.js';
import type { ContainerSummary } from '../../src/app/ps.js';
import { CONTAINER_INSPECT, IMAGE_INSPECT } from '../../src/cli/docker-types.js';
import { TsrunError } from '../../src/errors.js';

const now = Date.parse('2024-06-01T12:00:00Z');
const c1: ContainerSummary = {
  id: 'f'.repeat(64),
  names: ['web'],
  image: 'busybox',
  imageId: 'sha256:aaa',
  command: "sh -c 'echo hi; sleep 100'",
  created: '2024-06-01T11:00:00Z',
  state: 'running',
  exitCode: 0,
  startedAt: '2024-06-01T11:30:00Z',
  ports: [{ ip: '0.0.0.0', privatePort: 80, publicPort: 8080, type: 'tcp' }],
  labels: { tier: 'front', a: '1' },
  mounts: [{ source: '/srv/some/long/path/data', destination: '/data' }],
  networks: ['bridge'],
};
const c2: ContainerSummary = {
  ...c1,
  id: `1${'e'.repeat(63)}`,
  names: ['db'],
  state: 'exited',
  exitCode: 3,
  finishedAt: '2024-06-01T10:00:00Z',
  ports: [],
  labels: {},
};
const ps = (format: string | undefined, rows = [c1, c2], trunc = true) =>
  renderList(format, rows, { ...PS_FORMAT, toStruct: (r) => containerContext(r, trunc, now) });

test("tabwriter: Docker's minwidth 10, padding 3; the last cell is not padded", () => {
  assert.is(tabwrite('A\tBB\tC\nxxxxxxxxxxxx\ty\tz\n'), 'A              BB        C\nxxxxxxxxxxxx   y         z\n');
  assert.is(tabwrite('IMAGE\tX\n\n'), 'IMAGE     X\n\n');
});

test('ps: default table as docker prints it (COMMAND quoted, ellipsis at 20, Status)', () => {
  assert.is(
    ps(undefined),
    'CONTAINER ID   IMAGE     COMMAND                  CREATED             STATUS                   PORTS                  NAMES\n' +
      'ffffffffffff   busybox   "sh -c \'echo hi; sle…"   About an hour ago   Up 30 minutes            0.0.0.0:8080->80/tcp   web\n' +
      '1eeeeeeeeeee   busybox   "sh -c \'echo hi; sle…"   About an hour ago   Exited (3) 2 hours ago                          db\n',
  );
  assert.is(ps('table'), ps(undefined), 'bare "table" is the default');
});

test("ps: custom formats, table headers (Docker's names, .Label header), --no-trunc", () => {
  assert.is(ps('{{.ID}}: {{.Command}}', [c1], false), `${'f'.repeat(64)}: "sh -c 'echo hi; sleep 100'"\n`);
  assert.is(
    ps('table {{.Names}}\\t{{.Label "com.example.my-label"}}\\t{{.Labels}}\\t{{.LocalVolumes}}\\t{{.Mounts}}', [c1]),
    'NAMES     my label   LABELS           LOCAL VOLUMES   MOUNTS\nweb                  a=1,tier=front   0               /srv/some/long…\n',
  );
  assert.is(
    ps('table {{upper .Names}} {{.Networks}}', [c1]),
    'NAMES NETWORKS\nWEB bridge\n',
    'header functions leave headers alone',
  );
  assert.is(ps('table {{.ID}}', []), 'CONTAINER ID\n', 'a table with no rows has its header');
  assert.is(ps('{{.Size}}', [{ ...c1, sizeRw: 2, sizeRootFs: 21_500_000 }]), '2B (virtual 21.5MB)\n');
  const byId = { ...c1, image: `sha256:${'a'.repeat(64)}`, imageId: `sha256:${'a'.repeat(64)}` };
  assert.is(
    ps('{{.Image}}', [byId, { ...c1, image: `busybox:1@sha256:${'b'.repeat(64)}` }]),
    'aaaaaaaaaaaa\nbusybox:1\n',
    'ids truncated, digests dropped',
  );
  assert.is(ps('{{.Image}}', [byId], false), `sha256:${'a'.repeat(64)}\n`);
});

test("ps: {{json .}} and --format json print ContainerContext's keys, sorted, nothing of tsrun's records", () => {
  const j = JSON.parse(ps('{{json .}}', [c1])) as Record<string, unknown>;
  assert.equal(Object.keys(j), [
    'Command',
    'CreatedAt',
    'HealthStatus',
    'ID',
    'Image',
    'Labels',
    'LocalVolumes',
    'Mounts',
    'Names',
    'Networks',
    'Platform',
    'Ports',
    'RunningFor',
    'Size',
    'State',
    'Status',
  ]);
  assert.is(j['ID'], 'ffffffffffff');
  assert.is(j['Size'], '0B');
  assert.is(ps('json', [c1]), ps('{{json .}}', [c1]));
});

test("ps: unknown field fails with docker's words before anything prints", () => {
  try {
    ps('{{.ID}} {{.Pid}}');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TsrunError);
    assert.is(
      (e as Error).message,
      'failed to execute template: template: :1:10: executing "" at <.Pid>: can\'t evaluate field Pid in type *formatter.ContainerContext',
    );
  }
});

test('DisplayablePorts: consecutive same-number mappings and exposed ports collapse into ranges', () => {
  const p = (privatePort: number, publicPort?: number, ip?: string, type = 'tcp') => ({
    privatePort,
    publicPort,
    ip,
    type,
  });
  assert.is(
    displayablePorts([p(8002, 8002, '0.0.0.0'), p(8000, 8000, '0.0.0.0'), p(8001, 8001, '0.0.0.0')]),
    '0.0.0.0:8000-8002->8000-8002/tcp',
  );
  assert.is(
    displayablePorts([p(80, 9090, '0.0.0.0'), p(443), p(444), p(53, undefined, undefined, 'udp')]),
    '53/udp, 443-444/tcp, 0.0.0.0:9090->80/tcp',
  );
  assert.is(displayablePorts([p(80, 80, '::')]), '[::]:80->80/tcp');
  assert.is(displayablePorts([p(1), p(3), p(4)]), '1/tcp, 3-4/tcp');
});

test("images and history: Docker's default tables and fields", () => {
  const img = {
    repository: 'busybox',
    tag: 'latest',
    digest: 'sha256:d1',
    id: `sha256:${'ab'.repeat(32)}`,
    created: '2024-05-01T12:00:00Z',
    size: 4_260_000,
  };
  const list = (f: string | undefined, digests = false) =>
    renderList(imagesFormat(f, digests), [img], {
      toStruct: (r) => imageContext(r, true, now),
      headers: IMAGES_HEADERS,
      defaultTable: imagesFormat(undefined, digests),
    });
  assert.is(
    list(undefined),
    'REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\nbusybox      latest    abababababab   4 weeks ago   4.26MB\n',
  );
  assert.is(
    list('table {{.Repository}}', true),
    'REPOSITORY   DIGEST\nbusybox      sha256:d1\n',
    '--digests adds the column to a custom table',
  );
  assert.is(list('{{.Repository}}:{{.Tag}} {{.Containers}} {{.SharedSize}}'), 'busybox:latest N/A N/A\n');
  const h = {
    id: `sha256:${'cd'.repeat(32)}`,
    created: '2024-05-31T12:00:00Z',
    createdBy: '/bin/sh -c\t#(nop) CMD ["sh"] and a long tail of words',
    size: 0,
    comment: '',
  };
  const hist = (human: boolean, f?: string) =>
    renderList(historyFormat(f, human), [h, { ...h, id: undefined, size: 1234 }], {
      toStruct: (r) => historyContext(r, true, human, now),
      headers: HISTORY_HEADERS,
      defaultTable: historyFormat(undefined, human),
    });
  assert.is(
    hist(true),
    'IMAGE          CREATED        CREATED BY                                      SIZE      COMMENT\n' +
      'cdcdcdcdcdcd   24 hours ago   /bin/sh -c #(nop) CMD ["sh"] and a long tail…   0B        \n' +
      '<missing>      24 hours ago   /bin/sh -c #(nop) CMD ["sh"] and a long tail…   1.23kB    \n',
  );
  assert.is(hist(false, '{{.CreatedSince}} {{.Size}}'), '2024-05-31T12:00:00Z 0\n2024-05-31T12:00:00Z 1234\n');
});

test('inspect objects: .ID and .Id, nested structs, maps read "" for a missing key, unknown keys fail', () => {
  const o = inspectStruct(
    { Id: 'abc', State: { Pid: 7 }, Config: { Labels: { a: 'b' } }, Mounts: [{ Source: '/s' }] },
    'container.InspectResponse',
  );
  assert.is(
    renderObjects('{{.ID}} {{.Id}} {{.State.Pid}} [{{.Config.Labels.zz}}] {{range .Mounts}}{{.Source}}{{end}}', [o])
      .out,
    'abc abc 7 [] /s\n',
  );
  assert.is(
    renderObjects(undefined, [o]).out,
    `${JSON.stringify([{ Id: 'abc', State: { Pid: 7 }, Config: { Labels: { a: 'b' } }, Mounts: [{ Source: '/s' }] }], null, 4)}\n`,
  );
  assert.is(
    renderObjects('json', [o]).out,
    '[{"Id":"abc","State":{"Pid":7},"Config":{"Labels":{"a":"b"}},"Mounts":[{"Source":"/s"}]}]\n',
  );
  const other = inspectStruct({ Id: 'def', State: { Pid: 8, Nope: 'n' } }, 'container.InspectResponse');
  const partial = renderObjects('{{.ID}} {{.State.Nope}}', [o, other]);
  assert.is(partial.out, 'def n\n', 'the objects that render still print');
  assert.is(partial.errors.length, 1);
  assert.is(
    partial.errors[0]?.message,
    'template parsing error: template: :1:10: executing "" at <.State.Nope>: map has no entry for key "Nope"',
  );
  try {
    renderObjects('{{.ID', [o]);
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'template parsing error: template: :1: unclosed action');
    assert.is((e as TsrunError).detail?.exitCode, 64);
  }
});

test("inspect objects have Docker's struct fields: zero values for what the JSON lacks, Go names as aliases", () => {
  const o = inspectStruct(
    {
      Id: 'abc',
      State: { Pid: 7 },
      HostConfig: { NanoCpus: 5e8 },
      NetworkSettings: { Networks: { bridge: { IPAddress: '10.0.0.2' } } },
    },
    'container.InspectResponse',
    CONTAINER_INSPECT,
  );
  assert.is(
    renderObjects(
      '{{if .State.Health}}h{{else}}-{{end}} {{.State.Running}} [{{.Config.Domainname}}] {{.HostConfig.NanoCPUs}} {{len .HostConfig.CapAdd}} {{.SizeRw}}',
      [o],
    ).out,
    '- false [] 500000000 0 <nil>\n',
  );
  assert.is(
    renderObjects('{{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{$e.IPAddress}}[{{$e.Gateway}}]{{end}}', [o])
      .out,
    'bridge=10.0.0.2[]\n',
  );
  assert.is(
    renderObjects('json', [o]).out,
    `${JSON.stringify([{ Id: 'abc', State: { Pid: 7 }, HostConfig: { NanoCpus: 5e8 }, NetworkSettings: { Networks: { bridge: { IPAddress: '10.0.0.2' } } } }])}\n`,
    'json is the JSON, not the zero values',
  );
  assert.match(renderObjects('{{.State.Nope}}', [o]).errors[0]?.message ?? '', /map has no entry for key "Nope"/);
  const n = inspectStruct(
    { Id: 'x', Config: { Entrypoint: null, Labels: null } },
    'container.InspectResponse',
    CONTAINER_INSPECT,
  );
  assert.is(
    renderObjects(
      '{{.Config.Entrypoint}} {{json .Config.Entrypoint}} {{.Config.Labels}} {{json .Config.Labels}} {{json .HostConfig.CapAdd}} {{if .Config.Cmd}}y{{else}}n{{end}}',
      [n],
    ).out,
    '[] null map[] null null n\n',
    'nil slices and maps print as Go prints them, null in JSON',
  );
  const img = inspectStruct({ Id: 'sha256:1', Size: 10 }, 'image.InspectResponse', IMAGE_INSPECT);
  assert.is(renderObjects('{{.ID}} {{.Size}} {{.Config.User}}|{{len .RootFS.Layers}}', [img]).out, 'sha256:1 10 |0\n');
});

test('helpers: TruncateID, Ellipsis, strconv.Quote, templateText', () => {
  assert.is(truncateID('sha256:0123456789abcdef'), '0123456789ab');
  assert.is(ellipsis('abcdef', 4), 'abc…');
  assert.is(goQuote('a"b\\c\n\x01é'), '"a\\"b\\\\c\\n\\x01é"');
  assert.is(templateText('table {{.ID}}\\t{{.Names}}\\n'), '{{.ID}}\t{{.Names}}\n');
  assert.is(templateText('json'), '{{json .}}');
});

test.run();
