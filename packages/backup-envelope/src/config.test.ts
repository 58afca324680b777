import { describe, expect, it } from 'vitest';
import { helpText, parseCli, parseSize } from './config.ts';

const env = { S3_BUCKET: 'b', OPENBAO_ADDR: 'https://bao:8200' };

describe('kdc-backup flags', () => {
  it('parses a backup job with defaults for the platform (Kubernetes auth as backup-<namespace>.<cluster>)', () => {
    const result = parseCli(
      [
        'backup',
        '--cluster',
        'prod',
        '--namespace',
        'acme-shop',
        '--transit-key',
        'acme-shop-prod-etcd',
        '--etcd-endpoint',
        'https://etcd:2379',
        '--etcd-ca-file',
        '/ca',
        '--etcd-cert-file',
        '/c',
        '--etcd-key-file',
        '/k',
      ],
      { ...env, S3_ENDPOINT: 'https://minio:9000/' },
    );
    expect(result).toEqual({
      ok: true,
      config: expect.objectContaining({
        command: 'backup',
        cluster: 'prod',
        namespace: 'acme-shop',
        transitKey: 'acme-shop-prod-etcd',
        s3: { endpoint: 'https://minio:9000', bucket: 'b', region: 'us-east-1' },
        openbao: {
          addr: 'https://bao:8200',
          transitMount: 'transit',
          auth: {
            method: 'kubernetes',
            mount: 'k8s-host',
            role: 'backup-acme-shop.prod',
            tokenFile: '/var/run/secrets/openbao/token',
          },
        },
        source: { kind: 'etcd', endpoint: 'https://etcd:2379', caFile: '/ca', certFile: '/c', keyFile: '/k' },
        segmentSize: 1 << 20,
        partSize: 8 << 20,
        queueSize: 2,
        staleUploadAgeMs: 86_400_000,
      }),
    });
  });

  it('takes environment variables, flags win', () => {
    const result = parseCli(['list', '--s3-bucket', 'flag'], {
      KDC_CLUSTER: 'prod',
      S3_BUCKET: 'env',
      S3_REGION: 'eu-1',
      S3_ACCESS_KEY_ID: 'a',
      S3_SECRET_ACCESS_KEY: 's',
    });
    expect(result).toMatchObject({
      ok: true,
      config: {
        command: 'list',
        cluster: 'prod',
        s3: { bucket: 'flag', region: 'eu-1', accessKeyId: 'a', secretAccessKey: 's' },
        json: false,
      },
    });
  });

  it('parses restore and rewrap', () => {
    expect(
      parseCli(
        [
          'restore',
          '--cluster',
          'prod',
          '--backup',
          'latest',
          '--data-dir',
          '/var/lib/etcd',
          '--bump-revision',
          '1000000000',
          '--auth-method',
          'token',
        ],
        { ...env, OPENBAO_TOKEN: 't', KDC_NAMESPACE: 'acme' },
      ),
    ).toMatchObject({
      ok: true,
      config: {
        command: 'restore',
        namespace: 'acme',
        backup: 'latest',
        allowUnauthenticated: false,
        openbao: { auth: { method: 'token', token: 't' } },
        destination: { kind: 'data-dir', path: '/var/lib/etcd', etcdutl: 'etcdutl', bumpRevision: 1_000_000_000 },
      },
    });
    expect(parseCli(['rewrap', '--cluster', 'prod', '--namespace', 'acme', '--dry-run'], env)).toMatchObject({
      ok: true,
      config: { command: 'rewrap', dryRun: true, openbao: { auth: { role: 'backup-acme.prod' } } },
    });
  });

  it.each([
    [[], /missing command/],
    [['backpu'], /unknown command "backpu"/],
    [['list', '--cluster', 'prod', '--nope'], /unknown flag --nope/],
    [['list', '--cluster', 'prod', '--data-dir', '/x'], /unknown flag --data-dir for "list"/],
    [['list'], /--cluster: required \(or set KDC_CLUSTER\)/],
    [['list', '--cluster', 'Prod_1'], /not a DNS label/],
    [
      ['backup', '--cluster', 'p', '--namespace', 'n', '--transit-key', 'k'],
      /exactly one of --etcd-endpoint .* or --snapshot-file/,
    ],
    [
      [
        'backup',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--transit-key',
        'k',
        '--snapshot-file',
        'f',
        '--segment-size',
        '8',
      ],
      /--segment-size: "8"/,
    ],
    [
      [
        'backup',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--transit-key',
        'k',
        '--snapshot-file',
        'f',
        '--segment-size',
        '128Mi',
      ],
      /--segment-size: "128Mi" must be a size between 16 and 67108864 bytes/,
    ],
    [
      [
        'backup',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--transit-key',
        'k',
        '--snapshot-file',
        'f',
        '--part-size',
        '1Mi',
      ],
      /--part-size/,
    ],
    [
      [
        'backup',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--transit-key',
        'k',
        '--snapshot-file',
        'f',
        '--retention-days',
        '0',
      ],
      /--retention-days: "0" must be an integer in 1..365/,
    ],
    [['backup', '--cluster', 'p', '--namespace', 'n', '--snapshot-file', 'f'], /--transit-key: required/],
    [
      ['backup', '--cluster', 'p', '--namespace', 'n', '--transit-key', 'k', '--etcd-endpoint', 'etcd'],
      /not http\(s\):\/\/host:port/,
    ],
    [['restore', '--cluster', 'p', '--namespace', 'n', '--backup', 'latest'], /exactly one of --data-dir/],
    [['restore', '--cluster', 'p', '--backup', 'latest', '--output', 'f'], /--namespace: required .*another namespace/],
    [
      [
        'restore',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--backup',
        'latest',
        '--output',
        'f',
        '--allow-unauthenticated',
      ],
      /--allow-unauthenticated only applies to a plaintext backup/,
    ],
    [
      ['restore', '--cluster', 'p', '--namespace', 'n', '--backup', 'latest', '--output', 'f', '--auth-method', 'ldap'],
      /--auth-method: "ldap"/,
    ],
    [['rewrap', '--cluster', 'p'], /--auth-role: required with --auth-method=kubernetes unless --namespace/],
    [
      [
        'restore',
        '--cluster',
        'p',
        '--namespace',
        'n',
        '--backup',
        'latest',
        '--output',
        'f',
        '--auth-method',
        'token',
      ],
      /--token-file: required with --auth-method=token/,
    ],
  ])('refuses %j', (argv, message) => {
    const result = parseCli(argv, env);
    expect(result.ok).toBe(false);
    expect((result as { errors: string[] }).errors.join('\n')).toMatch(message);
  });

  it('reads sizes in binary units', () => {
    expect(parseSize('16Mi')).toBe(16 << 20);
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('1G')).toBe(1 << 30);
    expect(parseSize('100')).toBe(100);
    expect(parseSize('1.5Mi')).toBeNull();
  });

  it('documents every flag', () => {
    expect(helpText()).toMatch(/--transit-key/);
    expect(helpText()).toMatch(/Exit codes: 0 done, 1 failed .* 2 bad flags/);
  });
});
