// A minimal leader-elected process, used by the leader-election tests: prints one JSON line per
// transition (and "started" once its elector runs) and holds the lease until killed.
// Usage: leader-candidate.ts <kubeconfig> <ns> <lease> <identity> [leaseSeconds] [renewDeadlineSeconds]
import { KubeClient, LeaderElector, onShutdown } from '@kdc/shared';

const [kubeconfig, namespace, name, identity, leaseSeconds, renewDeadlineSeconds] = process.argv.slice(2);
if (!kubeconfig || !namespace || !name || !identity) {
  console.error(
    'usage: leader-candidate.ts <kubeconfig> <namespace> <lease> <identity> [leaseSeconds] [renewDeadlineSeconds]',
  );
  process.exit(2);
}
const lease = Number(leaseSeconds ?? 15);
// Real time even when a test skews this process's Date (skewed-clock.ts).
const now = () => Math.round(performance.timeOrigin + performance.now());
const elector = new LeaderElector(KubeClient.fromFile(kubeconfig), {
  namespace,
  name,
  identity,
  leaseDurationSeconds: lease,
  renewDeadlineSeconds: renewDeadlineSeconds ? Number(renewDeadlineSeconds) : Math.max(2, Math.floor((lease * 2) / 3)),
  retryPeriodSeconds: 1,
  onStartedLeading: () => console.log(JSON.stringify({ event: 'leading', identity, at: now() })),
  onStoppedLeading: () => console.log(JSON.stringify({ event: 'stopped', identity, at: now() })),
});
elector.start();
console.log(JSON.stringify({ event: 'started', identity, at: now() }));
onShutdown(() => elector.stop());
