import {
  OpenBaoTokenRejectedError,
  isOpenBaoError,
  openBaoFailure,
  setConditions,
  splitKey,
  updateStatusIfChanged,
  type Condition,
  type Cache,
  type KubeClient,
  type KubeObject,
  type OpenBaoClient,
  type ReconcileResult,
  type ResourceRef,
} from '@kdc/shared';

const CREDENTIAL_REASONS = new Set(['OpenBaoTokenRejected', 'OpenBaoPermissionDenied']);
/** A condition that blamed the controller's credentials is looked at again this soon once they work. */
const RECHECK_MS = 10_000;

type WithConditions = KubeObject & { status?: { conditions?: Condition[] } };

/**
 * Runs one reconcile of an object whose condition `type` must say when the controller's own
 * OpenBao credentials fail (token refused, or a policy without the capability): only an operator
 * can fix that, so the object says what to do. A token already known to be refused fails the
 * reconcile before it starts (every OpenBao call would fail, and an object whose other checks
 * fail first would otherwise never say why). Outages and other errors only back off.
 */
export function openBaoCredentialsGuard(input: {
  kube: KubeClient;
  openbao: OpenBaoClient;
  objects: Cache<KubeObject>;
  ref: Omit<ResourceRef, 'namespace' | 'name'>;
  type: string;
  now: () => Date;
}) {
  async function report(key: string, object: WithConditions | undefined, error: unknown): Promise<void> {
    if (!object || !isOpenBaoError(error)) return;
    const failure = openBaoFailure(error);
    if (!failure.credentials) return;
    const { namespace, name } = splitKey(key);
    const generation = object.metadata?.generation;
    const conditions = setConditions(
      object.status?.conditions,
      [
        {
          type: input.type,
          status: 'False',
          reason: failure.reason,
          message: failure.message,
          observedGeneration: generation,
        },
      ],
      input.now(),
    );
    await updateStatusIfChanged(input.kube, { ...input.ref, namespace, name }, object, {
      ...object.status,
      conditions,
    }).catch(() => undefined);
  }

  return async function guard(key: string, reconcile: () => Promise<ReconcileResult>): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object: WithConditions | undefined = input.objects.get(name, namespace);
    try {
      const rejection = input.openbao.tokenRejection();
      if (rejection)
        throw new OpenBaoTokenRejectedError({
          status: 403,
          errors: ['permission denied'],
          path: 'auth/token/lookup-self',
          method: 'GET',
          rejection,
        });
      const result = await reconcile();
      // The credentials work again, but this reconcile may have stopped before rewriting the
      // condition (e.g. a key that is not Ready yet): look again soon rather than at the resync.
      const stale = CREDENTIAL_REASONS.has(
        object?.status?.conditions?.find((c) => c.type === input.type)?.reason ?? '',
      );
      return stale ? { requeueAfterMs: Math.min(result.requeueAfterMs ?? RECHECK_MS, RECHECK_MS) } : result;
    } catch (error) {
      await report(key, object, error);
      throw error;
    }
  };
}
