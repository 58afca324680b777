// The Pod a workload controller makes from its spec.template: the template's labels and
// annotations plus the controller's own labels, owned by the workload (controller: true), as
// the Job, StatefulSet and ReplicaSet controllers make them. Pure.
import { apiVersionOf, type Resource } from '@kdc/shared';
import type { PodObject, PodTemplate, VolumeSpec } from '../kubelet/pod-spec.ts';

export interface Workload {
  metadata: { name: string; namespace: string; uid?: string };
  spec: { template: PodTemplate };
}

export function ownedPod(
  resource: Resource,
  owner: Workload,
  pod: { name: string; labels: Record<string, string>; volumes?: VolumeSpec[] },
): PodObject {
  const template = owner.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: pod.name,
      namespace: owner.metadata.namespace,
      labels: { ...(template.metadata?.labels ?? {}), ...pod.labels },
      annotations: template.metadata?.annotations ?? {},
      ownerReferences: [
        {
          apiVersion: apiVersionOf(resource),
          kind: resource.kind,
          name: owner.metadata.name,
          uid: owner.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: pod.volumes ? { ...template.spec, volumes: pod.volumes } : template.spec,
  };
}
