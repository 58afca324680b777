// The writes the encryption-reconciler makes for one KMSKey and one KdcCluster, issued directly
// (no informers, queue or planning): the baseline bench:reconcile and bench:shards measure the
// controllers against. Labels stand in for finalizers: the same merge patch, and deleting the
// baseline's objects stays instant.
import {
  KubeClient,
  OpenBaoClient,
  OPENBAO_K8S_AUTH_MOUNT,
  RESOURCES,
  renderPolicy,
  resolveKeyRefs,
  transitKeyName,
  updateStatusIfChanged,
  type KdcClusterSpec,
  type KubeObject,
  type OwnershipRegistry,
} from '@kdc/shared';
import { desiredAccess, runPreflight } from '@kdc/encryption-reconciler';
import type { PlatformState } from '../src/platform.ts';

export interface DirectDeps {
  kube: KubeClient;
  root: OpenBaoClient;
  owners: OwnershipRegistry;
}

/** The bench's own clients: the management apiserver as admin and OpenBao as root. */
export function benchClients(p: PlatformState) {
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  // A request that never ends would hang the whole run (one did): fail it instead.
  kube.requestTimeoutMs = 120_000;
  const root = new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    token: p.openbao.rootToken,
    timeoutMs: 30_000,
  });
  return { kube, root };
}

const DIRECT_LABEL = { metadata: { labels: { 'bench.kdc.io/direct': 'yes' } } };

const condition = (type: string, reason: string, message: string) => [
  { type, status: 'True', reason, message, lastTransitionTime: new Date().toISOString() },
];

/** The etcd KMSKey made Ready: its finalizer, ownership record, Transit key and status. Returns its key ID. */
export async function directKeyWrites(d: DirectDeps, key: KubeObject, cluster: string, spec: KdcClusterSpec) {
  const namespace = key.metadata!.namespace!;
  const keyName = key.metadata!.name!;
  const etcd = transitKeyName(namespace, resolveKeyRefs(cluster, spec).etcd);
  const keyRef = { ...RESOURCES.kmsKey, namespace, name: keyName };
  const finalized = await d.kube.patch(keyRef, DIRECT_LABEL);
  await d.owners.claim(etcd, {
    namespace,
    kmsKey: keyName,
    uid: key.metadata!.uid!,
    purpose: 'etcd',
    origin: 'created',
    claimedAt: new Date().toISOString(),
  });
  await d.root.transit().createKey(etcd, { type: 'aes256-gcm96', exportable: false, derived: false });
  const keyId = `${etcd}:v1`;
  await updateStatusIfChanged(d.kube, keyRef, finalized, {
    keyId,
    conditions: condition('Ready', 'KeyReady', `Transit key ${etcd} version 1`),
  });
  return keyId;
}

/** The cluster's OpenBao access: its finalizer, both policies and roles, the plugin pre-flight and its condition. */
export async function directAccessWrites(d: DirectDeps, cluster: KubeObject, spec: KdcClusterSpec) {
  const namespace = cluster.metadata!.namespace!;
  const name = cluster.metadata!.name!;
  const refs = resolveKeyRefs(name, spec);
  const clusterRef = { ...RESOURCES.kdcCluster, namespace, name };
  const withFinalizer = await d.kube.patch(clusterRef, DIRECT_LABEL);
  const access = desiredAccess(namespace, name, spec, {
    etcd: transitKeyName(namespace, refs.etcd),
    backup: transitKeyName(namespace, refs.backup),
  });
  for (const policy of access.policies) await d.root.writePolicy(policy.name, renderPolicy(policy.rules));
  for (const role of access.roles) await d.root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name, role.body);
  const preflight = await runPreflight({
    kube: d.kube,
    anonymous: d.root.withToken(undefined),
    namespace,
    cluster: name,
    access,
    fingerprint: 'direct',
  });
  if (!preflight.ok) throw new Error(`direct pre-flight of ${namespace}/${name}: ${preflight.message}`);
  await updateStatusIfChanged(d.kube, clusterRef, withFinalizer, {
    conditions: condition('KMSPreflight', preflight.reason, preflight.message),
  });
}
