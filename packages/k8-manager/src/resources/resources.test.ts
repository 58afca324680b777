import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { autoKeyRotationDrift, buildAutoKey } from './kms-key.ts';
import { LABELS, decodeSecretData } from '@kdc/shared';
import { buildEncryptionConfigSecret, desiredSecretData } from './encryption-config-secret.ts';
import { buildPluginServiceAccount } from './service-account.ts';

const spec = (rotation?: object) =>
  ({
    version: 'v1.35.0',
    controlPlane: { replicas: 2 },
    encryption: { etcd: { enabled: true, resources: ['secrets'], kekRotation: rotation } },
  }) as any;

describe('auto KMSKey', () => {
  it('is purpose etcd, retained, tied by labels and not by an owner', () => {
    const key = buildAutoKey('acme-dev', 'c1', spec({ enabled: true, interval: '90d' }));
    expect(key.metadata).toEqual({
      name: 'c1-etcd',
      namespace: 'acme-dev',
      labels: { 'k8s.kube-dc.com/kdccluster': 'c1', 'security.kube-dc.com/managed-by': 'kdccluster' },
    });
    expect(key.spec).toEqual({
      purpose: 'etcd',
      algorithm: 'aes256-gcm96',
      deletionPolicy: 'retain',
      exportable: false,
      rotation: { enabled: true, interval: '90d' },
    });
  });
  it.each([
    [undefined, { enabled: false }, false],
    [{ enabled: true, interval: '90d' }, { enabled: true, interval: '90d' }, false],
    [{ enabled: true, interval: '90d' }, { enabled: true, interval: '30d' }, true],
    [{ enabled: false, interval: '90d' }, { enabled: true, interval: '90d' }, true],
    [undefined, undefined, false],
  ])('rotation %j vs key %j drift=%s', (wanted, actual, drift) => {
    expect(autoKeyRotationDrift({ rotation: actual }, spec(wanted))).toBe(drift);
  });
});

describe('encryption-config Secret', () => {
  it('holds the configuration and the CA, base64 on the wire', () => {
    const data = desiredSecretData({ encrypt: ['secrets'], decrypt: [] }, 'PEM');
    const secret = buildEncryptionConfigSecret('ns', 'c1', data);
    expect(secret.metadata.name).toBe('c1-encryption-config');
    expect(decodeSecretData(secret)).toEqual(data);
    expect(parse(data['encryption-config.yaml']!).resources[0].providers[0].kms.apiVersion).toBe('v2');
    expect(Object.keys(desiredSecretData({ encrypt: ['secrets'], decrypt: [] }, undefined))).toEqual([
      'encryption-config.yaml',
    ]);
  });
});

describe('plugin ServiceAccount', () => {
  it('does not mount a Kubernetes API token', () => {
    expect(buildPluginServiceAccount('ns', 'c1')).toMatchObject({
      metadata: { name: 'c1-kms-plugin' },
      automountServiceAccountToken: false,
    });
  });
  it("carries its shard's labels (a null is a label the cluster lacks: left off)", () => {
    expect(buildPluginServiceAccount('ns', 'c1', { shard: 'a', zone: null }).metadata.labels).toEqual({
      shard: 'a',
      [LABELS.kdcCluster]: 'c1',
    });
  });
});
