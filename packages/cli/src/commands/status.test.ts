import { describe, expect, it } from 'vitest';
import { renderStatus } from './status.ts';

describe('renderStatus', () => {
  it('shows encryption, rotation, backups, a running restore and every condition', () => {
    const text = renderStatus({
      metadata: {
        name: 'prod',
        namespace: 'acme-web',
        annotations: {
          'kube-dc.com/restore-from': 'prod/prod-20261122T020000Z/',
          'kube-dc.com/restore-state': 'RestoringSnapshot',
        },
      },
      status: {
        phase: 'Ready',
        encryption: {
          resolvedKeyRef: 'prod-etcd',
          resolvedBackupKeyRef: 'prod-etcd',
          currentKeyVersion: 3,
          kmsPluginReady: true,
          kekRotation: {
            enabled: true,
            currentVersion: 3,
            nextRotationTime: '2027-02-20T00:00:00Z',
            minDecryptionVersion: 1,
          },
        },
        backupDestinationPath: 's3://acme-web-managed-k8s-backups/prod/',
        latestBackupKey: 'prod/prod-20261122T020000Z/',
        latestBackupTime: '2026-11-22T02:00:00Z',
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'EncryptionAvailable',
            message: 'the control plane encrypts etcd through the KMS plugin',
          },
          { type: 'BackupReady', status: 'False', reason: 'BackupFailed', message: 'Job x failed' },
        ],
      },
    });
    expect(text).toContain('Phase:       Ready');
    expect(text).toContain('key prod-etcd, KEK version 3 in use, plugin ready');
    expect(text).toContain('next 2027-02-20T00:00:00Z; min_decryption_version 1');
    expect(text).toContain('latest prod/prod-20261122T020000Z/ at 2026-11-22T02:00:00Z (key prod-etcd)');
    expect(text).toContain('Restore:     from prod/prod-20261122T020000Z/: RestoringSnapshot');
    expect(text).toMatch(/BackupReady\s+False\s+BackupFailed\s+Job x failed/);
  });
  it('an unreconciled, unencrypted cluster', () => {
    const text = renderStatus({ metadata: { name: 'dev', namespace: 'acme-web' } });
    expect(text).toContain('(not reconciled yet)');
    expect(text).toContain('Encryption:  off');
    expect(text).toContain('No conditions yet.');
  });
});
