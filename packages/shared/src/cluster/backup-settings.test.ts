import { describe, expect, it } from 'vitest';
import { kdcClusterSpecSchema, type KdcClusterSpecInput } from '../api/kdccluster.ts';
import { checkS3Endpoint, resolveBackupSettings, s3EndpointOrigin } from './backup-settings.ts';

const spec = (backup?: KdcClusterSpecInput['backup']) =>
  kdcClusterSpecSchema.parse({ version: 'v1.35.0', ...(backup ? { backup } : {}) });

describe('resolveBackupSettings', () => {
  it.each([
    [
      'defaults',
      spec(),
      {
        bucket: 'acme-web-managed-k8s-backups',
        destinationPath: 's3://acme-web-managed-k8s-backups/c1/',
        s3Endpoint: 'http://platform-s3',
        credentialSecret: 'managed-k8s-backups',
        schedule: '0 2 * * *',
        retentionDays: 7,
      },
    ],
    [
      'bucket only',
      spec({ destinationPath: 's3://team-bucket' }),
      { bucket: 'team-bucket', destinationPath: 's3://team-bucket/c1/' },
    ],
    [
      'bucket and cluster prefix',
      spec({
        destinationPath: 's3://team-bucket/c1/',
        s3Endpoint: 'https://s3.example',
        s3CredentialSecret: 'creds',
        retentionDays: 30,
      }),
      { bucket: 'team-bucket', s3Endpoint: 'https://s3.example', credentialSecret: 'creds', retentionDays: 30 },
    ],
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
    expect(result).toMatchObject({
      ok: false,
      reason: 'BackupDestinationInvalid',
      message: expect.stringContaining('s3://<bucket>/c1/'),
    });
  });

  it('is null when backups are disabled', () => {
    expect(resolveBackupSettings('acme-web', 'c1', spec({ enabled: false }))).toBeNull();
  });
});

describe('checkS3Endpoint: only the platform decides where k8-manager reads a bucket', () => {
  const platform = {
    s3Endpoint: 'http://minio.platform:9000',
    s3EndpointAllowlist: ['https://s3.example.com', 'http://10.0.0.5:9000/', 'not a url'],
  };
  it.each([
    ['the platform endpoint', 'http://minio.platform:9000', true],
    ['an allow-listed one', 'https://s3.example.com', true],
    ['an allow-listed one, spelled otherwise', 'HTTPS://S3.EXAMPLE.COM:443/', true],
    ['with a trailing slash in the list', 'http://10.0.0.5:9000', true],
    ['another port', 'https://s3.example.com:8443', false],
    ['another scheme', 'http://s3.example.com', false],
    ['a tenant endpoint', 'http://127.0.0.1:31337', false],
    ['credentials in the URL', 'https://user:pw@s3.example.com', false],
    ['a path', 'https://s3.example.com/bucket', false],
    ['not http', 'ftp://s3.example.com', false],
  ])('%s', (_, endpoint, ok) => {
    const result = checkS3Endpoint(endpoint, platform);
    expect(result.ok).toBe(ok);
    if (!result.ok)
      expect(result).toMatchObject({
        reason: 'S3EndpointNotAllowed',
        message: expect.stringContaining('S3_ENDPOINT_ALLOWLIST'),
      });
  });
  it('AWS (no endpoint) only when the platform uses AWS', () => {
    expect(checkS3Endpoint('', {}).ok).toBe(true);
    expect(checkS3Endpoint('https://s3.example.com', {})).toMatchObject({
      ok: false,
      message: expect.stringContaining('(allowed: none;'),
    });
  });
  it('normalises origins', () => {
    expect(s3EndpointOrigin('https://S3.Example.com:443')).toBe('https://s3.example.com');
    expect(s3EndpointOrigin('http://h:80/')).toBe('http://h');
    expect(s3EndpointOrigin('h:9000')).toBeNull();
  });
});
