import { describe, expect, it } from 'vitest';
import { contains, sleepingStatus, tcpStatus } from './status.ts';
import { templateHash, type TenantControlPlane } from './tcp.ts';

const tcp: TenantControlPlane = {
  metadata: { name: 'demo', namespace: 'acme' },
  spec: { kubernetes: { version: 'v1.36.3' }, controlPlane: { deployment: { replicas: 2 } } },
};
const hash = templateHash(tcp);

describe('TenantControlPlane status', () => {
  it.each([
    ['no pod ready yet: Provisioning', [{ hash, ready: false }], false, 'Provisioning', 0],
    [
      'a pod ready: Ready',
      [
        { hash, ready: true },
        { hash: 'old', ready: false },
      ],
      false,
      'Ready',
      1,
    ],
    ['ready before, none now: NotReady', [{ hash, ready: false }], true, 'NotReady', 0],
  ])('%s', (_what, replicas, everReady, status, ready) => {
    const s = tcpStatus({ tcp, hostPort: 1234, replicas, everReady });
    expect(s.kubernetesResources.version).toEqual({ version: 'v1.36.3', status });
    expect(s.kubernetesResources.deployment).toMatchObject({
      replicas: 2,
      readyReplicas: ready,
      availableReplicas: ready,
    });
    expect(s.controlPlaneEndpoint).toBe('127.0.0.1:1234');
    expect(s.storage).toEqual({ driver: 'etcd', dataStoreName: 'local-platform-etcd', setup: { schema: 'acme_demo' } });
  });

  it('counts the pods of the current template as updated', () => {
    const s = tcpStatus({
      tcp,
      hostPort: 1,
      replicas: [
        { hash, ready: true },
        { hash: 'old', ready: true },
      ],
      everReady: true,
    });
    expect(s.kubernetesResources.deployment.updatedReplicas).toBe(1);
  });

  it('reports a TCP scaled to zero as Sleeping with no replicas', () => {
    expect(sleepingStatus(tcp).kubernetesResources).toEqual({
      version: { version: 'v1.36.3', status: 'Sleeping' },
      deployment: {
        name: 'demo',
        namespace: 'acme',
        replicas: 0,
        readyReplicas: 0,
        availableReplicas: 0,
        updatedReplicas: 0,
        selector: 'kamaji.clastix.io/name=demo',
      },
    });
  });

  it('writes only when a wanted field differs (fields others wrote do not count)', () => {
    expect(contains({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 1 }, d: [1] })).toBe(true);
    expect(contains({ a: { b: 1 } }, { a: { b: 2 } })).toBe(false);
    expect(contains({}, { a: { b: 1 } })).toBe(false);
    expect(contains({ d: [1, 2] }, { d: [1] })).toBe(false);
  });
});
