import { describe, expect, it } from 'vitest';
import { clusterNames, defaultBackupDestination, kmsKeyId, KMS_STORED_PREFIX, transitKeyName } from './names.ts';

describe('names (SPEC 3.3)', () => {
  it('derives every per-cluster object name', () => {
    expect(clusterNames('prod')).toMatchObject({
      tenantControlPlane: 'prod-cp',
      autoEtcdKey: 'prod-etcd',
      kmsPluginServiceAccount: 'prod-kms-plugin',
      encryptionConfigSecret: 'prod-encryption-config',
      openBaoPolicy: 'tcp-prod',
      openBaoRole: 'tcp-prod',
      backupCronJob: 'prod-etcd-backup',
    });
  });
  it('names Transit keys and key ids', () => {
    expect(transitKeyName('acme-shop', 'prod-etcd')).toBe('acme-shop-prod-etcd');
    expect(kmsKeyId('acme', 'acme-shop-prod-etcd')).toBe('acme/transit/keys/acme-shop-prod-etcd');
    expect(kmsKeyId(undefined, 'k')).toBe('transit/keys/k');
  });
  it('knows the stored-value prefix and backup destination', () => {
    expect(KMS_STORED_PREFIX).toBe('k8s:enc:kms:v2:kube-dc-kms-plugin:');
    expect(defaultBackupDestination('acme-shop', 'prod')).toBe('s3://acme-shop-managed-k8s-backups/prod/');
  });
});
