import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeClient } from '@kdc/shared';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management, platform } from './helpers.ts';

const CANDIDATE = fileURLToPath(new URL('../src/leader-candidate.ts', import.meta.url));

interface Candidate {
  child: ChildProcess;
  events: { event: string; identity: string; at: number }[];
}

function startCandidate(kubeconfig: string, ns: string, identity: string, leaseSeconds: number): Candidate {
  const child = spawn(process.execPath, ['--conditions=source', CANDIDATE, kubeconfig, ns, 'kdc-test-lease', identity, String(leaseSeconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const candidate: Candidate = { child, events: [] };
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) candidate.events.push(JSON.parse(line));
  });
  return candidate;
}

describe('leader election on a Lease', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it('exactly one of two instances leads; when the leader is killed the other takes over within the lease time', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'lease');
    const leaseSeconds = 6;
    const a = startCandidate(platform().management.kubeconfig, ns, 'instance-a', leaseSeconds);
    children.push(a.child);
    await waitFor('instance-a to lead', async () => a.events.some((e) => e.event === 'leading'), { timeoutMs: 30_000 });
    const b = startCandidate(platform().management.kubeconfig, ns, 'instance-b', leaseSeconds);
    children.push(b.child);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(b.events).toEqual([]);

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('instance-b to take over', async () => b.events.some((e) => e.event === 'leading'), { timeoutMs: 30_000 });
    const takeoverMs = b.events.find((e) => e.event === 'leading')!.at - killedAt;
    // The lease was last renewed at most one retry period (1 s) before the kill.
    expect(takeoverMs).toBeLessThanOrEqual((leaseSeconds + 2) * 1000);
    const lease = await new KubeClient(kube.config).get<{ spec: { holderIdentity: string; leaseTransitions: number } } & Record<string, unknown>>({
      group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: ns, name: 'kdc-test-lease',
    });
    expect(lease.spec.holderIdentity).toBe('instance-b');
    expect(lease.spec.leaseTransitions).toBe(1);
  });

  it('a leader that shuts down gracefully hands the lease over at once', async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'lease');
    const a = startCandidate(platform().management.kubeconfig, ns, 'graceful-a', 15);
    children.push(a.child);
    await waitFor('graceful-a to lead', async () => a.events.some((e) => e.event === 'leading'), { timeoutMs: 30_000 });
    const b = startCandidate(platform().management.kubeconfig, ns, 'graceful-b', 15);
    children.push(b.child);
    await new Promise((r) => setTimeout(r, 1_500));
    a.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    await waitFor('graceful-b to take over', async () => b.events.some((e) => e.event === 'leading'), { timeoutMs: 30_000 });
    // Without the release graceful-b would wait out the 15 s lease (renewed < 1 s before the
    // signal); released, it is free at graceful-b's next 1 s retry. The margin absorbs a loaded CI.
    expect(b.events.find((e) => e.event === 'leading')!.at - stoppedAt).toBeLessThan(10_000);
  });
});
