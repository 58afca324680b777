import { describe, expect, it } from 'vitest';
import { LABELS } from '@kdc/shared';
import { buildBackupCronJob, buildBackupServiceAccount } from './backup-cronjob.ts';

const input = {
  namespace: 'acme-web',
  cluster: 'prod',
  settings: {
    bucket: 'b1',
    destinationPath: 's3://b1/prod/',
    s3Endpoint: 'http://s3:9000',
    credentialSecret: 'creds',
    schedule: '15 3 * * *',
    retentionDays: 14,
  },
  image: 'reg/kdc-backup:1',
  openBaoUrl: 'https://bao:8200',
  openBaoNamespace: 'acme',
  hasCaBundle: true,
  transitKey: 'acme-web-prod-etcd',
  etcdEndpoints: ['etcd-0.prod:2379'],
};

describe('buildBackupCronJob', () => {
  const cj = buildBackupCronJob(input);
  const pod = cj.spec.jobTemplate.spec.template.spec;
  const container = pod.containers[0]!;
  const env = Object.fromEntries(container.env.map((e) => [e.name, 'value' in e ? e.value : e.valueFrom]));

  it('runs on the cluster schedule, one at a time, with retention', () => {
    expect(cj.metadata.name).toBe('prod-etcd-backup');
    expect(cj.spec).toMatchObject({ schedule: '15 3 * * *', concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' });
    expect(container.args).toEqual(['backup', '--retention-days=14']);
  });
  it('runs as its own ServiceAccount with only an OpenBao-audience token, non-root, read-only', () => {
    expect(pod).toMatchObject({
      serviceAccountName: 'prod-etcd-backup',
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      securityContext: { runAsNonRoot: true, runAsUser: 65532 },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.volumes.find((v) => v.name === 'openbao-token')).toMatchObject({
      projected: { sources: [{ serviceAccountToken: { audience: 'openbao', path: 'token' } }] },
    });
  });
  it('takes credentials from the Secret by reference (never by value) and the snapshot from the DataStore over TLS', () => {
    expect(env).toMatchObject({
      KDC_CLUSTER: 'prod',
      KDC_NAMESPACE: 'acme-web',
      S3_BUCKET: 'b1',
      S3_ENDPOINT: 'http://s3:9000',
      TRANSIT_KEY: 'acme-web-prod-etcd',
      OPENBAO_NAMESPACE: 'acme',
      OPENBAO_CACERT: '/etc/kdc/openbao-ca/openbao-ca.crt',
      ETCD_ENDPOINT: 'https://etcd-0.prod:2379',
      ETCD_CERT_FILE: '/etc/kdc/etcd/server.crt',
      AWS_ACCESS_KEY_ID: { secretKeyRef: { name: 'creds', key: 'AWS_ACCESS_KEY_ID' } },
    });
    expect(pod.volumes.find((v) => v.name === 'etcd-client')).toMatchObject({
      secret: { secretName: 'prod-cp-datastore-certs' },
    });
  });
  it('hashes what it writes, so only a real change rewrites it', () => {
    expect(buildBackupCronJob(input).metadata.annotations).toEqual(cj.metadata.annotations);
    expect(buildBackupCronJob({ ...input, hasCaBundle: false }).metadata.annotations).not.toEqual(
      cj.metadata.annotations,
    );
  });
  it('carries a sharded cluster its shard labels on itself and on every Job it makes; unsharded, the same hash as before', () => {
    const sharded = buildBackupCronJob({ ...input, shard: { shard: 'b', tier: null } });
    const wanted = { shard: 'b', [LABELS.kdcCluster]: 'prod' };
    expect(sharded.metadata.labels).toMatchObject(wanted);
    expect(sharded.spec.jobTemplate.metadata.labels).toMatchObject(wanted);
    expect(sharded.spec.jobTemplate.spec.template.metadata.labels).toMatchObject(wanted);
    expect(Object.keys(sharded.metadata.labels)).not.toContain('tier');
    expect(sharded.metadata.annotations).not.toEqual(cj.metadata.annotations);
    expect(buildBackupCronJob({ ...input, shard: {} }).metadata.annotations).toEqual(cj.metadata.annotations);
    expect(buildBackupServiceAccount('acme-web', 'prod', { shard: 'b' }).metadata.labels).toEqual(wanted);
  });
});
