// What the runner's workload halves (Jobs, StatefulSets) get from the runner, and how they watch.
import { Informer, type KubeClient, type KubeObject, type ResourceRef } from '@kdc/shared';
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
export async function watchAll<T extends KubeObject>(kube: KubeClient, ref: (namespace?: string) => ResourceRef, namespaces: (string | undefined)[], onEvent: (object: T) => void): Promise<Informer<T>[]> {
  const informers = namespaces.map((ns) => {
    const informer = new Informer<T>(kube, ref(ns));
    informer.on((_event, object) => onEvent(object));
    informer.start();
    return informer;
  });
  await Promise.all(informers.map((i) => i.waitForSync()));
  return informers;
}
