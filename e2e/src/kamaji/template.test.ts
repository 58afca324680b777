import { describe, expect, it } from 'vitest';
import { templateHash, type TenantControlPlane } from './tcp.ts';
import { buildPod, mergeApiServerArgs } from './template.ts';

const tcp = (spec: TenantControlPlane['spec'] = {}): TenantControlPlane => ({
  metadata: { name: 'demo', namespace: 'acme', uid: 'u-1' },
  spec: { kubernetes: { version: 'v1.36.3' }, ...spec },
});

describe('mergeApiServerArgs', () => {
  it('lets managed flags win, applies defaults the user did not set, and keeps user extras verbatim', () => {
    const args = mergeApiServerArgs(
      ['--secure-port=1', '--authorization-mode=RBAC', '--x=1'],
      { '--authorization-mode': 'Node,RBAC', '--y': '2' },
      { '--secure-port': '6443' },
    );
    expect(args).toEqual(['--secure-port=6443', '--y=2', '--authorization-mode=RBAC', '--x=1']);
  });

  it('writes a flag with an empty value bare', () => {
    expect(mergeApiServerArgs([], { '--profiling': '' }, {})).toEqual(['--profiling']);
  });
});

describe('templateHash', () => {
  it('ignores key order and what does not roll the deployment, and changes with the version', () => {
    const a = tcp({ controlPlane: { deployment: { replicas: 1, extraArgs: { apiServer: ['--v=2'] } } } });
    const b = tcp({ controlPlane: { deployment: { extraArgs: { apiServer: ['--v=2'] }, replicas: 1 } } });
    expect(templateHash(a)).toBe(templateHash(b));
    expect(templateHash({ spec: { ...a.spec, dataStore: 'other' } })).toBe(templateHash(a));
    expect(templateHash({ spec: { ...a.spec, kubernetes: { version: 'v1.37.0' } } })).not.toBe(templateHash(a));
  });
});

describe('buildPod', () => {
  it('puts the additional containers before the apiserver, and its mounts after the additional ones', () => {
    const pod = buildPod(
      tcp({
        controlPlane: {
          deployment: {
            additionalInitContainers: [{ name: 'init' }],
            additionalContainers: [{ name: 'sidecar' }],
            additionalVolumes: [{ name: 'extra', emptyDir: {} }],
            additionalVolumeMounts: { apiServer: [{ name: 'extra', mountPath: '/extra' }] },
            podAdditionalMetadata: { labels: { team: 'a' }, annotations: { note: 'x' } },
          },
        },
      }),
      'h1',
      { servers: 'http://127.0.0.1:2379' },
    );
    expect(pod.metadata).toMatchObject({
      name: 'demo-h1-local',
      namespace: 'acme',
      labels: { team: 'a', 'kamaji.clastix.io/name': 'demo', 'pod-template-hash': 'h1' },
      annotations: { note: 'x' },
      ownerReferences: [{ kind: 'TenantControlPlane', name: 'demo', uid: 'u-1', controller: false }],
    });
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['init']);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['sidecar', 'kube-apiserver']);
    const apiServer = pod.spec.containers[1]!;
    expect(apiServer.volumeMounts?.map((m) => m.name)).toEqual([
      'extra',
      'etc-kubernetes-pki',
      'etc-ca-certificates',
      'usr-share-ca-certificates',
      'usr-local-share-ca-certificates',
    ]);
    expect(apiServer.image).toBe('registry.k8s.io/kube-apiserver:v1.36.3');
    expect(apiServer.args).toEqual(
      expect.arrayContaining([
        '--etcd-servers=http://127.0.0.1:2379',
        '--etcd-prefix=/acme_demo',
        '--secure-port=6443',
      ]),
    );
    expect(apiServer.args?.some((a) => a.startsWith('--etcd-cafile'))).toBe(false);
    expect(pod.spec.volumes?.map((v) => v.name)[0]).toBe('extra');
  });

  it('reaches a DataStore over TLS with the certificates projected under pki/etcd', () => {
    const pod = buildPod(tcp({ dataStore: 'dedicated', dataStoreSchema: 'tenant_a' }), 'h1', {
      servers: 'https://10.0.0.1:2379',
      certsSecret: 'demo-datastore-certs',
    });
    const apiServer = pod.spec.containers.at(-1)!;
    expect(apiServer.args).toEqual(
      expect.arrayContaining([
        '--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt',
        '--etcd-certfile=/etc/kubernetes/pki/etcd/server.crt',
        '--etcd-prefix=/tenant_a',
      ]),
    );
    const pki = pod.spec.volumes?.find((v) => v.name === 'etc-kubernetes-pki');
    expect(pki?.projected?.sources?.at(-1)?.secret).toEqual({
      name: 'demo-datastore-certs',
      items: ['ca.crt', 'server.crt', 'server.key'].map((key) => ({ key, path: `etcd/${key}` })),
    });
  });

  it('takes probe timings from every component, then from the apiserver, over the defaults', () => {
    const pod = buildPod(
      tcp({
        networkProfile: { port: 7443 },
        controlPlane: {
          deployment: { probes: { liveness: { periodSeconds: 5 }, apiServer: { liveness: { failureThreshold: 9 } } } },
        },
      }),
      'h1',
      { servers: 'x' },
    );
    expect(pod.spec.containers.at(-1)!.livenessProbe).toEqual({
      httpGet: { path: '/livez', port: 7443, scheme: 'HTTPS' },
      initialDelaySeconds: 0,
      timeoutSeconds: 1,
      periodSeconds: 5,
      successThreshold: 1,
      failureThreshold: 9,
    });
  });
});
