import {
  isOpenBaoError, openBaoFailure, setConditions, splitKey, updateStatusIfChanged,
  type Condition, type Informer, type KubeClient, type KubeObject, type ResourceRef,
} from '@kdc/shared';

/**
 * Reports a failure of the controller's own OpenBao credentials (token refused, or a policy
 * without the capability) on the object being reconciled, in condition `type`: only an operator
 * can fix it, so the object says what to do. Outages and other errors only back off.
 */
export function credentialFailureReporter(input: { kube: KubeClient; objects: Informer<KubeObject>; ref: Omit<ResourceRef, 'namespace' | 'name'>; type: string; now: () => Date }) {
  return async function report(key: string, error: unknown): Promise<void> {
    if (!isOpenBaoError(error)) return;
    const failure = openBaoFailure(error);
    if (!failure.credentials) return;
    const { namespace, name } = splitKey(key);
    const object = input.objects.get(name, namespace) as (KubeObject & { status?: { conditions?: Condition[] } }) | undefined;
    if (!object) return;
    const generation = object.metadata?.generation;
    const conditions = setConditions(object.status?.conditions, [{ type: input.type, status: 'False', reason: failure.reason, message: failure.message, observedGeneration: generation }], input.now());
    await updateStatusIfChanged(input.kube, { ...input.ref, namespace, name }, object, { ...object.status, conditions }).catch(() => undefined);
  };
}
