import {
  at,
  clusterNames,
  decodeSecretData,
  isAlreadyExists,
  RESOURCES,
  type EventRecorder,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
  type TenantControlPlane,
} from '@kdc/shared';
import type { ClusterAction, ObservedCluster } from './plan.ts';
import { clusterOwner } from './refs.ts';

// The one change planCluster named, made, and folded into what the reconcile observed so that the
// next plan starts from it without reading again.

export interface ClusterExecutorDeps {
  kube: KubeClient;
  recorder: EventRecorder;
  countWrite: (action: string) => void;
}

export function clusterExecutor(deps: ClusterExecutorDeps) {
  async function createOrGet(ref: ResourceRef, namespace: string, object: KubeObject): Promise<KubeObject> {
    try {
      return await deps.kube.create({ ...ref, namespace }, object);
    } catch (error) {
      // The cache lagged behind an earlier pass of ours: the object is there, read it.
      if (!isAlreadyExists(error)) throw error;
      return deps.kube.get({ ...ref, namespace, name: object.metadata!.name });
    }
  }

  return async function execute(
    action: ClusterAction,
    cluster: KubeObject,
    o: ObservedCluster,
  ): Promise<ObservedCluster> {
    const { namespace, name } = o;
    const names = clusterNames(name);
    deps.countWrite(action.kind);
    switch (action.kind) {
      case 'createTenantControlPlane': {
        const object = {
          ...action.object,
          metadata: { ...action.object.metadata, ownerReferences: [clusterOwner(cluster)] },
        };
        const created = await createOrGet(RESOURCES.tenantControlPlane, namespace, object);
        await deps.recorder.record(
          cluster,
          'Normal',
          'TenantControlPlaneCreated',
          `created TenantControlPlane ${names.tenantControlPlane}`,
        );
        return { ...o, tcp: created as TenantControlPlane };
      }
      case 'labelTenantControlPlane': {
        const tcp = await deps.kube.patch<TenantControlPlane & KubeObject>(
          { ...RESOURCES.tenantControlPlane, namespace, name: o.tcp!.metadata.name },
          { metadata: { labels: action.labels } },
        );
        return { ...o, tcp };
      }
      case 'createKmsKey':
        await createOrGet(RESOURCES.kmsKey, namespace, action.object);
        await deps.recorder.record(
          cluster,
          'Normal',
          'KMSKeyCreated',
          `created KMSKey ${names.autoEtcdKey} (purpose etcd, retained)`,
        );
        return { ...o, autoKey: action.object };
      case 'updateKmsKeySpec':
        await deps.kube.patch(
          { ...RESOURCES.kmsKey, namespace, name: names.autoEtcdKey },
          { spec: { rotation: action.spec.rotation } },
        );
        return { ...o, autoKey: { spec: action.spec } };
      case 'createServiceAccount':
        await createOrGet(RESOURCES.serviceAccount, namespace, action.object);
        return { ...o, serviceAccountExists: true };
      case 'writeEncryptionConfig': {
        const ref = at(RESOURCES.secret, namespace, names.encryptionConfigSecret);
        if (action.exists) await deps.kube.replace(ref, action.object);
        else await createOrGet(RESOURCES.secret, namespace, action.object);
        return { ...o, secretData: decodeSecretData(action.object) };
      }
      case 'patchTenantControlPlane': {
        const tcp = o.tcp!;
        // The lists have no merge keys: write the whole deployment, guarded by resourceVersion.
        const updated = await deps.kube.replace<TenantControlPlane & KubeObject>(
          { ...RESOURCES.tenantControlPlane, namespace, name: tcp.metadata.name },
          {
            ...tcp,
            spec: { ...tcp.spec, controlPlane: { ...tcp.spec.controlPlane, deployment: action.deployment } },
          },
        );
        const verb = {
          attach: 'attached the KMS plugin to',
          update: 'updated the KMS fields of',
          detach: 'detached KMS from',
        }[action.change];
        await deps.recorder.record(
          cluster,
          action.change === 'detach' ? 'Warning' : 'Normal',
          'TenantControlPlanePatched',
          `${verb} TenantControlPlane ${tcp.metadata.name}`,
        );
        return { ...o, tcp: updated };
      }
      default:
        return o;
    }
  };
}
