import { describe, expect, it } from 'vitest';
import { kdcClusterSpecSchema, parseKdcClusterSpec } from './kdccluster.ts';
import { kmsKeySpecSchema } from './kmskey.ts';
import { tenantControlPlaneSchema } from './tenantcontrolplane.ts';

describe('KdcCluster spec schema', () => {
  it('applies the SPEC defaults', () => {
    const spec = kdcClusterSpecSchema.parse({
      version: 'v1.35.0',
      encryption: { etcd: { enabled: true } },
      backup: {},
    });
    expect(spec.controlPlane).toEqual({ replicas: 2 });
    expect(spec.encryption?.etcd.resources).toEqual(['secrets']);
    expect(spec.backup).toEqual({
      enabled: true,
      schedule: '0 2 * * *',
      retentionDays: 7,
      s3CredentialSecret: 'managed-k8s-backups',
    });
  });

  it.each([
    [{ version: 'v1.35.0', encryption: { etcd: {} } }, 'encryption.etcd.enabled'],
    [
      { version: 'v1.35.0', encryption: { etcd: { enabled: true, resources: ['pods'] } } },
      'encryption.etcd.resources.0',
    ],
    [{ version: 'v1.35.0', encryption: { etcd: { enabled: true, resources: [] } } }, 'encryption.etcd.resources'],
    [{ version: 'v1.35.0', backup: { retentionDays: 0 } }, 'backup.retentionDays'],
    [{}, 'version'],
  ])('refuses %j at %s', (input, path) => {
    const result = kdcClusterSpecSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});

describe('parseKdcClusterSpec', () => {
  it('parses a spec object once, and each new object (a new version from the cache) again', () => {
    const spec = { version: 'v1.35.0', encryption: { etcd: { enabled: true } } };
    const first = parseKdcClusterSpec(spec);
    expect(first).toEqual(kdcClusterSpecSchema.safeParse(spec));
    expect(parseKdcClusterSpec(spec)).toBe(first);
    const next = { ...spec, encryption: { etcd: { enabled: false } } };
    expect(parseKdcClusterSpec(next)).not.toBe(first);
    expect(parseKdcClusterSpec(next).data?.encryption?.etcd.enabled).toBe(false);
    expect(parseKdcClusterSpec({ version: 7 }).success).toBe(false);
    expect(parseKdcClusterSpec(undefined).success).toBe(false);
  });
});

describe('KMSKey spec schema', () => {
  it('defaults to a retained, non-exportable application key', () => {
    expect(kmsKeySpecSchema.parse({})).toEqual({
      purpose: 'application',
      algorithm: 'aes256-gcm96',
      deletionPolicy: 'retain',
      exportable: false,
    });
  });
  it('refuses unknown algorithms', () => {
    expect(kmsKeySpecSchema.safeParse({ algorithm: 'rsa-2048' }).success).toBe(false);
  });
});

describe('TenantControlPlane schema', () => {
  it('keeps fields it does not model, so read-modify-write loses nothing', () => {
    const tcp = {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'TenantControlPlane',
      metadata: { name: 'a-cp', namespace: 'ns', labels: { x: 'y' } },
      spec: {
        controlPlane: {
          deployment: {
            replicas: 2,
            additionalInitContainers: [{ name: 'theirs', image: 'i', ports: [{ containerPort: 1 }] }],
          },
          service: { serviceType: 'ClusterIP' },
        },
        kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
        addons: { coreDNS: {} },
      },
    };
    expect(tenantControlPlaneSchema.parse(tcp)).toEqual(tcp);
  });
});
