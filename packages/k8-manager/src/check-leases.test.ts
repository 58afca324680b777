import { describe, expect, it } from 'vitest';
import type { KubeObject } from '@kdc/shared';
import { checkLease, parseCheckLeases } from './check-leases.ts';

const lease = (rv: string, holder?: string) =>
  ({
    metadata: { name: 'k8-manager', resourceVersion: rv },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15 },
  }) as KubeObject;
const fake = (reads: (KubeObject | null)[]) => {
  let slept = 0;
  const kube = { getOrNull: async <T>() => (reads.length > 1 ? reads.shift() : reads[0]) as T | null };
  return { kube, sleep: async (ms: number) => void (slept += ms), slept: () => slept };
};

describe('check-leases', () => {
  it('passes once the held Lease changes between reads (a renewal), whatever its timestamps say', async () => {
    const f = fake([lease('1', 'k8-manager-abc'), lease('1', 'k8-manager-abc'), lease('2', 'k8-manager-abc')]);
    expect(await checkLease(f.kube, 'ns', 'k8-manager', f.sleep)).toEqual({
      lease: 'k8-manager',
      ok: true,
      message: 'k8-manager: held by k8-manager-abc and renewed',
    });
    expect(f.slept()).toBe(2000);
  });

  it('fails naming a holder that stopped renewing, after the lease duration and a margin', async () => {
    const f = fake([lease('1', 'k8-manager-abc')]);
    const verdict = await checkLease(f.kube, 'ns', 'k8-manager', f.sleep);
    expect(verdict).toMatchObject({
      ok: false,
      message:
        'k8-manager: held by k8-manager-abc but not renewed for 20 s: that replica is stuck or gone, and no other took over',
    });
    expect(f.slept()).toBeGreaterThanOrEqual(20_000);
  });

  it('fails on a Lease nobody holds, even when it changes, and on a missing Lease', async () => {
    const released = fake([lease('1'), lease('2'), lease('3')]);
    expect((await checkLease(released.kube, 'ns', 'k8-manager', released.sleep)).message).toContain(
      'no replica holds the Lease',
    );
    const missing = fake([null]);
    expect((await checkLease(missing.kube, 'ns', 'k8-manager', missing.sleep)).message).toContain(
      'no Lease ns/k8-manager',
    );
  });

  it.each([
    [
      ['--lease=k8-manager', '--lease=encryption-reconciler'],
      { POD_NAMESPACE: 'kube-dc-system' },
      { ok: true, namespace: 'kube-dc-system', leases: ['k8-manager', 'encryption-reconciler'] },
    ],
    [['--lease=a', '--namespace=x'], {}, { ok: true, namespace: 'x', leases: ['a'] }],
    [[], { POD_NAMESPACE: 'x' }, { ok: false, error: 'check-leases: name at least one --lease' }],
    [
      ['--lease=a'],
      {},
      { ok: false, error: 'check-leases: --namespace is required outside a pod (POD_NAMESPACE is not set)' },
    ],
  ])('parses %j', (argv, env, expected) => {
    expect(parseCheckLeases(argv, env)).toEqual(expected);
  });
});
