import {
  FINALIZERS, KAMAJI_GROUP, KDC_CLUSTER_CONDITIONS, KDC_GROUP, OPENBAO_K8S_AUTH_MOUNT, clusterNames, findCondition, kmsKeyTransitName, resolveKeyRefs, gatherClusterFacts, isOpenBaoError,
  kdcClusterSpecSchema, organizationLookup, policiesEquivalent, renderPolicy, setConditions, splitKey, updateStatusIfChanged, validateCluster,
  type PlatformConfigResult, type TenantControlPlane,
  type EventRecorder, type Informer, type KdcCluster, type KubeClient, type KubeObject, type Logger, type OpenBaoClient, type ReconcileResult,
} from '@kdc/shared';
import { Counter, type Registry } from 'prom-client';
import { desiredAccess, roleMatches } from './access.ts';
import { removeClusterAccess } from './remove.ts';
import { accessFingerprint, runPreflight } from './preflight.ts';
import { credentialFailureReporter } from '../openbao-failure.ts';

/** Refusals that depend on clusters outside a k8-manager shard (it may not see them itself). */
const CROSS_SHARD_REASONS = new Set(['ClusterNameConflict']);

export const KDCCLUSTER_REF = { group: KDC_GROUP, version: 'v1alpha1', plural: 'kdcclusters' };
const TCP_REF = { group: KAMAJI_GROUP, version: 'v1alpha1', plural: 'tenantcontrolplanes' };

export function clusterAccessMetrics(registry: Registry) {
  return {
    writes: new Counter({ name: 'kdc_openbao_access_writes_total', help: 'Policy and role writes by kind (create, drift, delete)', labelNames: ['object', 'kind'], registers: [registry] }),
    preflights: new Counter({ name: 'kdc_kms_preflight_total', help: 'KMS pre-flight runs by result', labelNames: ['result'], registers: [registry] }),
  };
}

export interface ClusterAccessDeps {
  kube: KubeClient;
  openbao: OpenBaoClient;
  clusters: Informer<KubeObject>;
  keys: Informer<KubeObject>;
  /** Platform prerequisites (SPEC 7), as k8-manager sees them: the same env and master-config. */
  platformConfig: () => Promise<PlatformConfigResult>;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof clusterAccessMetrics>;
  now?: () => Date;
}

type Cluster = KubeObject & Pick<KdcCluster, 'spec' | 'status'>;

/**
 * KdcClusterEncryptionReconciler: the OpenBao policy and Kubernetes-auth role of every encrypted
 * cluster (and its backup writer), re-asserted on every reconcile but written only when they
 * differ; a pre-flight with the plugin's real credentials; removal when encryption goes away.
 */
export function clusterAccessReconciler(deps: ClusterAccessDeps) {
  const now = deps.now ?? (() => new Date());
  const organizationOf = organizationLookup(deps.kube);

  async function removeAccess(bao: OpenBaoClient, namespace: string, cluster: string): Promise<void> {
    const count = (object: 'role' | 'policy') => deps.metrics.writes.inc({ object, kind: 'delete' });
    await removeClusterAccess(bao, namespace, cluster, count);
  }

  // A refused controller token (or a policy without the capability) is the operator's to fix:
  // the cluster says so in KMSPreflight; an outage only backs off.
  const reportCredentials = credentialFailureReporter({ kube: deps.kube, objects: deps.clusters, ref: KDCCLUSTER_REF, type: KDC_CLUSTER_CONDITIONS.kmsPreflight, now });
  return async function reconcile(key: string): Promise<ReconcileResult> {
    try {
      return await reconcileAccess(key);
    } catch (error) {
      await reportCredentials(key, error);
      throw error;
    }
  };

  async function reconcileAccess(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = deps.clusters.get(name, namespace) as Cluster | undefined;
    if (!object || !namespace) return {};
    const ref = { ...KDCCLUSTER_REF, namespace, name };
    const finalizers = object.metadata?.finalizers ?? [];
    const hasFinalizer = finalizers.includes(FINALIZERS.openBaoAccess);
    // The same validation k8-manager runs: an invalid spec (k8-manager reports it) changes
    // nothing here either, neither a write nor a removal that would strand an encrypted tenant.
    const tcp = object.metadata?.deletionTimestamp ? null : await deps.kube.getOrNull<TenantControlPlane & KubeObject>({ ...TCP_REF, namespace, name: clusterNames(name).tenantControlPlane });
    const validation = object.metadata?.deletionTimestamp ? null : validateCluster(await gatherClusterFacts({
      cluster: object, clusters: deps.clusters.list(), kmsKeys: deps.keys.list(namespace), tcp, platform: await deps.platformConfig(), organizationOf,
    }));
    if (validation && !validation.ok) {
      // A sharded k8-manager sees only its shard and cannot find a namesake elsewhere: say why
      // the pre-flight does not run, where k8-manager shows it (EncryptionAvailable).
      const conflict = validation.errors.find((e) => CROSS_SHARD_REASONS.has(e.reason));
      if (conflict) {
        const conditions = setConditions(object.status?.conditions, [{ type: KDC_CLUSTER_CONDITIONS.kmsPreflight, status: 'False', reason: conflict.reason, message: conflict.message, observedGeneration: object.metadata?.generation }], now());
        await updateStatusIfChanged(deps.kube, ref, object, { ...object.status, conditions });
      }
      return {};
    }
    const parsed = kdcClusterSpecSchema.safeParse(object.spec);
    if (!parsed.success) return {};
    const spec = parsed.data;
    const bao = deps.openbao.withNamespace(await organizationOf(namespace));
    const wanted = Boolean(spec.encryption?.etcd.enabled) && !object.metadata?.deletionTimestamp;

    if (!wanted) {
      if (!hasFinalizer) return {};
      await removeAccess(bao, namespace, name);
      await deps.kube.patch(ref, { metadata: { finalizers: finalizers.filter((f) => f !== FINALIZERS.openBaoAccess), resourceVersion: object.metadata?.resourceVersion } });
      await deps.recorder.record(object, 'Normal', 'OpenBaoAccessRemoved', `OpenBao policy and role for ${name} removed (the Transit key is kept)`);
      return {};
    }
    if (!hasFinalizer) {
      await deps.kube.patch(ref, { metadata: { finalizers: [...finalizers, FINALIZERS.openBaoAccess], resourceVersion: object.metadata?.resourceVersion } });
      return {}; // the watch event of this patch brings us back with a fresh copy
    }

    const keyRefs = resolveKeyRefs(name, spec);
    const transitOf = (ref: string) => kmsKeyTransitName(namespace, ref, (deps.keys.get(ref, namespace)?.status as { keyId?: string } | undefined)?.keyId);
    const access = desiredAccess(namespace, name, spec, { etcd: transitOf(keyRefs.etcd), backup: transitOf(keyRefs.backup) });
    const repaired: string[] = [];
    for (const policy of access.policies) {
      const current = await bao.readPolicy(policy.name);
      const text = renderPolicy(policy.rules);
      if (current !== null && policiesEquivalent(current, text)) continue;
      await bao.writePolicy(policy.name, text);
      deps.metrics.writes.inc({ object: 'policy', kind: current === null ? 'create' : 'drift' });
      if (current !== null) repaired.push(`policy ${policy.name}`);
    }
    for (const role of access.roles) {
      const current = await bao.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name);
      if (roleMatches(current, role.body)) continue;
      await bao.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name, role.body);
      deps.metrics.writes.inc({ object: 'role', kind: current === null ? 'create' : 'drift' });
      if (current !== null) repaired.push(`role ${role.name}`);
    }
    if (repaired.length) {
      deps.logger.warn({ cluster: key, repaired }, 'repaired OpenBao drift');
      await deps.recorder.record(object, 'Warning', 'OpenBaoDriftRepaired', `restored ${repaired.join(', ')} to the desired content`);
    }

    // The pre-flight runs when what it proved may have changed, never at steady state.
    const fingerprint = accessFingerprint(namespace, name, access);
    const previous = findCondition(object.status?.conditions, KDC_CLUSTER_CONDITIONS.kmsPreflight);
    const proven = previous?.status === 'True' && previous.message.includes(`(access ${fingerprint})`) && repaired.length === 0;
    if (proven) {
      // Same access, newer spec: what was proven still holds; say it holds for this generation.
      if (previous.observedGeneration === object.metadata?.generation) return {};
      const conditions = setConditions(object.status?.conditions, [{ ...previous, observedGeneration: object.metadata?.generation }], now());
      await updateStatusIfChanged(deps.kube, ref, object, { ...object.status, conditions });
      return {};
    }
    let result;
    try {
      result = await runPreflight({ kube: deps.kube, anonymous: bao.withToken(undefined), namespace, cluster: name, access, fingerprint });
    } catch (error) {
      if (!isOpenBaoError(error)) throw error;
      result = { ok: false, reason: 'OpenBaoUnavailable', message: `pre-flight could not reach OpenBao: ${error.kind}` };
    }
    deps.metrics.preflights.inc({ result: result.ok ? 'ok' : 'failed' });
    const status = {
      ...object.status,
      conditions: setConditions(object.status?.conditions, [{ type: KDC_CLUSTER_CONDITIONS.kmsPreflight, status: result.ok ? 'True' : 'False', reason: result.reason, message: result.message, observedGeneration: object.metadata?.generation }], now()),
    };
    await updateStatusIfChanged(deps.kube, ref, object, status);
    if (!result.ok && previous?.reason !== result.reason) await deps.recorder.record(object, 'Warning', 'KMSPreflightFailed', result.message);
    // Until it succeeds, look again (the ServiceAccount may appear, the key may be created).
    return result.ok ? {} : { requeueAfterMs: 10_000 };
  };
}
