import { describe, expect, it } from 'vitest';
import {
  KAMAJI_API_VERSION,
  KDC_API_VERSION,
  KDC_GROUP,
  KMSKEY_API_VERSION,
  type KubeObject,
  RESOURCES,
} from '@kdc/shared';
import { applyCrds, kamajiCrds, platformCrds } from '../src/crds.ts';
import { createNamespace, management } from './helpers.ts';

const kdcRef = (namespace: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace, name });
const kkeyRef = (namespace: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace, name });
const tcpRef = (namespace: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace, name });

describe('CRDs on the real management apiserver', () => {
  it('applies our generated CRDs and the unmodified Kamaji CRDs (idempotently)', async () => {
    const kube = management();
    await applyCrds(kube, [...platformCrds(), ...kamajiCrds()]);
    const names = (await kube.list(RESOURCES.customResourceDefinition)).items.map((c) => c.metadata?.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'kdcclusters.k8s.kube-dc.com',
        'kmskeys.security.kube-dc.com',
        'tenantcontrolplanes.kamaji.clastix.io',
        'datastores.kamaji.clastix.io',
      ]),
    );
  });

  it('defaults a KdcCluster as the spec says and serves its printer columns and short name', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'crd');
    const created = await kube.create<KubeObject & { spec: Record<string, any> }>(kdcRef(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'alpha' },
      spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } }, backup: {} },
    });
    expect(created.spec.controlPlane).toEqual({ replicas: 2 });
    expect(created.spec.encryption.etcd.resources).toEqual(['secrets']);
    expect(created.spec.backup).toMatchObject({
      enabled: true,
      schedule: '0 2 * * *',
      retentionDays: 7,
      s3CredentialSecret: 'managed-k8s-backups',
    });

    const asTable = await kube.request<{ columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] }>(
      'GET',
      `/apis/${KDC_GROUP}/v1alpha1/namespaces/${ns}/kdcclusters`,
      {
        accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
      },
    );
    expect(asTable.columnDefinitions.map((c) => c.name)).toEqual(
      expect.arrayContaining(['Name', 'Version', 'Phase', 'Ready', 'Encryption', 'KEK', 'Age']),
    );
    expect(asTable.rows[0]!.cells[0]).toBe('alpha');

    const resources = await kube.request<{ resources: { name: string; shortNames?: string[] }[] }>(
      'GET',
      `/apis/${KDC_GROUP}/v1alpha1`,
    );
    expect(resources.resources.find((r) => r.name === 'kdcclusters')?.shortNames).toEqual(['kdc-cl']);
  });

  it('accepts what reconcile must judge (bad intervals) but refuses wrong types', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'crd');
    // Reconcile-time rules (SPEC 3.1): the apiserver accepts, the controller reports.
    await kube.create(kdcRef(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'weekly' },
      spec: {
        version: 'v1.35.0',
        encryption: { etcd: { enabled: true, kekRotation: { enabled: true, interval: '2w' } } },
      },
    });
    await expect(
      kube.create(kdcRef(ns), {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: 'bad-type' },
        spec: { version: 'v1.35.0', controlPlane: { replicas: 'two' } },
      }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(
      kube.create(kkeyRef(ns), {
        apiVersion: KMSKEY_API_VERSION,
        kind: 'KMSKey',
        metadata: { name: 'k' },
        spec: { algorithm: 'rsa-4096' },
      }),
    ).rejects.toThrow(/Unsupported value: "rsa-4096"/);
    const key = await kube.create<KubeObject & { spec: Record<string, unknown> }>(kkeyRef(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'ok' },
      spec: {},
    });
    expect(key.spec).toEqual({
      purpose: 'application',
      algorithm: 'aes256-gcm96',
      deletionPolicy: 'retain',
      exportable: false,
    });
  });

  it('lets the real Kamaji CRD keep restartPolicy: Always on an additional init container', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'tcp');
    await kube.create(tcpRef(ns), {
      apiVersion: KAMAJI_API_VERSION,
      kind: 'TenantControlPlane',
      metadata: { name: 'alpha-cp' },
      spec: {
        controlPlane: {
          deployment: {
            replicas: 2,
            additionalInitContainers: [{ name: 'kms-plugin', image: 'example/kms-plugin:1', restartPolicy: 'Always' }],
            additionalVolumes: [{ name: 'kmsplugin-socket', emptyDir: {} }],
            additionalVolumeMounts: { apiServer: [{ name: 'kmsplugin-socket', mountPath: '/var/run/kmsplugin' }] },
            extraArgs: { apiServer: ['--encryption-provider-config=/etc/kdc/encryption/config.yaml'] },
            serviceAccountName: 'alpha-kms-plugin',
          },
          service: { serviceType: 'ClusterIP' },
        },
        networkProfile: { port: 6443 },
        kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
      },
    });
    const live = await kube.get<KubeObject & { spec: any }>(tcpRef(ns, 'alpha-cp'));
    expect(live.spec.controlPlane.deployment.additionalInitContainers[0].restartPolicy).toBe('Always');
    expect(live.spec.controlPlane.deployment.serviceAccountName).toBe('alpha-kms-plugin');
    expect(live.spec.controlPlane.deployment.extraArgs.apiServer).toEqual([
      '--encryption-provider-config=/etc/kdc/encryption/config.yaml',
    ]);
  });
});
