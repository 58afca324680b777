import { describe, expect, it } from 'vitest';
import {
  clusterNames,
  defaultBackupDestination,
  kmsKeyId,
  kmsKeyTransitName,
  KMS_STORED_PREFIX,
  legacyOpenBaoAccessNames,
  legacyTransitKeyName,
  openBaoAccessNames,
  transitKeyFromKeyId,
  transitKeyName,
} from './names.ts';

describe('names (SPEC 3.3)', () => {
  it('derives every per-cluster object name', () => {
    expect(clusterNames('prod')).toMatchObject({
      tenantControlPlane: 'prod-cp',
      autoEtcdKey: 'prod-etcd',
      kmsPluginServiceAccount: 'prod-kms-plugin',
      encryptionConfigSecret: 'prod-encryption-config',
      backupCronJob: 'prod-etcd-backup',
    });
  });
  it('names Transit keys and key ids', () => {
    expect(transitKeyName('acme-shop', 'prod-etcd')).toBe('acme-shop.prod-etcd');
    expect(kmsKeyId('acme', 'acme-shop.prod-etcd')).toBe('acme/transit/keys/acme-shop.prod-etcd');
    expect(kmsKeyId(undefined, 'k')).toBe('transit/keys/k');
  });
  it('gives two (namespace, name) pairs two OpenBao names, where the legacy scheme gave one', () => {
    expect(legacyTransitKeyName('acme-shop', 'prod-web-etcd')).toBe(legacyTransitKeyName('acme-shop-prod', 'web-etcd'));
    expect(transitKeyName('acme-shop', 'prod-web-etcd')).not.toBe(transitKeyName('acme-shop-prod', 'web-etcd'));
    expect(openBaoAccessNames('acme-shop', 'prod-web')).toEqual({
      pluginPolicy: 'tcp-acme-shop.prod-web',
      pluginRole: 'tcp-acme-shop.prod-web',
      backupPolicy: 'backup-acme-shop.prod-web',
      backupRole: 'backup-acme-shop.prod-web',
    });
    expect(openBaoAccessNames('acme-shop', 'web').pluginPolicy).not.toBe(
      openBaoAccessNames('acme', 'shop-web').pluginPolicy,
    );
    expect(legacyOpenBaoAccessNames('web').pluginRole).toBe('tcp-web');
  });
  it.each([
    ['acme/transit/keys/acme-shop.prod-etcd', 'acme-shop.prod-etcd'],
    ['transit/keys/acme-shop-prod-etcd', 'acme-shop-prod-etcd'],
    ['transit/keys/', undefined],
    ['something else', undefined],
    ['transit/keys/x/../../../sys/policies/acl/root', undefined],
    ['transit/keys/a..b', undefined],
    ['transit/keys/Victim', undefined],
    [undefined, undefined],
  ])('reads the Transit key of keyId %s', (keyId, name) => expect(transitKeyFromKeyId(keyId)).toBe(name));
  it('uses the resolved key of a KMSKey, else the name the controller would create', () => {
    expect(kmsKeyTransitName('ns', 'k', 'transit/keys/ns-k')).toBe('ns-k');
    expect(kmsKeyTransitName('ns', 'k')).toBe('ns.k');
  });
  it('knows the stored-value prefix and backup destination', () => {
    expect(KMS_STORED_PREFIX).toBe('k8s:enc:kms:v2:kube-dc-kms-plugin:');
    expect(defaultBackupDestination('acme-shop', 'prod')).toBe('s3://acme-shop-managed-k8s-backups/prod/');
  });
});
