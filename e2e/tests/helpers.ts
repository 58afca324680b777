import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { KubeClient, OpenBaoClient, requestServiceAccountToken, at, RESOURCES } from '@kdc/shared';
import { startEncryptionReconciler, type ReconcilerProcess } from '../src/encryption-reconciler.ts';
import { startK8Manager, type K8ManagerProcess } from '../src/k8-manager.ts';
import { s3Client } from '../src/s3.ts';

export const platform = () => inject('platform');

export const management = () => KubeClient.fromFile(platform().management.kubeconfig);

export const openBaoRoot = () => {
  const { url, caPem, rootToken } = platform().openbao;
  return new OpenBaoClient({ endpoint: url, caBundle: caPem, token: rootToken, timeoutMs: 10_000 });
};

export const openBaoAnonymous = () => {
  const { url, caPem } = platform().openbao;
  return new OpenBaoClient({ endpoint: url, caBundle: caPem, timeoutMs: 10_000 });
};

export const s3 = () => s3Client(platform().s3);

export const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

export async function createNamespace(
  kube: KubeClient,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = unique(prefix);
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  return name;
}

/** A ServiceAccount token from the TokenRequest API, as kubelet would project it. */
export const serviceAccountToken = (
  kube: KubeClient,
  namespace: string,
  serviceAccount: string,
  audiences: string[],
  expirationSeconds = 600,
) => requestServiceAccountToken(kube, namespace, serviceAccount, audiences, expirationSeconds);

/** The one lease namespace every encryption-reconciler in a test run shares, so only one leads. */
export async function controllerNamespace(kube: KubeClient): Promise<string> {
  const name = 'kube-dc-system';
  await kube.apply(
    at(RESOURCES.namespace, undefined, name),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    'kdc-e2e',
  );
  return name;
}

/** A KdcCluster (or the collection) on the management apiserver. */
export const kdc = (ns: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace: ns, name });

/** A Kamaji DataStore (cluster-scoped). */
export const DATASTORE = (name?: string) => ({ ...RESOURCES.dataStore, name });

export interface TestCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/** The condition `type` of an object's status, if any. */
export const condition = (object: { status?: { conditions?: TestCondition[] } } | null | undefined, type: string) =>
  object?.status?.conditions?.find((x) => x.type === type);

/**
 * The controllers a k8-manager test needs: an encryption-reconciler on the shared Lease, and a
 * k8-manager sharded to the KdcClusters labelled `kdc-e2e/k8m=<id>` (started in that order).
 */
export async function shardControllers(
  id: string,
  k8ManagerEnv: Record<string, string> = {},
): Promise<[ReconcilerProcess, K8ManagerProcess]> {
  const lease = await controllerNamespace(management());
  const reconciler = await startEncryptionReconciler(platform(), { name: unique(`er-${id}`), leaseNamespace: lease });
  const manager = await startK8Manager(platform(), {
    name: `k8m-${id}`,
    leaseNamespace: lease,
    selector: `kdc-e2e/k8m=${id}`,
    env: k8ManagerEnv,
  });
  return [reconciler, manager];
}
