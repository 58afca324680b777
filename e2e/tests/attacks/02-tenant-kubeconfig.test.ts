import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KDC_API_VERSION, clusterNames, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { LOCAL_IMAGES } from '../../src/images.ts';
import type { K8ManagerProcess } from '../../src/k8-manager.ts';
import { startKamajiRunner } from '../../src/kamaji-runner.ts';
import { createCA, issueCert } from '../../src/pki.ts';
import { freePort } from '../../src/ports.ts';
import { waitFor } from '../../src/wait.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  platform,
  shardControllers,
  unique,
  type TestCondition,
} from '../helpers.ts';

// Finding 2: the admin kubeconfig Secret of a tenant control plane sits in the tenant's namespace,
// so the tenant can rewrite it. k8-manager must take only an inline CA and inline credentials
// from it, connect only to the address Kamaji reports for the control plane, never run a
// program or read a file named in it, and never copy what a tenant endpoint answers into status.

type Cluster = KubeObject & { status?: { conditions?: TestCondition[] } };
type Seen = { method?: string; url?: string; authorization?: string };
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('attack 02: a tenant rewrites its admin kubeconfig Secret', () => {
  const kube = management();
  const id = unique('a02');
  const cluster = id;
  const names = clusterNames(cluster);
  const secretName = `${names.tenantControlPlane}-admin-kubeconfig`;
  const marker = `kdc-attack-02-${randomBytes(6).toString('hex')}`;
  const stops: { stop(): Promise<void> }[] = [];
  let ns: string;
  let manager: K8ManagerProcess;
  let dir: string;
  let original: string;
  let real: { server: string; ca: string; cert: string; key: string };
  let attackerCa: string;
  // What the tenant's listener on loopback saw: TLS handshakes and requests.
  const handshakes: number[] = [];
  const requests: Seen[] = [];
  let listenerUrl: string;

  beforeAll(async () => {
    ns = await createNamespace(kube, 'tenant');
    dir = join(platform().dir, id);
    mkdirSync(dir, { recursive: true });
    const controllers = await shardControllers(id, { OBSERVE_PERIOD: '2s' });
    manager = controllers[1];
    stops.push(...controllers);
    stops.push(await startKamajiRunner(platform(), { images: LOCAL_IMAGES, namespaces: [ns] }));

    // The tenant's own HTTPS endpoint, with a CA of its own, answering readyz with the marker.
    const ca = createCA(join(dir, 'attacker'), 'attacker');
    attackerCa = ca.certPem;
    const cert = issueCert(ca, join(dir, 'attacker'), {
      name: 'listener',
      commonName: 'listener',
      ips: ['127.0.0.1'],
      usage: 'server',
    });
    const port = await freePort();
    const server: Server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
      requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      res.statusCode = 500;
      res.end(`[-]kms-provider-0 failed: ${marker}\nreadyz check failed ${marker}`);
    });
    server.on('secureConnection', () => handshakes.push(Date.now()));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    stops.push({ stop: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    listenerUrl = `https://127.0.0.1:${port}`;

    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    });
    await waitFor(
      'cluster Ready',
      async () => condition(await kube.get<Cluster>(kdc(ns, cluster)), 'Ready')?.status === 'True',
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    const secret = await kube.get<KubeObject & { data: Record<string, string> }>(at(RESOURCES.secret, ns, secretName));
    original = Buffer.from(secret.data['admin.conf']!, 'base64').toString('utf8');
    const doc = parse(original) as {
      clusters: { cluster: Record<string, string> }[];
      users: { user: Record<string, string> }[];
    };
    real = {
      server: doc.clusters[0]!.cluster.server!,
      ca: doc.clusters[0]!.cluster['certificate-authority-data']!,
      cert: doc.users[0]!.user['client-certificate-data']!,
      key: doc.users[0]!.user['client-key-data']!,
    };
  }, 300_000);

  afterAll(async () => {
    for (const s of stops.reverse()) await s.stop();
  });

  /** What a tenant with write access to Secrets in its namespace does. */
  const overwrite = (cluster: Record<string, unknown>, user: Record<string, unknown>) =>
    kube.patch(at(RESOURCES.secret, ns, secretName), {
      data: {
        'admin.conf': b64(
          stringify({
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [{ name: 'tenant', cluster }],
            users: [{ name: 'tenant', user }],
            contexts: [{ name: 'tenant', context: { cluster: 'tenant', user: 'tenant' } }],
            'current-context': 'tenant',
          }),
        ),
      },
    });
  const availability = async () => condition(await kube.get<Cluster>(kdc(ns, cluster)), 'EncryptionAvailable');
  /** Everything the controller wrote where the tenant (or anybody with read access) can see it. */
  const visible = async () =>
    JSON.stringify([await kube.get(kdc(ns, cluster)), await kube.list(at(RESOURCES.event, ns))]);
  const managerLog = () => readFileSync(manager.process.logFile, 'utf8');
  /** Reconciles this test's k8-manager made (it serves only this test's cluster). */
  const reconciles = async () =>
    (await (await fetch(`${manager.metricsUrl}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('kdc_reconcile_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

  it('(a) an exec credential plugin is refused, and never runs inside the controller', async () => {
    const ran = join(dir, 'exec-ran');
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token: 'from-exec' },
    });
    await overwrite(
      { server: real.server, 'certificate-authority-data': real.ca },
      {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: 'sh',
          args: ['-c', `touch ${ran}; echo '${credential}'`],
          interactiveMode: 'Never',
        },
      },
    );
    // Either the plugin ran (the attack worked) or the controller says it refused the kubeconfig.
    await waitFor(
      'the exec plugin to run or be refused',
      async () => existsSync(ran) || /exec/.test((await availability())?.message ?? ''),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(existsSync(ran)).toBe(false);
    expect(await availability()).toMatchObject({
      status: 'False',
      reason: 'TenantKubeconfigRefused',
      message: expect.stringContaining('user.exec runs a credential plugin'),
    });
    expect((await availability())?.message).toContain('certificate-authority-data');
  }, 90_000);

  it('(b) a tokenFile is refused: the file is never read and nothing reaches the server it names', async () => {
    const secretFile = join(dir, 'controller-only-token');
    const content = `controller-secret-${randomBytes(8).toString('hex')}`;
    writeFileSync(secretFile, content, { mode: 0o600 });
    // `token-file` is how client-node spells client-go's tokenFile (it reads the file as it loads).
    await overwrite(
      { server: listenerUrl, 'certificate-authority-data': b64(attackerCa) },
      { 'token-file': secretFile },
    );
    await waitFor(
      'the token file to be used or refused',
      async () => requests.length > 0 || /token-file/.test((await availability())?.message ?? ''),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(requests).toEqual([]);
    expect(handshakes).toEqual([]);
    expect(await availability()).toMatchObject({
      status: 'False',
      reason: 'TenantKubeconfigRefused',
      message: expect.stringContaining('user.token-file reads a token from a file'),
    });
    expect(await visible()).not.toContain(content);
    expect(managerLog()).not.toContain(content);
  }, 90_000);

  it('(c) a server answering readyz with a marker is never asked, and no tenant answer reaches status or events', async () => {
    await overwrite(
      { server: listenerUrl, 'certificate-authority-data': b64(attackerCa) },
      { token: 'attacker-token' },
    );
    // Accepted in form; connecting to the control plane's real address with the tenant's CA fails TLS.
    await waitFor(
      'the listener to be asked, or the control plane to be refused',
      async () =>
        requests.length > 0 ||
        (await visible()).includes(marker) ||
        /TLS verification failed/.test((await availability())?.message ?? ''),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(requests).toEqual([]);
    expect(handshakes).toEqual([]);
    expect(await visible()).not.toContain(marker);
    expect(await availability()).toMatchObject({
      status: 'False',
      reason: 'TenantApiserverUnreachable',
      message: expect.stringMatching(/TLS verification failed \([A-Z_]+\)/),
    });
  }, 90_000);

  it('positive control: the real credentials work whatever server the Secret names, and only the real address is used', async () => {
    await overwrite(
      { server: listenerUrl, 'certificate-authority-data': real.ca },
      { 'client-certificate-data': real.cert, 'client-key-data': real.key },
    );
    await waitFor(
      'Ready again',
      async () => condition(await kube.get<Cluster>(kdc(ns, cluster)), 'Ready')?.status === 'True',
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(await availability()).toMatchObject({ status: 'True', reason: 'KMSPluginReady' });
    expect(requests).toEqual([]);
    expect(handshakes).toEqual([]);
    // And the Secret exactly as Kamaji wrote it keeps the cluster Ready.
    await kube.patch(at(RESOURCES.secret, ns, secretName), { data: { 'admin.conf': b64(original) } });
    const before = await reconciles();
    await waitFor('two more reconciles of the cluster', async () => (await reconciles()) >= before + 2, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    expect(condition(await kube.get<Cluster>(kdc(ns, cluster)), 'Ready')?.status).toBe('True');
    expect(await visible()).not.toContain(marker);
  }, 90_000);
});
