import { describe, expect, it } from 'vitest';
import { isAttached, validateCluster } from '@kdc/shared';
import { planCluster, type ObservedCluster } from './plan.ts';
import { buildTenantControlPlane } from './resources/tenant-control-plane.ts';
import { desiredSecretData } from './resources/encryption-config-secret.ts';

const platform = { ok: true as const, config: { kmsPluginImage: 'kms:1', openBaoUrl: 'https://bao' } };
const spec = (etcd: object | null = {}) => ({
  version: 'v1.35.0',
  ...(etcd ? { encryption: { etcd: { enabled: true, ...etcd } } } : {}),
});
const ownKey = {
  metadata: {
    name: 'c1-etcd',
    labels: { 'k8s.kube-dc.com/kdccluster': 'c1', 'security.kube-dc.com/managed-by': 'kdccluster' },
  },
  spec: { purpose: 'etcd', rotation: { enabled: false } },
};
const preflightOk = {
  type: 'KMSPreflight',
  status: 'True' as const,
  reason: 'Passed',
  message: 'ok',
  lastTransitionTime: 't',
  observedGeneration: 1,
};

function observed(rawSpec: object, more: Partial<ObservedCluster> = {}): ObservedCluster {
  const validation = validateCluster({
    namespace: 'ns',
    name: 'c1',
    spec: rawSpec,
    annotations: {},
    platform,
    kmsKeys: [ownKey],
    otherClusters: [],
    attached: false,
    now: new Date(),
  });
  return {
    namespace: 'ns',
    name: 'c1',
    generation: 1,
    validation,
    tcp: buildTenantControlPlane('ns', 'c1', { version: 'v1.35.0', controlPlane: { replicas: 2 } }),
    autoKey: ownKey,
    serviceAccountExists: true,
    secretData: desiredSecretData({ encrypt: ['secrets'], decrypt: [] }, undefined),
    preflight: preflightOk,
    ...more,
  };
}

describe('planCluster: one change at a time, in order', () => {
  it('walks from nothing to an attached TCP, then stays done', () => {
    let o = observed(spec(), {
      tcp: null,
      autoKey: null,
      serviceAccountExists: false,
      secretData: undefined,
      preflight: undefined,
    });
    const steps: string[] = [];
    for (let i = 0; i < 10; i++) {
      const action = planCluster(o);
      steps.push(action.kind);
      if (action.kind === 'done' || action.kind === 'waitForPreflight') {
        if (action.kind === 'done') break;
        o = { ...o, preflight: preflightOk };
        continue;
      }
      if (action.kind === 'createTenantControlPlane') o = { ...o, tcp: action.object };
      if (action.kind === 'createKmsKey') o = { ...o, autoKey: action.object };
      if (action.kind === 'createServiceAccount') o = { ...o, serviceAccountExists: true };
      if (action.kind === 'writeEncryptionConfig')
        o = { ...o, secretData: desiredSecretData({ encrypt: ['secrets'], decrypt: [] }, undefined) };
      if (action.kind === 'patchTenantControlPlane')
        o = {
          ...o,
          tcp: {
            ...o.tcp!,
            spec: { ...o.tcp!.spec, controlPlane: { ...o.tcp!.spec.controlPlane, deployment: action.deployment } },
          },
        };
    }
    expect(steps).toEqual([
      'createTenantControlPlane',
      'createKmsKey',
      'createServiceAccount',
      'writeEncryptionConfig',
      'waitForPreflight',
      'patchTenantControlPlane',
      'done',
    ]);
    expect(isAttached(o.tcp)).toBe(true);
  });

  it('a sharded release makes the TCP with its shard labels, and labels one that lacks them before anything else', () => {
    const shard = { shard: 'a', legacy: null };
    const created = planCluster(observed(spec(), { tcp: null, shardLabels: shard }));
    expect(created.kind).toBe('createTenantControlPlane');
    expect(created.kind === 'createTenantControlPlane' && created.object.metadata.labels).toEqual({
      shard: 'a',
      'k8s.kube-dc.com/kdccluster': 'c1',
    });
    // Made before sharding (no labels of the shard), and a cluster moved here from shard b: labelled first.
    const unlabelled = observed(spec(), { shardLabels: shard, serviceAccountExists: false });
    expect(planCluster(unlabelled)).toEqual({ kind: 'labelTenantControlPlane', labels: { shard: 'a' } });
    const moved = observed(spec(), { shardLabels: shard });
    moved.tcp!.metadata.labels = { ...moved.tcp!.metadata.labels, shard: 'b', legacy: 'x', kamaji: 'keep' };
    expect(planCluster(moved)).toEqual({ kind: 'labelTenantControlPlane', labels: { shard: 'a', legacy: null } });
    // Labelled: the plan goes on (positive control: the same observation without the shard asks nothing of labels).
    const labelled = observed(spec(), { shardLabels: shard });
    labelled.tcp!.metadata.labels = { ...labelled.tcp!.metadata.labels, shard: 'a' };
    expect(planCluster(labelled).kind).toBe('patchTenantControlPlane');
    expect(planCluster(observed(spec())).kind).toBe('patchTenantControlPlane');
    // An unencrypted cluster's TCP is labelled too: the shard's cache must hold it all the same.
    expect(planCluster(observed(spec(null), { shardLabels: shard })).kind).toBe('labelTenantControlPlane');
  });

  it('changes nothing for an invalid spec', () => {
    expect(
      planCluster(observed(spec({ kekRotation: { enabled: true, interval: '2w' } }), { tcp: null, autoKey: null })),
    ).toEqual({ kind: 'invalid' });
  });

  it('waits for a pre-flight of this generation', () => {
    expect(planCluster(observed(spec(), { generation: 2 })).kind).toBe('waitForPreflight');
    const failed = planCluster(
      observed(spec(), { preflight: { ...preflightOk, status: 'False', message: 'rotate granted' } }),
    );
    expect(failed).toEqual({
      kind: 'waitForPreflight',
      failed: true,
      message: 'KMS pre-flight failed: rotate granted',
    });
  });

  it('steers only the rotation of its own auto key', () => {
    expect(planCluster(observed(spec({ kekRotation: { enabled: true, interval: '30d' } })))).toEqual({
      kind: 'updateKmsKeySpec',
      spec: expect.objectContaining({ rotation: { enabled: true, interval: '30d' } }),
    });
  });

  it('disable: decrypts first ([identity, kms]), detaches only once every row is proven plaintext, then stays done', () => {
    const attachedTcp = () => {
      let o = observed(spec());
      for (let i = 0; i < 5 && planCluster(o).kind !== 'done'; i++) {
        const a = planCluster(o);
        if (a.kind === 'patchTenantControlPlane')
          o = {
            ...o,
            tcp: {
              ...o.tcp!,
              spec: { ...o.tcp!.spec, controlPlane: { ...o.tcp!.spec.controlPlane, deployment: a.deployment } },
            },
          };
      }
      return o.tcp!;
    };
    const tcp = attachedTcp();
    expect(isAttached(tcp)).toBe(true);
    const decrypting = planCluster(
      observed(spec({ disableRequested: true }), { tcp, providerState: { encryptedResources: ['secrets'] } }),
    );
    expect(decrypting).toEqual({ kind: 'writeEncryptionConfig', object: expect.anything(), exists: true });
    expect(
      decrypting.kind === 'writeEncryptionConfig' &&
        Buffer.from(decrypting.object.data['encryption-config.yaml']!, 'base64').toString(),
    ).toMatch(/- identity: \{\}\n\s+- kms:/);
    const proven = planCluster(
      observed(spec({ disableRequested: true }), {
        tcp,
        providerState: { encryptedResources: [], decryptingResources: [] },
      }),
    );
    expect(proven).toMatchObject({ kind: 'patchTenantControlPlane', change: 'detach' });
    const detached =
      proven.kind === 'patchTenantControlPlane'
        ? { ...tcp, spec: { ...tcp.spec, controlPlane: { ...tcp.spec.controlPlane, deployment: proven.deployment } } }
        : tcp;
    expect(isAttached(detached)).toBe(false);
    expect(
      planCluster(
        observed(spec({ disableRequested: true }), {
          tcp: detached,
          providerState: { encryptedResources: [], decryptingResources: [] },
        }),
      ),
    ).toEqual({ kind: 'done' });
  });

  it('rewrites the config Secret when the resources change', () => {
    const action = planCluster(observed(spec({ resources: ['secrets', 'configmaps'] })));
    expect(action).toMatchObject({ kind: 'writeEncryptionConfig', exists: true });
  });

  it('leaves an unencrypted cluster alone and detaches only on break-glass', () => {
    expect(planCluster(observed(spec(null))).kind).toBe('done');
  });
});
