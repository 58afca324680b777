import { describe, expect, it } from 'vitest';
import { gatherClusterFacts } from './facts.ts';

const cluster = (namespace: string, name: string, enabled: boolean, keyRef?: string, creationTimestamp = '2026-01-01T00:00:00Z') => ({
  metadata: { namespace, name, creationTimestamp },
  spec: { version: 'v1.35.0', encryption: { etcd: { enabled, ...(keyRef ? { keyRef } : {}) } } },
});

describe('gatherClusterFacts', () => {
  it('finds encrypted neighbours with their keys, and an older namesake of the same organisation', async () => {
    const self = cluster('acme-b', 'prod', true, undefined, '2026-02-01T00:00:00Z');
    const clusters = [self, cluster('acme-b', 'dev', true, 'shared'), cluster('acme-b', 'off', false), cluster('acme-a', 'prod', true), cluster('other', 'prod', true), cluster('acme-c', 'x', true)];
    const facts = await gatherClusterFacts({
      cluster: self, clusters, kmsKeys: [], tcp: null, platform: { ok: false, missing: [] },
      organizationOf: async (ns) => (ns.startsWith('acme-') ? 'acme' : undefined),
    });
    expect(facts.otherClusters).toEqual([{ name: 'dev', etcdKeyRef: 'shared' }]);
    expect(facts.nameTakenBy).toBe('acme-a');
    expect(facts.attached).toBe(false);
  });
});
