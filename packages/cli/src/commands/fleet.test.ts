import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseArgs } from '../terminal/args.ts';
import type { CommandContext } from '../context.ts';
import {
  execute,
  fleetPrintable,
  fleetRows,
  fleetTable,
  shortAge,
  spec,
  type FleetCluster,
  type FleetKey,
} from './fleet.ts';
import { render } from '../terminal/output.ts';

const now = new Date('2026-06-01T00:00:00Z');
const ago = (days: number, hours = 0) =>
  new Date(now.getTime() - (days * 86_400 + hours * 3600) * 1000).toISOString().replace('.000', '');
const ready = (status: 'True' | 'False' | 'Unknown') => [
  { type: 'Ready', status, reason: 'R', message: '', lastTransitionTime: ago(1) },
];
const coverage = (current: number, total: number, stale = 0, plaintext = 0) => ({
  current,
  total,
  stale,
  plaintext,
  scannedAt: ago(0, 2),
});

const cluster = (namespace: string, name: string, status?: FleetCluster['status'], enabled = true): FleetCluster => ({
  metadata: { namespace, name },
  spec: { encryption: { etcd: { enabled, kekRotation: { enabled: true, interval: '90d' } } } },
  ...(status ? { status } : {}),
});
const key = (
  namespace: string,
  name: string,
  rotatedDaysAgo: number,
  interval?: string,
  nextRotationTime?: string,
): FleetKey => ({
  metadata: { namespace, name },
  spec: { rotation: interval ? { enabled: true, interval } : { enabled: false } },
  status: {
    currentVersion: 3,
    lastRotatedTime: ago(rotatedDaysAgo),
    ...(nextRotationTime ? { nextRotationTime } : {}),
  },
});

const healthy = (keyRef: string) => ({
  conditions: ready('True'),
  encryption: {
    resolvedKeyRef: keyRef,
    currentKeyVersion: 3,
    kmsPluginReady: true,
    coverage: coverage(120, 120),
    lastRewrapCompleted: ago(12),
  },
  latestBackupTime: ago(0, 5),
});

const clusters: FleetCluster[] = [
  cluster('acme-web', 'prod', healthy('prod-etcd')),
  cluster('acme-web', 'fresh'),
  cluster('beta', 'old', {
    ...healthy('old-etcd'),
    encryption: { ...healthy('old-etcd').encryption, coverage: coverage(117, 120, 3, 0) },
  }),
  cluster('beta', 'manual', {
    ...healthy('shared-key'),
    latestBackupTime: undefined,
    encryption: { resolvedKeyRef: 'shared-key', kekRotation: { currentVersion: 7 }, kmsPluginReady: false },
  }),
  cluster('beta', 'plain', { phase: 'Unencrypted' }, false),
  cluster('other', 'ok', healthy('old-etcd')),
];
const keys: FleetKey[] = [
  key('acme-web', 'prod-etcd', 12, '90d'),
  key('beta', 'old-etcd', 120, '90d'),
  key('beta', 'shared-key', 400),
  key('other', 'old-etcd', 1, '90d'),
];

describe('fleetRows', () => {
  const rows = fleetRows(clusters, keys, now);
  const row = (name: string) => rows.find((r) => r.name === name)!;

  it('keeps encrypted clusters only, sorted by namespace and name', () => {
    expect(rows.map((r) => `${r.namespace}/${r.name}`)).toEqual([
      'acme-web/fresh',
      'acme-web/prod',
      'beta/manual',
      'beta/old',
      'other/ok',
    ]);
  });

  it('joins the KMSKey of the same namespace for the KEK age and the rotation policy', () => {
    expect(row('prod')).toEqual({
      namespace: 'acme-web',
      name: 'prod',
      keyRef: 'prod-etcd',
      kekVersion: 3,
      kekAgeSeconds: 12 * 86_400,
      rotationInterval: '90d',
      rotationOverdue: false,
      coverage: coverage(120, 120),
      lastRewrapCompleted: ago(12),
      pluginReady: true,
      latestBackupTime: ago(0, 5),
      ready: 'True',
    });
    expect(row('old')).toMatchObject({ kekAgeSeconds: 120 * 86_400, rotationOverdue: true });
  });

  it('a fresh cluster: nothing known yet, the spec policy, the plugin not ready', () => {
    expect(row('fresh')).toMatchObject({
      keyRef: null,
      kekVersion: null,
      kekAgeSeconds: null,
      rotationInterval: '90d',
      rotationOverdue: false,
      coverage: null,
      pluginReady: false,
      latestBackupTime: null,
      ready: null,
    });
  });

  it('rotation off is never overdue; the Transit version falls back to the rotation status', () => {
    expect(row('manual')).toMatchObject({
      kekVersion: 7,
      kekAgeSeconds: 400 * 86_400,
      rotationInterval: null,
      rotationOverdue: false,
      pluginReady: false,
    });
  });

  it('an adopted key whose first rotation is still ahead is not overdue', () => {
    const adopted = fleetRows(
      [cluster('beta', 'old', healthy('old-etcd'))],
      [key('beta', 'old-etcd', 120, '90d', '2026-06-20T00:00:00Z')],
      now,
    );
    expect(adopted[0]!.rotationOverdue).toBe(false);
    const missed = fleetRows(
      [cluster('beta', 'old', healthy('old-etcd'))],
      [key('beta', 'old-etcd', 120, '90d', '2026-05-01T00:00:00Z')],
      now,
    );
    expect(missed[0]!.rotationOverdue).toBe(true);
  });
});

describe('fleet output', () => {
  const rows = fleetRows(clusters, keys, now);
  const lines = (text: string) => text.trimEnd().split('\n');

  it('the table: ages, rotation, coverage, plugin and backups, then the summary', () => {
    const text = render('table', fleetPrintable(rows, now));
    expect(lines(text)[0]).toMatch(
      /^NAMESPACE\s+CLUSTER\s+KEY\s+KEK\s+KEK-AGE\s+ROTATION\s+COVERAGE\s+LAST-REWRAP\s+PLUGIN\s+LATEST-BACKUP$/,
    );
    expect(text).toMatch(/acme-web\s+prod\s+prod-etcd\s+v3\s+12d\s+90d\s+120\/120\s+12d\s+ready\s+5h\n/);
    expect(text).toMatch(/acme-web\s+fresh\s+-\s+-\s+-\s+90d\s+-\s+-\s+not ready\s+-\n/);
    expect(text).toMatch(/beta\s+manual\s+shared-key\s+v7\s+1y\s+off\s+-\s+-\s+not ready\s+-\n/);
    expect(text).toMatch(/beta\s+old\s+old-etcd\s+v3\s+120d\s+90d OVERDUE\s+117\/120\s+12d\s+ready\s+5h\n/);
    expect(text).not.toContain('stale');
    expect(text).toMatch(/other\s+ok\s+old-etcd\s+v3\s+1d\s+90d\s+120\/120/);
    expect(lines(text).at(-1)).toBe('5 encrypted clusters; 1 rotation overdue; 2 plugins not ready');
  });

  it('-o wide adds READY, the coverage breakdown and the scan age', () => {
    const text = render('wide', fleetPrintable(rows, now));
    expect(lines(text)[0]).toMatch(
      /^NAMESPACE\s+CLUSTER\s+READY\s+KEY\s+KEK\s+KEK-AGE\s+ROTATION\s+COVERAGE\s+SCANNED\s+LAST-REWRAP\s+PLUGIN\s+LATEST-BACKUP$/,
    );
    expect(text).toMatch(
      /beta\s+old\s+True\s+old-etcd\s+v3\s+120d\s+90d OVERDUE\s+117\/120 \(3 stale, 0 plaintext\)\s+2h\s+12d/,
    );
    expect(text).toMatch(/acme-web\s+fresh\s+-\s+-/);
  });

  it('-o json and -o yaml print the Fleet document', () => {
    const doc = JSON.parse(render('json', fleetPrintable(rows, now)));
    expect(doc).toMatchObject({
      apiVersion: 'cli.kube-dc.com/v1alpha1',
      kind: 'Fleet',
      generatedAt: '2026-06-01T00:00:00Z',
    });
    expect(doc.clusters).toHaveLength(5);
    expect(doc.clusters[3]).toEqual({
      namespace: 'beta',
      name: 'old',
      keyRef: 'old-etcd',
      kekVersion: 3,
      kekAgeSeconds: 120 * 86_400,
      rotationInterval: '90d',
      rotationOverdue: true,
      coverage: { current: 117, total: 120, stale: 3, plaintext: 0, scannedAt: ago(0, 2) },
      lastRewrapCompleted: ago(12),
      pluginReady: true,
      latestBackupTime: ago(0, 5),
      ready: 'True',
    });
    expect(parse(render('yaml', fleetPrintable(rows, now)))).toEqual(doc);
  });

  it('-o name prints kdccluster/<ns>/<name>', () => {
    expect(render('name', fleetPrintable(rows, now))).toBe(
      'kdccluster/acme-web/fresh\nkdccluster/acme-web/prod\nkdccluster/beta/manual\nkdccluster/beta/old\nkdccluster/other/ok\n',
    );
  });

  it('an empty fleet says where it looked', () => {
    expect(fleetTable([], now)).toBe('No encrypted KdcClusters in any namespace.\n');
    expect(JSON.parse(render('json', fleetPrintable([], now))).clusters).toEqual([]);
  });

  it.each([
    [0, '0s'],
    [45, '45s'],
    [12 * 60 + 5, '12m'],
    [5 * 3600, '5h'],
    [12 * 86_400, '12d'],
    [800 * 86_400, '2y'],
    [-30, '0s'],
  ])('shortAge(%d) = %s', (seconds, text) => {
    expect(shortAge(seconds)).toBe(text);
  });
});

describe('execute', () => {
  // A loopback apiserver that answers the two list calls and records the paths asked for.
  const seen: string[] = [];
  let server: Server;
  let dir: string;
  let kubeconfig: string;
  const inNamespace = (items: { metadata?: { namespace?: string } }[], url: string) => {
    const ns = /\/namespaces\/([^/]+)\//.exec(url)?.[1];
    return items.filter((i) => !ns || i.metadata?.namespace === ns);
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '';
      seen.push(url);
      res.setHeader('Content-Type', 'application/json');
      if (url.includes('forbidden')) {
        res.statusCode = 403;
        return res.end(JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'no' }));
      }
      const items = url.endsWith('/kdcclusters')
        ? inNamespace(clusters, url)
        : url.endsWith('/kmskeys')
          ? inNamespace(keys, url)
          : [];
      res.end(JSON.stringify({ metadata: {}, items }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = mkdtempSync(join(tmpdir(), 'fleet-'));
    kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'http://127.0.0.1:${(server.address() as AddressInfo).port}', insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u, namespace: ctx-ns } }]
current-context: x
`,
    );
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (...argv: string[]) => {
    const parsed = parseArgs([...argv, '--kubeconfig', kubeconfig], spec);
    if (!parsed.ok) throw new Error(parsed.error);
    let out = '';
    const ctx: CommandContext = {
      env: {},
      io: { out: (t) => (out += t), err: () => {} },
      now: () => now,
      sleep: async () => {},
    };
    seen.length = 0;
    const code = await execute(parsed.args, ctx);
    return { code, out, paths: [...seen] };
  };

  it('lists every namespace by default (not the context namespace) and exits 1 on trouble', async () => {
    const { code, out, paths } = await run();
    expect(paths).toEqual([
      '/apis/k8s.kube-dc.com/v1alpha1/kdcclusters',
      '/apis/security.kube-dc.com/v1alpha1/kmskeys',
    ]);
    expect(out).toContain('5 encrypted clusters; 1 rotation overdue; 2 plugins not ready');
    expect(code).toBe(1);
  });

  it('-n narrows to one namespace; a healthy one exits 0', async () => {
    const { code, out, paths } = await run('-n', 'acme-web', '-o', 'name');
    expect(paths).toEqual([
      '/apis/k8s.kube-dc.com/v1alpha1/namespaces/acme-web/kdcclusters',
      '/apis/security.kube-dc.com/v1alpha1/namespaces/acme-web/kmskeys',
    ]);
    expect(out).toBe('kdccluster/acme-web/fresh\nkdccluster/acme-web/prod\n');
    expect(code).toBe(1);
    expect((await run('-n', 'other')).code).toBe(0);
  });

  it('-A wins over -n; nothing encrypted skips the KMSKey list', async () => {
    expect((await run('-A', '-n', 'acme-web')).paths[0]).toBe('/apis/k8s.kube-dc.com/v1alpha1/kdcclusters');
    const empty = await run('-n', 'nobody');
    expect(empty).toEqual({
      code: 0,
      out: 'No encrypted KdcClusters in namespace "nobody".\n',
      paths: ['/apis/k8s.kube-dc.com/v1alpha1/namespaces/nobody/kdcclusters'],
    });
  });

  it('API refusals say what was being listed', async () => {
    await expect(run('-n', 'forbidden')).rejects.toThrow(
      'listing KdcClusters in namespace "forbidden": forbidden (403)',
    );
  });
});
