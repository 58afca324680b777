// What the runner's workload halves (Jobs, StatefulSets) get from the runner, and how they watch.
import { Informer, isNotFound, type KubeClient, type KubeObject, type ResourceRef, at, RESOURCES } from '@kdc/shared';
import type { PodObject, PodRuntime } from './kamaji-pod.ts';

export interface WorkloadRunnerDeps {
  kube: KubeClient;
  namespaces: (string | undefined)[];
  nodeName: string;
  /** What kube-controller-manager would have made in the namespace (default ServiceAccount, kube-root-ca.crt). */
  prepareNamespace(namespace: string, serviceAccount: string | undefined): Promise<void>;
  /** A PodRuntime for this admitted Pod object (not started). */
  runtime(pod: PodObject, logPrefix: string, onChange: () => void): PodRuntime;
  log(message: string, fields?: Record<string, unknown>): void;
}

/** One started informer per watched namespace (undefined: all), synced before it returns. */
export async function watchAll<T extends KubeObject>(
  kube: KubeClient,
  ref: (namespace?: string) => ResourceRef,
  namespaces: (string | undefined)[],
  onEvent: (object: T) => void,
): Promise<Informer<T>[]> {
  const informers = namespaces.map((ns) => {
    const informer = new Informer<T>(kube, ref(ns));
    informer.on((_event, object) => onEvent(object));
    informer.start();
    return informer;
  });
  await Promise.all(informers.map((i) => i.waitForSync()));
  return informers;
}

/** The object `<namespace>/<name>` from whichever informer has it (one per watched namespace). */
export function findIn<T extends KubeObject>(informers: readonly Informer<T>[], key: string): T | undefined {
  const [namespace, name] = key.split('/') as [string, string];
  for (const informer of informers) {
    const found = informer.get(name, namespace);
    if (found) return found;
  }
  return undefined;
}

/**
 * Runs an admitted Pod object to its end as a kubelet would, writing its status on every change
 * and its final phase last: Succeeded or Failed, or Failed when `giveUp` says so first (a Job's
 * deadline, the runner stopping). `entry.runtime` is the running pod meanwhile.
 */
export async function runPodToEnd(
  deps: WorkloadRunnerDeps,
  pod: PodObject,
  entry: { runtime?: PodRuntime },
  giveUp: () => boolean,
): Promise<'Succeeded' | 'Failed'> {
  const ref = { ...at(RESOURCES.pod, pod.metadata.namespace, pod.metadata.name), subresource: 'status' };
  let flush: Promise<void> = Promise.resolve();
  let pending = false;
  const runtime = deps.runtime(pod, `${pod.metadata.namespace}_${pod.metadata.name}`, () => {
    if (pending) return;
    pending = true;
    flush = flush.then(async () => {
      pending = false;
      await deps.kube.patch(ref, { status: runtime.status() }, 'merge').catch((error: unknown) => {
        if (!isNotFound(error)) deps.log('pod status update failed', { pod: pod.metadata.name, error: String(error) });
      });
    });
  });
  entry.runtime = runtime;
  runtime.start();
  while (!giveUp() && !runtime.closed && runtime.phase !== 'Succeeded' && runtime.phase !== 'Failed')
    await new Promise((r) => setTimeout(r, 100));
  const phase = runtime.phase === 'Succeeded' ? 'Succeeded' : 'Failed';
  await runtime.stop(2000);
  entry.runtime = undefined;
  await flush;
  await deps.kube.patch(ref, { status: { ...runtime.status(), phase } }, 'merge').catch(() => undefined);
  return phase;
}
