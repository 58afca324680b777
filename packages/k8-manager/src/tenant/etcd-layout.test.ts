import { describe, expect, it } from 'vitest';
import { etcdLayout, type EtcdStatefulSet } from './etcd-layout.ts';

const sts = (
  patch: {
    replicas?: number;
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
    mountPath?: string;
    claims?: string[];
  } = {},
): EtcdStatefulSet => ({
  metadata: { name: 'prod-etcd' },
  spec: {
    replicas: patch.replicas ?? 1,
    template: {
      spec: {
        securityContext: { fsGroup: 1000 },
        containers: [
          {
            name: 'etcd',
            args: patch.args ?? [
              '--name=$(POD_NAME)',
              '--data-dir=/var/lib/etcd/data',
              '--initial-cluster',
              '$(POD_NAME)=http://127.0.0.1:2380',
              '--initial-advertise-peer-urls=http://127.0.0.1:2380',
            ],
            env: patch.env ?? [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            volumeMounts: [{ name: 'data', mountPath: patch.mountPath ?? '/var/lib/etcd' }],
            securityContext: { runAsUser: 1000 },
          },
        ],
      },
    },
    volumeClaimTemplates: (patch.claims ?? ['data']).map((name) => ({ metadata: { name } })),
  },
});

describe('etcdLayout', () => {
  it('reads the claim, paths and member flags (both flag forms, $(POD_NAME) expanded)', () => {
    expect(etcdLayout(sts())).toEqual({
      ok: true,
      layout: {
        claimName: 'data-prod-etcd-0',
        mountPath: '/var/lib/etcd',
        dataDir: '/var/lib/etcd/data',
        name: 'prod-etcd-0',
        initialCluster: 'prod-etcd-0=http://127.0.0.1:2380',
        initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
        podSecurityContext: { fsGroup: 1000 },
        runAsUser: 1000,
      },
    });
  });
  it.each([
    ['three members', sts({ replicas: 3 }), 'MultiReplicaUnsupported', /3 etcd members/],
    ['no etcd flags', sts({ args: ['--foo'] }), 'DataStoreUnmanaged', /no container with an etcd --data-dir/],
    ['data not on a claim', sts({ claims: ['other'] }), 'DataStoreUnmanaged', /not on a volumeClaimTemplate/],
    [
      'data dir is the volume root',
      sts({ args: ['--data-dir=/var/lib/etcd'] }),
      'DataStoreUnmanaged',
      /must be a directory below the mount/,
    ],
    [
      'a data dir a shell would read differently',
      sts({ args: ["--data-dir=/var/lib/etcd/x';rm -rf /;'"] }),
      'DataStoreUnmanaged',
      /not a plain absolute path/,
    ],
    [
      'unknown variable',
      sts({ args: ['--data-dir=/var/lib/etcd/data', '--name=$(NODE)'] }),
      'DataStoreUnmanaged',
      /cannot expand \$\(NODE\)/,
    ],
  ])('%s', (_, input, reason, message) => {
    expect(etcdLayout(input)).toMatchObject({ ok: false, reason, message: expect.stringMatching(message) });
  });
});
