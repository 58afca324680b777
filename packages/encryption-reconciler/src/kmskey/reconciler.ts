import {
  ANNOTATIONS, FINALIZERS, SECURITY_GROUP, type EventRecorder, type Informer, type KmsKey, type KubeClient, type KubeObject,
  type Logger, type OpenBaoClient, type ReconcileResult, isOpenBaoError, organizationLookup, kmsKeySpecSchema, setConditions, splitKey,
  transitKeyName, updateStatusIfChanged, KMSKEY_CONDITIONS,
} from '@kdc/shared';
import { Counter, Gauge, type Registry } from 'prom-client';
import { openBaoFailure } from '@kdc/shared';
import { planKmsKey, type KmsKeyAction } from './plan.ts';

export const KMSKEY_REF = { group: SECURITY_GROUP, version: 'v1alpha1', plural: 'kmskeys' };

export function kmsKeyMetrics(registry: Registry) {
  // Next rotation per KMSKey, kept here: the exported gauge is one number, so the metrics name no
  // tenant namespace or key (docs/security-model.md, Metrics). Status and events name the key.
  const nextRotations = new Map<string, number>();
  new Gauge({
    name: 'kdc_kmskey_rotation_overdue_seconds',
    help: 'How far the most overdue KMSKey is past its rotation time (0: none is overdue)',
    registers: [registry],
    collect() {
      const now = Date.now() / 1000;
      this.set(Math.max(0, ...[...nextRotations.values()].map((t) => now - t)));
    },
  });
  return {
    rotations: new Counter({ name: 'kdc_kmskey_rotations_total', help: 'Transit rotations made by the KMSKey controller', registers: [registry] }),
    nextRotation: {
      set: (key: { namespace: string; name: string }, epochSeconds: number) => void nextRotations.set(`${key.namespace}/${key.name}`, epochSeconds),
      remove: (key: { namespace: string; name: string }) => void nextRotations.delete(`${key.namespace}/${key.name}`),
    },
    openBaoErrors: new Counter({ name: 'kdc_openbao_errors_total', help: 'OpenBao errors by kind', labelNames: ['kind'], registers: [registry] }),
  };
}

export interface KmsKeyReconcilerDeps {
  kube: KubeClient;
  /** A client with the controller's OpenBao token, root namespace. */
  openbao: OpenBaoClient;
  keys: Informer<KubeObject>;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof kmsKeyMetrics>;
  deletionCountdownSeconds: number;
  now?: () => Date;
}

/** Reads, plans (pure), executes one action, writes status only when it changed. */
export function kmsKeyReconciler(deps: KmsKeyReconcilerDeps) {
  const now = deps.now ?? (() => new Date());
  const organizationOf = organizationLookup(deps.kube);

  async function execute(action: KmsKeyAction, object: KubeObject, bao: OpenBaoClient, transitKey: string): Promise<void> {
    const ref = { ...KMSKEY_REF, namespace: object.metadata!.namespace, name: object.metadata!.name };
    const finalizers = object.metadata?.finalizers ?? [];
    switch (action.kind) {
      case 'recordPurpose':
        await deps.kube.patch(ref, { metadata: { annotations: { [ANNOTATIONS.boundPurpose]: action.purpose }, resourceVersion: object.metadata!.resourceVersion } });
        return;
      case 'addFinalizer':
        await deps.kube.patch(ref, { metadata: { finalizers: [...finalizers, FINALIZERS.kmsKey], resourceVersion: object.metadata!.resourceVersion } });
        return;
      case 'removeFinalizer':
        await deps.kube.patch(ref, { metadata: { finalizers: finalizers.filter((f) => f !== FINALIZERS.kmsKey), resourceVersion: object.metadata!.resourceVersion } });
        return;
      case 'ensureMount':
        await bao.enableSecretsEngine('transit', 'transit');
        return;
      case 'createKey':
        await bao.transit().createKey(transitKey, { type: action.type, exportable: false, derived: false });
        return;
      case 'rotate':
        await bao.transit().rotate(transitKey);
        deps.metrics.rotations.inc();
        return;
      case 'enableDeletion':
        await bao.transit().configure(transitKey, { deletion_allowed: true });
        return;
      case 'deleteKey':
        await bao.transit().deleteKey(transitKey);
        return;
      case 'none':
        return;
    }
  }

  return async function reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = deps.keys.get(name, namespace) as (KubeObject & Pick<KmsKey, 'spec' | 'status'>) | undefined;
    if (!object || !namespace) return {};
    const ref = { ...KMSKEY_REF, namespace, name };
    const parsedSpec = kmsKeySpecSchema.safeParse(object.spec ?? {});
    const transitKey = transitKeyName(namespace, name);
    const organization = await organizationOf(namespace);
    const bao = deps.openbao.withNamespace(organization);
    try {
      if (organization && !(await deps.openbao.readNamespace(organization))) await deps.openbao.createNamespace(organization);
      const mounts = await bao.secretMounts();
      const transit = mounts['transit/'] ? await bao.transit().readKey(transitKey) : null;
      if (!parsedSpec.success) {
        const message = parsedSpec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
        const status = { ...object.status, observedGeneration: object.metadata?.generation, conditions: setConditions(object.status?.conditions, [{ type: KMSKEY_CONDITIONS.ready, status: 'False', reason: 'InvalidSpec', message, observedGeneration: object.metadata?.generation }], now()) };
        await updateStatusIfChanged(deps.kube, ref, object, status);
        return {};
      }
      const plan = planKmsKey({
        name, namespace, generation: object.metadata?.generation ?? 0, spec: parsedSpec.data, status: object.status,
        deleting: Boolean(object.metadata?.deletionTimestamp), hasFinalizer: (object.metadata?.finalizers ?? []).includes(FINALIZERS.kmsKey),
        organization, transitKeyName: transitKey, transit, boundPurpose: object.metadata?.annotations?.[ANNOTATIONS.boundPurpose], mountReady: Boolean(mounts['transit/']), now: now(),
        deletionCountdownSeconds: deps.deletionCountdownSeconds,
      });
      if (!['addFinalizer', 'removeFinalizer', 'recordPurpose'].includes(plan.action.kind)) {
        await updateStatusIfChanged(deps.kube, ref, object, plan.status);
      }
      if (plan.status.nextRotationTime) deps.metrics.nextRotation.set({ namespace, name }, Date.parse(plan.status.nextRotationTime) / 1000);
      else deps.metrics.nextRotation.remove({ namespace, name });
      if (plan.action.kind === 'none') return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : {};
      await execute(plan.action, object, bao, transitKey);
      if (plan.event) await deps.recorder.record(object, plan.event.type, plan.event.reason, plan.event.message);
      deps.logger.info({ kmskey: key, action: plan.action.kind }, 'KMSKey action');
      // A change to the KMSKey object comes back as a watch event once the cache has it; reacting
      // to that event (not requeueing now) avoids planning from a stale copy and a 409.
      if (['addFinalizer', 'removeFinalizer', 'recordPurpose'].includes(plan.action.kind)) return {};
      // OpenBao changed: look again with fresh state, the next step follows at once.
      return { requeueAfterMs: 0 };
    } catch (error) {
      if (isOpenBaoError(error)) {
        deps.metrics.openBaoErrors.inc({ kind: error.kind });
        // Says what to do: wait out an outage, or replace the controller's refused token (failure.ts).
        const { reason, message } = openBaoFailure(error);
        const status = { ...object.status, conditions: setConditions(object.status?.conditions, [{ type: KMSKEY_CONDITIONS.ready, status: 'False', reason, message, observedGeneration: object.metadata?.generation }], now()) };
        await updateStatusIfChanged(deps.kube, ref, object, status).catch(() => undefined);
      }
      throw error;
    }
  };
}
