import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  KubeClient,
  TCP_PATCH,
  clusterNames,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { readRaw } from '../src/etcd-raw.ts';
import { KMS_PLUGIN_IMAGE, LOCAL_IMAGES } from '../src/images.ts';
import { startK8Manager, type K8ManagerProcess } from '../src/k8-manager.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { parseStoredValue } from '../src/kms.ts';
import { waitFor } from '../src/wait.ts';
import {
  condition,
  controllerNamespace,
  createNamespace,
  kdc,
  management,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

// Issue 12, operation 5, with the real controllers and the local Kamaji runner: an encrypted
// tenant whose rows were written by the plugin release before kdc2 (kdc1 key_ids, which hash the
// OpenBao URL) goes through the platform moving to a second hostname of the same OpenBao together
// with the plugin upgrade. The control-plane pod is replaced, so its apiserver starts with an
// empty DEK cache and every old row is read through Decrypt with its stored kdc1 key_id.

type Cluster = KubeObject & {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
};
type Secret = KubeObject & { data: Record<string, string> };
const tcpRef = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
/** The release before kdc2, as an image of the local runner: the same program publishing kdc1 key_ids. */
const KDC1_PLUGIN_IMAGE = 'kdc.local/kms-plugin:kdc1';
const ROWS = 20;

describe('k8-manager: the platform OpenBao URL moves to another hostname of the same server', () => {
  const kube = management();
  const id = unique('url');
  const labels = { 'kdc-e2e/k8m': id };
  const cluster = 'moved';
  const names = clusterNames(cluster);
  let ns: string;
  let runner: KamajiRunner;
  let manager: K8ManagerProcess;
  const processes: { stop(): Promise<void> }[] = [];
  const port = new URL(platform().openbao.url).port;
  const first = `https://127.0.0.1:${port}`;
  const second = `https://localhost:${port}`;

  beforeAll(async () => {
    ns = await createNamespace(kube, 'url');
    const [reconciler, k8m] = await shardControllers(id, {
      OBSERVE_PERIOD: '3s',
      OPENBAO_URL: first,
      KMS_PLUGIN_IMAGE: KDC1_PLUGIN_IMAGE,
    });
    processes.push(reconciler);
    manager = k8m;
    runner = await startKamajiRunner(platform(), {
      images: { ...LOCAL_IMAGES, [KDC1_PLUGIN_IMAGE]: [...LOCAL_IMAGES[KMS_PLUGIN_IMAGE]!, '--key-id-form=kdc1'] },
      namespaces: [ns],
    });
    processes.push(runner);
  }, 120_000);
  afterAll(async () => {
    await manager?.stop();
    for (const p of processes.reverse()) await p.stop();
  });

  const tcp = () => kube.get<TenantControlPlane & KubeObject>(tcpRef(ns, names.tenantControlPlane));
  const pluginArgs = async () =>
    (await tcp()).spec.controlPlane.deployment!.additionalInitContainers!.find(
      (c) => c.name === TCP_PATCH.pluginContainer,
    )!.args!;
  const ready = (what: string) =>
    waitFor(
      what,
      async () => {
        const c = await kube.get<Cluster>(kdc(ns, cluster));
        return condition(c, 'Ready')?.status === 'True' && condition(c, 'EncryptionAvailable')?.status === 'True'
          ? c
          : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
  const tenant = async () => {
    const admin = await kube.get<Secret>(at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`));
    return KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
  };
  const storedKeyId = async (name: string) =>
    parseStoredValue(
      (await readRaw(platform().etcd.endpoint, `/${ns}_${names.tenantControlPlane}/secrets/default/${name}`))!,
    ).keyID;

  it('keeps the tenant Ready and every Secret written under kdc1 readable, byte for byte', async () => {
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    });
    await ready('the cluster Ready on the first URL');
    expect(await pluginArgs()).toContain(`--openbao-addr=${first}`);

    const ledger = new Map<string, string>();
    const before = await tenant();
    for (let i = 0; i < ROWS; i++) {
      const value = randomBytes(16 + i).toString('base64');
      await before.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `old-${i}` },
        data: { v: value },
      });
      ledger.set(`old-${i}`, value);
    }
    const kdc1 = await storedKeyId('old-0');
    expect(kdc1).toMatch(/^kdc1\.v1\./);
    for (const name of ledger.keys()) expect(await storedKeyId(name)).toBe(kdc1);
    const podBefore = await runner.waitForPod(ns, names.tenantControlPlane, { ready: true });

    // The platform upgrade: a new plugin image and OpenBao reached by its second hostname.
    await manager.stop();
    const lease = await controllerNamespace(kube);
    manager = await startK8Manager(platform(), {
      name: `k8m-${id}`,
      leaseNamespace: lease,
      selector: `kdc-e2e/k8m=${id}`,
      env: { OBSERVE_PERIOD: '3s', OPENBAO_URL: second, KMS_PLUGIN_IMAGE },
    });
    await waitFor(
      'the TCP to carry the new URL',
      async () => (await pluginArgs()).includes(`--openbao-addr=${second}`),
      { timeoutMs: 60_000, intervalMs: 500 },
    );

    await runner.waitForPod(ns, names.tenantControlPlane, { ready: true, notHash: podBefore.hash, timeoutMs: 180_000 });
    const afterReady = await ready('the cluster Ready again on the second URL');
    expect(condition(afterReady, 'EncryptionConfigError')?.status).toBe('False');

    // The new pod's apiserver has no DEK cache: each old row goes through Decrypt with its kdc1 key_id.
    const after = await tenant();
    const errors: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const [name, value] of ledger) {
        try {
          const secret = await after.get<Secret>(at(RESOURCES.secret, 'default', name));
          if (secret.data.v !== value) errors.push(`${name}: changed`);
        } catch (error) {
          errors.push(`${name}: ${(error as Error).message.slice(0, 200)}`);
        }
      }
    }
    expect(errors).toEqual([]);
    expect(await storedKeyId('old-0')).toBe(kdc1);
    // What made that possible: the plugin still recognises kdc1 ids made under the first URL.
    const args = await pluginArgs();
    expect(args).toContain(`--legacy-key-id-openbao-addr=${first}`);
    expect(args.filter((a) => a.startsWith('--openbao-addr='))).toEqual([`--openbao-addr=${second}`]);
    // New writes use the kdc2 key_id, which no hostname change will move again.
    await after.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'after-move' },
      data: { v: 'bW92ZWQ=' },
    });
    expect(await storedKeyId('after-move')).toMatch(/^kdc2\.v1\./);
  }, 420_000);
});
