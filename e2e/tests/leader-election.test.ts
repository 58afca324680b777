import { afterAll, describe, expect, it } from 'vitest';
import { KubeClient, RESOURCES } from '@kdc/shared';
import { startCandidate, type Candidate } from '../src/leader-candidates.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { createNamespace, management, platform } from './helpers.ts';

describe('leader election on a Lease', () => {
  const candidates: Candidate[] = [];
  afterAll(() => candidates.forEach((c) => c.child.kill('SIGKILL')));
  const start = (namespace: string, identity: string, leaseSeconds: number) => {
    const candidate = startCandidate({
      kubeconfig: platform().management.kubeconfig,
      namespace,
      lease: 'kdc-test-lease',
      identity,
      leaseSeconds,
    });
    candidates.push(candidate);
    return candidate;
  };
  const leads = (c: Candidate) =>
    waitFor(`${c.identity} to lead`, async () => c.first('leading'), { timeoutMs: 30_000, intervalMs: 50 });

  it('exactly one of two instances leads; when the leader is killed the other takes over within the lease time', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'lease');
    const leaseSeconds = 6;
    const a = start(ns, 'instance-a', leaseSeconds);
    await leads(a);
    const b = start(ns, 'instance-b', leaseSeconds);
    await waitFor('instance-b to run', async () => b.first('started'), { timeoutMs: 30_000, intervalMs: 50 });
    await sleep(3_000);
    expect(b.first('leading')).toBeUndefined();
    expect(a.first('stopped'), 'a healthy leader stopped leading').toBeUndefined();

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    const takeoverMs = (await leads(b)) - killedAt;
    // instance-b counts the lease from when it saw instance-a's last renewal (at most one 1-1.2 s
    // retry after it), and notices the expiry at its next retry.
    expect(takeoverMs).toBeLessThanOrEqual((leaseSeconds + 4) * 1000);
    const lease = await new KubeClient(kube.config).get<
      { spec: { holderIdentity: string; leaseTransitions: number } } & Record<string, unknown>
    >({ ...RESOURCES.lease, namespace: ns, name: 'kdc-test-lease' });
    expect(lease.spec.holderIdentity).toBe('instance-b');
    expect(lease.spec.leaseTransitions).toBe(1);
  });

  it('a leader that shuts down gracefully hands the lease over at once', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'lease');
    const a = start(ns, 'graceful-a', 15);
    await leads(a);
    const b = start(ns, 'graceful-b', 15);
    // graceful-b must be running (a loaded CI takes seconds to start a process) and have seen the lease.
    await waitFor('graceful-b to run', async () => b.first('started'), { timeoutMs: 30_000, intervalMs: 50 });
    await sleep(1_500);
    a.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    // Without the release graceful-b would wait out the 15 s lease; released, it is free at
    // graceful-b's next 1-1.2 s retry. The margin absorbs a loaded CI.
    expect((await leads(b)) - stoppedAt).toBeLessThan(10_000);
  });
});
