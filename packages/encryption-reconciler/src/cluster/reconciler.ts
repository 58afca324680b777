import {
  FINALIZERS,
  KDC_CLUSTER_CONDITIONS,
  grantedTransitKeys,
  preflightKey,
  dataStoreLookup,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  findCondition,
  resolveKeyRefs,
  gatherClusterFacts,
  isAlreadyExists,
  isOpenBaoError,
  parseKdcClusterSpec,
  organizationLookup,
  policiesEquivalent,
  renderPolicy,
  setConditions,
  splitKey,
  updateStatusIfChanged,
  validateCluster,
  type PlatformConfigResult,
  type TcpAttachment,
  type TenantControlPlaneObject,
  at,
  type EventRecorder,
  type Informer,
  type KdcCluster,
  type KubeClient,
  type KubeObject,
  type Logger,
  type OpenBaoClient,
  type ReconcileResult,
  RESOURCES,
  type KdcClusterObject,
  type KmsKeyObject,
  DriftClock,
} from '@kdc/shared';
import { Counter, type Registry } from 'prom-client';
import { desiredAccess, roleMatches } from './access.ts';
import { removeClusterAccess } from './remove.ts';
import { accessFingerprint, runPreflight } from './preflight.ts';
import { transitKeyLookup, type TransitKeyLookup } from './transit-keys.ts';
import { openBaoCredentialsGuard } from '../openbao-failure.ts';
import { buildCleanupTask, cleanupTaskName, CONFIGMAPS } from '../cleanup/tasks.ts';

export function clusterAccessMetrics(registry: Registry) {
  return {
    writes: new Counter({
      name: 'kdc_openbao_access_writes_total',
      help: 'Policy and role writes by kind (create, drift, delete)',
      labelNames: ['object', 'kind'],
      registers: [registry],
    }),
    preflights: new Counter({
      name: 'kdc_kms_preflight_total',
      help: 'KMS pre-flight runs by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    tcpReads: new Counter({
      name: 'kdc_encryption_reconciler_tcp_reads_total',
      help: 'TenantControlPlane reads of the cluster rules, by source (cache: the slim TCP informer; apiserver: not in it, or confirmed before removing access)',
      labelNames: ['source'],
      registers: [registry],
    }),
  };
}

export interface ClusterAccessDeps {
  kube: KubeClient;
  openbao: OpenBaoClient;
  clusters: Informer<KdcClusterObject>;
  keys: Informer<KmsKeyObject>;
  /** Cleanup tasks (ConfigMaps) in the controllers' namespace. */
  tasks: Informer<KubeObject>;
  /** Namespaces, for their organisation label (absent: read through a short cache). */
  namespaces?: Informer<KubeObject>;
  /** TCPs as tcpAttachmentView keeps them (absent, or a TCP not in it: read from the apiserver). */
  tcps?: Pick<Informer<TcpAttachment & KubeObject>, 'get'>;
  controllerNamespace: string;
  /** The Transit key a KMSKey owns (default: the ownership registry through `openbao`). */
  transitKeyOf?: TransitKeyLookup;
  /** Platform prerequisites (SPEC 7), as k8-manager sees them: the same env and master-config. */
  platformConfig: () => Promise<PlatformConfigResult>;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof clusterAccessMetrics>;
  /** When the policies and roles are read back while nothing changed (default: on every reconcile). */
  driftClock?: DriftClock;
  /** Counts reconciles that read the policies and roles back (checked) or trusted the last read (skipped). */
  countDriftCheck?: (result: 'checked' | 'skipped') => void;
  now?: () => Date;
}

type Cluster = KubeObject & Pick<KdcCluster, 'spec' | 'status'>;

/** How long a cluster waiting for its KMSKey waits for the watch before it looks anyway. */
export const WAITING_FOR_KEY_SAFETY_NET_MS = 120_000;

/** Keys of the clusters in a KMSKey's namespace that use it (its ownership decides their policies). */
export function clustersUsingKey(clusters: Informer<KdcClusterObject>, key: KubeObject): string[] {
  const namespace = key.metadata?.namespace;
  return clusters
    .list(namespace)
    .filter((c) => {
      if (c.metadata?.namespace !== namespace) return false;
      const spec = parseKdcClusterSpec(c.spec);
      if (!spec.success || !spec.data.encryption?.etcd.enabled) return false;
      const refs = resolveKeyRefs(c.metadata.name, spec.data);
      return refs.etcd === key.metadata?.name || refs.backup === key.metadata?.name;
    })
    .map((c) => `${namespace}/${c.metadata.name}`);
}

/**
 * KdcClusterEncryptionReconciler: the OpenBao policy and Kubernetes-auth role of every encrypted
 * cluster (and its backup writer), re-asserted on every reconcile but written only when they
 * differ; a pre-flight with the plugin's real credentials; removal when encryption goes away.
 */
export function clusterAccessReconciler(deps: ClusterAccessDeps) {
  const now = deps.now ?? (() => new Date());
  const organizationOf = organizationLookup(deps.kube, { namespaces: deps.namespaces });
  const dataStoreOf = dataStoreLookup(deps.kube);
  const transitKeyOf = deps.transitKeyOf ?? transitKeyLookup(deps.openbao);
  const driftClock = deps.driftClock ?? new DriftClock(0);

  async function removeAccess(bao: OpenBaoClient, namespace: string, cluster: string): Promise<void> {
    const count = (object: 'role' | 'policy') => deps.metrics.writes.inc({ object, kind: 'delete' });
    await removeClusterAccess(bao, namespace, cluster, count);
  }

  /**
   * A deleted cluster's access is removed by the cleanup controller, from a task recorded here:
   * the finalizer goes as soon as the task exists, whether OpenBao answers or not.
   */
  async function releaseDeleted(object: Cluster, finalizers: string[]): Promise<ReconcileResult> {
    const { namespace, name, uid } = object.metadata as { namespace: string; name: string; uid: string };
    if (!deps.tasks.get(cleanupTaskName('removeClusterAccess', uid), deps.controllerNamespace)) {
      const task = buildCleanupTask({
        kind: 'removeClusterAccess',
        organization: await organizationOf(namespace),
        namespace,
        cluster: name,
        uid,
      });
      try {
        await deps.kube.create(CONFIGMAPS(deps.controllerNamespace), task);
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }
    await deps.kube.patch(
      { ...RESOURCES.kdcCluster, namespace, name },
      {
        metadata: {
          finalizers: finalizers.filter((f) => f !== FINALIZERS.openBaoAccess),
          resourceVersion: object.metadata?.resourceVersion,
        },
      },
    );
    await deps.recorder.record(
      object,
      'Normal',
      'OpenBaoAccessRemovalRecorded',
      `OpenBao policy and role for ${name} will be removed by the cleanup controller (the Transit key is kept)`,
    );
    return {};
  }

  // A refused controller token (or a policy without the capability) is the operator's to fix:
  // the cluster says so in KMSPreflight; an outage only backs off.
  const guardCredentials = openBaoCredentialsGuard({
    kube: deps.kube,
    openbao: deps.openbao,
    objects: deps.clusters,
    ref: RESOURCES.kdcCluster,
    type: KDC_CLUSTER_CONDITIONS.kmsPreflight,
    now,
  });
  return async function reconcile(key: string): Promise<ReconcileResult> {
    return guardCredentials(key, () => reconcileAccess(key));
  };

  async function reconcileAccess(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = deps.clusters.get(name, namespace) as Cluster | undefined;
    if (!object || !namespace || object.metadata?.deletionTimestamp) driftClock.forget(key);
    if (!object || !namespace) return {};
    const ref = { ...RESOURCES.kdcCluster, namespace, name };
    const finalizers = object.metadata?.finalizers ?? [];
    const hasFinalizer = finalizers.includes(FINALIZERS.openBaoAccess);
    if (object.metadata?.deletionTimestamp) return hasFinalizer ? releaseDeleted(object, finalizers) : {};
    // The same validation k8-manager runs: an invalid spec (k8-manager reports it) changes
    // nothing here either, neither a write nor a removal that would strand an encrypted tenant.
    const tcpName = clusterNames(name).tenantControlPlane;
    const liveTcp = () => {
      deps.metrics.tcpReads.inc({ source: 'apiserver' });
      return deps.kube.getOrNull<TenantControlPlaneObject>(at(RESOURCES.tenantControlPlane, namespace, tcpName));
    };
    const validate = async (tcp: TcpAttachment | null) =>
      validateCluster(
        await gatherClusterFacts({
          cluster: object,
          clusters: deps.clusters.list(namespace),
          kmsKey: (key) => deps.keys.get(key, namespace),
          tcp,
          platform: await deps.platformConfig(),
          dataStoreOf,
        }),
      );
    const cached = deps.tcps?.get(tcpName, namespace);
    if (cached) deps.metrics.tcpReads.inc({ source: 'cache' });
    const validation = await validate(cached ?? (await liveTcp()));
    if (!validation.ok) return {};
    const spec = validation.spec;
    const organization = await organizationOf(namespace);
    const bao = deps.openbao.withNamespace(organization);
    const wanted = Boolean(spec.encryption?.etcd.enabled);

    if (!wanted) {
      driftClock.forget(key);
      if (!hasFinalizer) return {};
      // Removing access while the tenant is attached strands its encrypted rows
      // (DisableRequiresMigration): a cache a moment behind k8-manager's attach must not decide it.
      if (cached && !(await validate(await liveTcp())).ok) return {};
      await removeAccess(bao, namespace, name);
      await deps.kube.patch(ref, {
        metadata: {
          finalizers: finalizers.filter((f) => f !== FINALIZERS.openBaoAccess),
          resourceVersion: object.metadata?.resourceVersion,
        },
      });
      await deps.recorder.record(
        object,
        'Normal',
        'OpenBaoAccessRemoved',
        `OpenBao policy and role for ${name} removed (the Transit key is kept)`,
      );
      return {};
    }
    if (!hasFinalizer) {
      await deps.kube.patch(ref, {
        metadata: {
          finalizers: [...finalizers, FINALIZERS.openBaoAccess],
          resourceVersion: object.metadata?.resourceVersion,
        },
      });
      return {}; // the watch event of this patch brings us back with a fresh copy
    }

    // A policy grants only a Transit key the registry gives to that very KMSKey (by uid).
    const keyRefs = resolveKeyRefs(name, spec);
    const owned = async (kmsKey: string) => {
      const object = deps.keys.get(kmsKey, namespace);
      return object ? transitKeyOf(organization, object) : null;
    };
    const [etcdKey, backupKey] = [await owned(keyRefs.etcd), await owned(keyRefs.backup)];
    if (!etcdKey || !backupKey) {
      const missing = !etcdKey ? keyRefs.etcd : keyRefs.backup;
      const message = `KMSKey ${missing} has no Transit key of its own yet (see kubectl get kkey ${missing} -n ${namespace}): the policy is written once it has`;
      const conditions = setConditions(
        object.status?.conditions,
        [
          {
            type: KDC_CLUSTER_CONDITIONS.kmsPreflight,
            status: 'False',
            reason: 'WaitingForKey',
            message,
            observedGeneration: object.metadata?.generation,
          },
        ],
        now(),
      );
      await updateStatusIfChanged(deps.kube, ref, object, { ...object.status, conditions });
      // The KMSKey's status write (after its Transit key and ownership record) brings this cluster
      // back through the KMSKey watch; polling here only competed with the KMSKey controller for
      // OpenBao (5,000 tenants: ~1,160 polls per shard in the first 6 minutes).
      return { requeueAfterMs: WAITING_FOR_KEY_SAFETY_NET_MS };
    }
    // A key switch runs two plugin instances (plugin-keys.ts): the policy grants the key of each
    // one k8-manager recorded, each checked against the registry, and the spec's key unless that
    // change is refused (a refused change is granted nothing).
    const keyChange = {
      keys: object.status?.encryption?.pluginKeys ?? [],
      desired: { keyRef: keyRefs.etcd, transitKey: etcdKey },
      migrating: object.status?.encryption?.migration !== undefined,
    };
    const grants: string[] = [];
    for (const transitKey of grantedTransitKeys(keyChange)) {
      const owned =
        transitKey === etcdKey ||
        (transitKeyOf.ownedByNamespace
          ? await transitKeyOf.ownedByNamespace(organization, transitKey, namespace)
          : false);
      if (owned) grants.push(transitKey);
      else
        deps.logger.warn(
          { cluster: key, transitKey },
          'a plugin key in status is not owned by this namespace: not granted',
        );
    }
    const access = desiredAccess(namespace, name, spec, {
      etcd: preflightKey(keyChange)?.transitKey ?? etcdKey,
      etcdGrants: grants,
      backup: backupKey,
    });
    const repaired: string[] = [];
    // Written by us and checked within the drift period for this very access: not read again.
    const fingerprint = accessFingerprint(namespace, name, access);
    const verified = `${organization ?? ''}:${fingerprint}`;
    const skipCheck = driftClock.recall(key, verified) !== undefined;
    deps.countDriftCheck?.(skipCheck ? 'skipped' : 'checked');
    for (const policy of skipCheck ? [] : access.policies) {
      const current = await bao.readPolicy(policy.name);
      const text = renderPolicy(policy.rules);
      if (current !== null && policiesEquivalent(current, text)) continue;
      await bao.writePolicy(policy.name, text);
      deps.metrics.writes.inc({ object: 'policy', kind: current === null ? 'create' : 'drift' });
      if (current !== null) repaired.push(`policy ${policy.name}`);
    }
    for (const role of skipCheck ? [] : access.roles) {
      const current = await bao.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name);
      if (roleMatches(current, role.body)) continue;
      await bao.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name, role.body);
      deps.metrics.writes.inc({ object: 'role', kind: current === null ? 'create' : 'drift' });
      if (current !== null) repaired.push(`role ${role.name}`);
    }
    if (!skipCheck) driftClock.remember(key, verified, true);
    if (repaired.length) {
      deps.logger.warn({ cluster: key, repaired }, 'repaired OpenBao drift');
      await deps.recorder.record(
        object,
        'Warning',
        'OpenBaoDriftRepaired',
        `restored ${repaired.join(', ')} to the desired content`,
      );
    }

    // The pre-flight runs when what it proved may have changed, never at steady state.
    const previous = findCondition(object.status?.conditions, KDC_CLUSTER_CONDITIONS.kmsPreflight);
    const proven =
      previous?.status === 'True' && previous.message.includes(`(access ${fingerprint})`) && repaired.length === 0;
    if (proven) {
      // Same access, newer spec: what was proven still holds; say it holds for this generation.
      if (previous.observedGeneration === object.metadata?.generation) return {};
      const conditions = setConditions(
        object.status?.conditions,
        [{ ...previous, observedGeneration: object.metadata?.generation }],
        now(),
      );
      await updateStatusIfChanged(deps.kube, ref, object, { ...object.status, conditions });
      return {};
    }
    let result;
    try {
      result = await runPreflight({
        kube: deps.kube,
        anonymous: bao.withToken(undefined),
        namespace,
        cluster: name,
        access,
        fingerprint,
      });
    } catch (error) {
      if (!isOpenBaoError(error)) throw error;
      result = {
        ok: false,
        reason: 'OpenBaoUnavailable',
        message: `pre-flight could not reach OpenBao: ${error.kind}`,
      };
    }
    deps.metrics.preflights.inc({ result: result.ok ? 'ok' : 'failed' });
    const status = {
      ...object.status,
      conditions: setConditions(
        object.status?.conditions,
        [
          {
            type: KDC_CLUSTER_CONDITIONS.kmsPreflight,
            status: result.ok ? 'True' : 'False',
            reason: result.reason,
            message: result.message,
            observedGeneration: object.metadata?.generation,
          },
        ],
        now(),
      ),
    };
    await updateStatusIfChanged(deps.kube, ref, object, status);
    if (!result.ok && previous?.reason !== result.reason)
      await deps.recorder.record(object, 'Warning', 'KMSPreflightFailed', result.message);
    // Until it succeeds, look again (the ServiceAccount may appear, the key may be created).
    return result.ok ? {} : { requeueAfterMs: 10_000 };
  }
}
