import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiserverAddress, kubeconfigVia, startCandidate, type Candidate } from '../../src/leader-candidates.ts';
import { startStallProxy, type StallProxy } from '../../src/stall-proxy.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import { createNamespace, management, platform } from '../helpers.ts';

// Finding 12: two instances of a controller must never lead at once. Each candidate is a real
// LeaderElector process (e2e/src/leader-candidate.ts) on the management apiserver: lease 6 s,
// renew deadline 4 s, retry 1 s. "Leads" and "stopped" are the times this test read the lines.
const LEASE_SECONDS = 6;
const RENEW_DEADLINE_MS = 4_000;
const HOUR = 3_600_000;
// A standby sees the holder's last write within one retry (1-1.2 s) and acts one retry after
// the lease ran out: a lease plus two retries, and a second for a loaded machine.
const TAKEOVER_MS = (LEASE_SECONDS + 4) * 1000;

describe('attack 12: two leaders at once', () => {
  const candidates: Candidate[] = [];
  const proxies: StallProxy[] = [];
  afterAll(async () => {
    for (const c of candidates) c.child.kill('SIGKILL');
    for (const p of proxies) await p.close();
  });

  const start = (input: { kubeconfig?: string; namespace: string; identity: string; clockSkewMs?: number }) => {
    const candidate = startCandidate({ kubeconfig: platform().management.kubeconfig, lease: 'attack-12', leaseSeconds: LEASE_SECONDS, ...input });
    candidates.push(candidate);
    return candidate;
  };
  const leads = (c: Candidate, timeoutMs = 30_000) => waitFor(`${c.identity} to lead`, async () => c.first('leading'), { timeoutMs, intervalMs: 50 });
  const kill = (c: Candidate) => {
    c.child.kill('SIGKILL');
    return Date.now();
  };

  it.concurrent('a leader whose apiserver connection hangs stops leading before a standby can take over', async () => {
    const p = platform();
    const namespace = await createNamespace(management(), 'lease-hang');
    const proxy = await startStallProxy(apiserverAddress(p.management.kubeconfig));
    proxies.push(proxy);
    const hung = start({ namespace, identity: 'hung', kubeconfig: kubeconfigVia(p.management.kubeconfig, proxy.address, join(p.dir, `${namespace}.kubeconfig`)) });
    await leads(hung);
    const standby = start({ namespace, identity: 'standby' });
    await sleep(3_000);
    expect(standby.first('leading'), 'a standby took a lease its holder renews').toBeUndefined();

    proxy.stall();
    const stalledAt = Date.now();
    const takeover = await leads(standby);
    const stopped = hung.first('stopped');
    expect(stopped, `hung still leads ${takeover - stalledAt} ms after its apiserver went silent, while standby leads too`).toBeDefined();
    expect(stopped!).toBeLessThan(takeover);
    expect(stopped! - stalledAt).toBeLessThanOrEqual(RENEW_DEADLINE_MS + 1_500);
  });

  it.concurrent('a candidate whose clock runs an hour ahead does not take a lease its holder renews', async () => {
    const namespace = await createNamespace(management(), 'lease-fast');
    const holder = start({ namespace, identity: 'holder' });
    await leads(holder);
    const fast = start({ namespace, identity: 'fast', clockSkewMs: HOUR });
    // Longer than a lease: a candidate that measured the lease on its own observations would
    // take it now if the holder had stopped renewing.
    await sleep((LEASE_SECONDS + 3) * 1000);
    expect(fast.first('leading'), 'fast took over a live lease').toBeUndefined();
    expect(holder.first('stopped')).toBeUndefined();

    const killedAt = kill(holder);
    expect((await leads(fast)) - killedAt).toBeLessThanOrEqual(TAKEOVER_MS);
  });

  it.concurrent('a holder whose clock runs an hour behind keeps its lease while it renews', async () => {
    const namespace = await createNamespace(management(), 'lease-slow');
    const slow = start({ namespace, identity: 'slow', clockSkewMs: -HOUR });
    await leads(slow);
    const standby = start({ namespace, identity: 'standby' });
    await sleep((LEASE_SECONDS + 3) * 1000);
    expect(standby.first('leading'), 'standby took over a live lease written by a slow clock').toBeUndefined();
    expect(slow.first('stopped')).toBeUndefined();

    const killedAt = kill(slow);
    expect((await leads(standby)) - killedAt).toBeLessThanOrEqual(TAKEOVER_MS);
  });

  it.concurrent('a dead holder whose clock ran an hour ahead blocks the lease for one lease duration, not an hour', async () => {
    const namespace = await createNamespace(management(), 'lease-ahead');
    const ahead = start({ namespace, identity: 'ahead', clockSkewMs: HOUR });
    await leads(ahead);
    const standby = start({ namespace, identity: 'standby' });
    await sleep(2_000);
    expect(standby.first('leading')).toBeUndefined();

    const killedAt = kill(ahead);
    expect((await leads(standby, TAKEOVER_MS + 10_000)) - killedAt).toBeLessThanOrEqual(TAKEOVER_MS);
  });
});
