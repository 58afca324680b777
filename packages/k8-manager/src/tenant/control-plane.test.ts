import { describe, expect, it, vi } from 'vitest';
import type { Cache, TenantControlPlaneObject } from '@kdc/shared';
import { controlPlaneOf } from './control-plane.ts';
import type { TcpPlacement } from './datastore.ts';

const tcp = { metadata: { name: 'c1-cp', namespace: 'ns' } } as TenantControlPlaneObject; // only its identity is read
const cache = <T extends TcpPlacement>(items: T[]): Cache<T> => ({
  get: (name, namespace) => items.find((t) => t.metadata.name === name && t.metadata.namespace === namespace),
  list: () => items,
});

describe('controlPlaneOf', () => {
  it('reads the cache, and reads directly only a TCP the placements know but the shard cache does not', async () => {
    const fromServer = { ...tcp, metadata: { ...tcp.metadata, resourceVersion: '9' } };
    const getOrNull = vi.fn(async () => fromServer);
    const kube = { getOrNull } as unknown as Parameters<typeof controlPlaneOf>[0]['kube'];
    const placement: TcpPlacement = { metadata: { name: 'c1-cp', namespace: 'ns' } };

    expect(await controlPlaneOf({ kube, tcps: cache([tcp]), placements: cache([placement]) }, 'c1-cp', 'ns')).toBe(tcp);
    expect(await controlPlaneOf({ kube, tcps: cache([]), placements: cache([]) }, 'c1-cp', 'ns')).toBeNull();
    expect(await controlPlaneOf({ kube, tcps: cache([]) }, 'c1-cp', 'ns')).toBeNull();
    expect(getOrNull).not.toHaveBeenCalled();

    expect(await controlPlaneOf({ kube, tcps: cache([]), placements: cache([placement]) }, 'c1-cp', 'ns')).toBe(
      fromServer,
    );
    expect(getOrNull).toHaveBeenCalledTimes(1);
    expect(getOrNull).toHaveBeenCalledWith(
      expect.objectContaining({ plural: 'tenantcontrolplanes', namespace: 'ns', name: 'c1-cp' }),
    );
  });
});
