import { describe, expect, it } from 'vitest';
import { buildRestoreJob } from './restore-job.ts';

const input: Parameters<typeof buildRestoreJob>[0] = {
  namespace: 'acme-web',
  cluster: 'prod',
  key: 'prod/prod-20261122T020000Z/',
  settings: {
    bucket: 'b1',
    destinationPath: 's3://b1/prod/',
    s3Endpoint: '',
    credentialSecret: 'creds',
    schedule: '0 2 * * *',
    retentionDays: 7,
  },
  image: 'reg/kdc-backup:1',
  openBaoUrl: 'https://bao:8200',
  hasCaBundle: false,
  transitKey: 'acme-web-prod-etcd',
  layout: {
    claimName: 'data-prod-etcd-0',
    mountPath: '/var/lib/etcd',
    dataDir: '/var/lib/etcd/data',
    name: 'prod-etcd-0',
    initialCluster: 'prod-etcd-0=http://127.0.0.1:2380',
    runAsUser: 1000,
    podSecurityContext: { fsGroup: 1000 },
  },
};
const job = buildRestoreJob(input);
const pod = job.spec.template.spec;
const init = pod.initContainers as {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: unknown[];
  securityContext?: unknown;
}[];

describe('buildRestoreJob', () => {
  it('names the namespace the backup must have been taken in, and passes a confirmed plaintext key on', () => {
    expect(init[1]!.env).toEqual(expect.arrayContaining([{ name: 'KDC_NAMESPACE', value: 'acme-web' }]));
    expect(init[1]!.args).not.toContain('--allow-unauthenticated');
    const plain = buildRestoreJob({ ...input, key: 'prod/prod-20261122T020000Z.db', allowUnauthenticated: true }).spec
      .template.spec.initContainers[1] as { args: string[] };
    expect(plain.args).toContain('--allow-unauthenticated');
  });
  it('prepares, restores beside the data dir, then swaps, all with the kdc-backup image: nothing touches the live data before the last step', () => {
    expect(init.map((c) => c.name)).toEqual(['prepare', 'etcd-restore']);
    expect([...init, ...pod.containers].map((c) => c.image)).toEqual([
      'reg/kdc-backup:1',
      'reg/kdc-backup:1',
      'reg/kdc-backup:1',
    ]);
    expect([...init, ...pod.containers].some((c) => 'command' in c)).toBe(false);
    expect(init[0]!.args).toEqual(['data-dir', 'prepare', '--restoring=/var/lib/etcd/data.restoring']);
    expect(init[1]!.args).toEqual([
      'restore',
      '--backup=prod/prod-20261122T020000Z/',
      '--data-dir=/var/lib/etcd/data.restoring',
      '--bump-revision=1000000000',
      '--etcd-name=prod-etcd-0',
      '--initial-cluster=prod-etcd-0=http://127.0.0.1:2380',
    ]);
    expect(pod.containers[0]!.args).toEqual([
      'data-dir',
      'swap',
      '--restoring=/var/lib/etcd/data.restoring',
      '--data-dir=/var/lib/etcd/data',
      '--previous=/var/lib/etcd/data.pre-restore',
    ]);
  });
  it("runs once, as the backup writer and as etcd's user, on etcd's claim; accepts only this cluster's key", () => {
    expect(job.spec.backoffLimit).toBe(0);
    expect(pod).toMatchObject({
      serviceAccountName: 'prod-etcd-backup',
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      securityContext: { fsGroup: 1000 },
    });
    expect(pod.volumes[0]).toEqual({ name: 'etcd-data', persistentVolumeClaim: { claimName: 'data-prod-etcd-0' } });
    expect(init[1]!.securityContext).toMatchObject({ runAsUser: 1000, allowPrivilegeEscalation: false });
    expect(init[1]!.env).toContainEqual({ name: 'TRANSIT_KEY', value: 'acme-web-prod-etcd' });
  });
});
