import { describe, expect, it } from 'vitest';
import { kdcClusterSpecSchema, type KdcClusterSpecInput } from '../api/kdccluster.ts';
import { resolveBackupSettings } from './backup-settings.ts';

const spec = (backup?: KdcClusterSpecInput['backup']) => kdcClusterSpecSchema.parse({ version: 'v1.35.0', ...(backup ? { backup } : {}) });

describe('resolveBackupSettings', () => {
  it.each([
    ['defaults', spec(), { bucket: 'acme-web-managed-k8s-backups', destinationPath: 's3://acme-web-managed-k8s-backups/c1/', s3Endpoint: 'http://platform-s3', credentialSecret: 'managed-k8s-backups', schedule: '0 2 * * *', retentionDays: 7 }],
    ['bucket only', spec({ destinationPath: 's3://team-bucket' }), { bucket: 'team-bucket', destinationPath: 's3://team-bucket/c1/' }],
    ['bucket and cluster prefix', spec({ destinationPath: 's3://team-bucket/c1/', s3Endpoint: 'https://s3.example', s3CredentialSecret: 'creds', retentionDays: 30 }), { bucket: 'team-bucket', s3Endpoint: 'https://s3.example', credentialSecret: 'creds', retentionDays: 30 }],
  ])('%s', (_, input, expected) => {
    const result = resolveBackupSettings('acme-web', 'c1', input, 'http://platform-s3');
    expect(result).toMatchObject({ ok: true, settings: expected });
  });

  it.each([
    ['not s3', 's3:/x'],
    ['another prefix', 's3://team-bucket/other/'],
    ['nested prefix', 's3://team-bucket/c1/daily/'],
  ])('refuses a destination with %s and says what to write', (_, destinationPath) => {
    const result = resolveBackupSettings('acme-web', 'c1', spec({ destinationPath }));
    expect(result).toMatchObject({ ok: false, reason: 'BackupDestinationInvalid', message: expect.stringContaining('s3://<bucket>/c1/') });
  });

  it('is null when backups are disabled', () => {
    expect(resolveBackupSettings('acme-web', 'c1', spec({ enabled: false }))).toBeNull();
  });
});
