import {
  FINALIZERS,
  KMSKEY_CONDITIONS,
  OwnershipError,
  OwnershipRegistry,
  enableOwnershipMount,
  isAlreadyExists,
  isOpenBaoError,
  kmsKeySpecSchema,
  legacyTransitKeyName,
  openBaoFailure,
  organizationLookup,
  ownershipMountReady,
  runPass,
  setConditions,
  splitKey,
  DriftClock,
  transitKeyFromKeyId,
  transitKeyName,
  updateStatusIfChanged,
  type EventRecorder,
  type Informer,
  type KmsKey,
  type KmsKeySpec,
  type KubeClient,
  type KubeObject,
  type Logger,
  type OpenBaoClient,
  type ReconcileResult,
  RESOURCES,
  type KmsKeyObject,
} from '@kdc/shared';
import { Counter, Gauge, type Registry } from 'prom-client';
import { buildCleanupTask, cleanupTaskName, CONFIGMAPS } from '../cleanup/tasks.ts';
import { planKmsKeyDeletion } from './deletion.ts';
import { resolveOwnership } from './ownership.ts';
import { checkSpec, planKmsKey, type KmsKeyAction, type KmsKeyObservation, type KmsKeyPlan } from './plan.ts';

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
    rotations: new Counter({
      name: 'kdc_kmskey_rotations_total',
      help: 'Transit rotations made by the KMSKey controller',
      registers: [registry],
    }),
    nextRotation: {
      set: (key: { namespace: string; name: string }, epochSeconds: number) =>
        void nextRotations.set(`${key.namespace}/${key.name}`, epochSeconds),
      remove: (key: { namespace: string; name: string }) => void nextRotations.delete(`${key.namespace}/${key.name}`),
    },
    openBaoErrors: new Counter({
      name: 'kdc_openbao_errors_total',
      help: 'OpenBao errors by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'kdc_kmskey_refusals_total',
      help: 'KMSKey reconciles that refused the spec or the key, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

export interface KmsKeyReconcilerDeps {
  kube: KubeClient;
  /** A client with the controller's OpenBao token, root namespace. */
  openbao: OpenBaoClient;
  keys: Informer<KmsKeyObject>;
  /** Cleanup tasks (ConfigMaps) in the controllers' namespace. */
  tasks: Informer<KubeObject>;
  /** Namespaces, for their organisation label (absent: read through a short cache). */
  namespaces?: Informer<KubeObject>;
  controllerNamespace: string;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof kmsKeyMetrics>;
  deletionCountdownSeconds: number;
  /** The platform's shortest rotation interval for a purpose (seconds). */
  rotationFloor: (purpose: KmsKeySpec['purpose']) => number;
  /** When a key's Transit key and ownership record are read back while nothing changed (default: every reconcile). */
  driftClock?: DriftClock<OpenBaoView>;
  /** Counts reconciles that read OpenBao back (checked) or trusted the last read (skipped). */
  countDriftCheck?: (result: 'checked' | 'skipped') => void;
  now?: () => Date;
}

/** What a KMSKey's plan reads from OpenBao: the mounts, the ownership of the name, the Transit key. */
type OpenBaoView = Pick<KmsKeyObservation, 'mounts' | 'transitKeyName' | 'ownership' | 'transit'>;

type KeyObject = KubeObject & Pick<KmsKey, 'spec' | 'status'>;
const OBJECT_ACTIONS = new Set<KmsKeyAction['kind']>(['addFinalizer']);
/** Enough for the longest chain (both mounts, claim, create, rotate); a loop that makes no progress stops here. */
const MAX_OPENBAO_STEPS = 5;

/** Reads, plans (pure), executes OpenBao actions until none is left, writes status only when it changed. */
export function kmsKeyReconciler(deps: KmsKeyReconcilerDeps) {
  const now = deps.now ?? (() => new Date());
  const organizationOf = organizationLookup(deps.kube, { namespaces: deps.namespaces });
  /** Organisation -> until when both mounts are known to exist (see mountsOf). */
  const mountedUntil = new Map<string, number>();
  const driftClock = deps.driftClock ?? new DriftClock<OpenBaoView>(0);

  async function execute(
    action: KmsKeyAction,
    object: KeyObject,
    bao: OpenBaoClient,
    transitKey: string,
  ): Promise<void> {
    const ref = { ...RESOURCES.kmsKey, namespace: object.metadata!.namespace, name: object.metadata!.name };
    switch (action.kind) {
      case 'addFinalizer':
        await deps.kube.patch(ref, {
          metadata: {
            finalizers: [...(object.metadata?.finalizers ?? []), FINALIZERS.kmsKey],
            resourceVersion: object.metadata!.resourceVersion,
          },
        });
        return;
      case 'ensureMount':
        if (action.mount === 'transit') await bao.enableSecretsEngine('transit', 'transit');
        else await enableOwnershipMount(bao);
        return;
      case 'claim': {
        const result = await new OwnershipRegistry(bao).claim(transitKey, action.owner);
        // Lost a race: the next pass reads the winner's record and says so.
        if (!result.claimed)
          deps.logger.warn(
            { transitKey, kmsKey: `${ref.namespace}/${ref.name}` },
            'Transit key name claimed by another KMSKey first',
          );
        return;
      }
      case 'createKey':
        await bao.transit().createKey(transitKey, { type: action.type, exportable: false, derived: false });
        return;
      case 'rotate':
        await bao.transit().rotate(transitKey);
        deps.metrics.rotations.inc();
        return;
      case 'none':
        return;
    }
  }

  /** Deletion needs the Kubernetes API only (F11): no OpenBao call before the finalizer goes. */
  async function reconcileDeletion(object: KeyObject, spec: KmsKeySpec | undefined): Promise<ReconcileResult> {
    const { namespace, name, uid } = object.metadata as { namespace: string; name: string; uid: string };
    const taskName = cleanupTaskName('destroyTransitKey', uid);
    const due = new Date(Date.parse(object.metadata?.deletionTimestamp ?? '') + deps.deletionCountdownSeconds * 1000);
    const plan = planKmsKeyDeletion(
      {
        hasFinalizer: (object.metadata?.finalizers ?? []).includes(FINALIZERS.kmsKey),
        deletionPolicy: spec?.deletionPolicy ?? 'retain',
        destructionRecorded: Boolean(deps.tasks.get(taskName, deps.controllerNamespace)),
        taskName,
        due,
      },
      deps.controllerNamespace,
    );
    const ref = { ...RESOURCES.kmsKey, namespace, name };
    if (plan.action.kind === 'recordDestruction') {
      const candidates = [
        ...new Set(
          [
            transitKeyFromKeyId(object.status?.keyId),
            transitKeyName(namespace, name),
            legacyTransitKeyName(namespace, name),
          ].filter((n): n is string => Boolean(n)),
        ),
      ];
      const task = buildCleanupTask({
        kind: 'destroyTransitKey',
        organization: await organizationOf(namespace),
        namespace,
        kmsKey: name,
        uid,
        candidates,
        due: due.toISOString(),
      });
      try {
        await deps.kube.create(CONFIGMAPS(deps.controllerNamespace), task);
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      return { requeueAfterMs: 0 };
    }
    if (plan.action.kind === 'removeFinalizer') {
      await deps.kube.patch(ref, {
        metadata: {
          finalizers: (object.metadata?.finalizers ?? []).filter((f) => f !== FINALIZERS.kmsKey),
          resourceVersion: object.metadata!.resourceVersion,
        },
      });
    }
    if (plan.event) await deps.recorder.record(object, plan.event.type, plan.event.reason, plan.event.message);
    deps.metrics.nextRotation.remove({ namespace, name });
    return {};
  }

  return async function reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = deps.keys.get(name, namespace) as KeyObject | undefined;
    if (!object || !namespace || object.metadata?.deletionTimestamp) driftClock.forget(key);
    if (!object || !namespace) return {};
    const ref = { ...RESOURCES.kmsKey, namespace, name };
    const parsedSpec = kmsKeySpecSchema.safeParse(object.spec ?? {});
    if (object.metadata?.deletionTimestamp)
      return reconcileDeletion(object, parsedSpec.success ? parsedSpec.data : undefined);
    if (!parsedSpec.success) {
      const message = parsedSpec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
      const status = {
        ...object.status,
        observedGeneration: object.metadata?.generation,
        conditions: setConditions(
          object.status?.conditions,
          [
            {
              type: KMSKEY_CONDITIONS.ready,
              status: 'False',
              reason: 'InvalidSpec',
              message,
              observedGeneration: object.metadata?.generation,
            },
          ],
          now(),
        ),
      };
      await updateStatusIfChanged(deps.kube, ref, object, status);
      return {};
    }
    const hasFinalizer = (object.metadata?.finalizers ?? []).includes(FINALIZERS.kmsKey);
    const minRotationSeconds = deps.rotationFloor(parsedSpec.data.purpose);
    const observed = {
      name,
      namespace,
      uid: object.metadata!.uid!,
      generation: object.metadata?.generation ?? 0,
      spec: parsedSpec.data,
      status: object.status,
      hasFinalizer,
      now: now(),
      minRotationSeconds,
    };
    // A missing finalizer and a refused spec need no OpenBao call: a tenant's invalid keys (a
    // 1 s rotation, say) cost OpenBao nothing.
    const refused = checkSpec(parsedSpec.data, minRotationSeconds);
    if (!hasFinalizer || !refused.ok) {
      const offline = {
        organization: undefined,
        mounts: { transit: false, registry: false },
        transitKeyName: transitKeyName(namespace, name),
        ownership: { kind: 'unclaimed' as const },
        transit: null,
      };
      const plan = planKmsKey({ ...observed, ...offline });
      if (plan.action.kind === 'addFinalizer') {
        await execute(plan.action, object, deps.openbao, offline.transitKeyName);
        return {};
      }
      if (!refused.ok) deps.metrics.refused.inc({ reason: refused.reason });
      deps.metrics.nextRotation.remove({ namespace, name });
      await updateStatusIfChanged(deps.kube, ref, object, plan.status);
      return {};
    }
    const organization = await organizationOf(namespace);
    const bao = deps.openbao.withNamespace(organization);
    // Read within the drift period for this very object: if that view asks for no change, it is
    // trusted (a rotation that falls due, a new spec or another organisation reads OpenBao again).
    const fingerprint = `${observed.uid}:${observed.generation}:${organization ?? ''}`;
    const recalled = driftClock.recall(key, fingerprint);
    if (recalled) {
      const plan = planKmsKey({ ...observed, organization, ...recalled });
      if (plan.action.kind === 'none') {
        deps.countDriftCheck?.('skipped');
        return settle(ref, object, plan);
      }
    }
    deps.countDriftCheck?.('checked');
    try {
      // OpenBao steps (mount, claim, create, rotate) follow one another in one pass, each planned
      // from a fresh read of OpenBao, and the status is written once at the end: a new key costs
      // one status write, not one per step (and no 409 from writing against a copy the previous
      // step's write made stale). A change to the object itself ends the pass.
      const pass = await runPass(
        {
          observe: async () => {
            const mounted = await mountsOf(organization, bao);
            const resolved =
              mounted.transit && mounted.registry
                ? await resolve(bao, object)
                : { transitKeyName: transitKeyName(namespace, name), ownership: { kind: 'unclaimed' as const } };
            const transit = mounted.transit ? await bao.transit().readKey(resolved.transitKeyName) : null;
            const view: OpenBaoView = { mounts: mounted, ...resolved, transit };
            return {
              transitKey: resolved.transitKeyName,
              view,
              plan: planKmsKey({ ...observed, organization, ...view }),
            };
          },
          plan: ({ plan }) => plan.action,
          stops: (action: KmsKeyAction) => action.kind === 'none',
          execute: async (action, { plan, transitKey }) => {
            await execute(action, object, bao, transitKey);
            if (plan.event) await deps.recorder.record(object, plan.event.type, plan.event.reason, plan.event.message);
            return undefined;
          },
          endsPass: (action) => OBJECT_ACTIONS.has(action.kind),
          maxSteps: MAX_OPENBAO_STEPS,
        },
        { signal, onStep: (action) => deps.logger.info({ kmskey: key, action: action.kind }, 'KMSKey action') },
      );
      const plan = pass.observed.plan;
      if (pass.step.kind === 'none')
        return await settle(ref, object, plan, { key, fingerprint, view: pass.observed.view });
      setNextRotation(namespace, name, plan);
      // A change to the KMSKey object comes back as a watch event once the cache has it; reacting
      // to that event (not requeueing now) avoids planning from a stale copy and a 409.
      if (OBJECT_ACTIONS.has(pass.step.kind)) return {};
      // The step bound was reached with work left: say where it stands, and go on at once.
      await updateStatusIfChanged(deps.kube, ref, object, plan.status);
      return { requeueAfterMs: 0 };
    } catch (error) {
      if (isOpenBaoError(error) || error instanceof OwnershipError) {
        if (isOpenBaoError(error)) deps.metrics.openBaoErrors.inc({ kind: error.kind });
        // Says what to do: wait out an outage, replace the controller's refused token (failure.ts),
        // or have an admin repair an ownership record nobody may act on.
        const { reason, message } =
          error instanceof OwnershipError
            ? { reason: 'OwnershipRecordMalformed', message: error.message }
            : openBaoFailure(error);
        const status = {
          ...object.status,
          conditions: setConditions(
            object.status?.conditions,
            [
              {
                type: KMSKEY_CONDITIONS.ready,
                status: 'False',
                reason,
                message,
                observedGeneration: object.metadata?.generation,
              },
            ],
            now(),
          ),
        };
        await updateStatusIfChanged(deps.kube, ref, object, status).catch(() => undefined);
      }
      throw error;
    }
  };

  function setNextRotation(namespace: string, name: string, plan: KmsKeyPlan): void {
    if (plan.status.nextRotationTime)
      deps.metrics.nextRotation.set({ namespace, name }, Date.parse(plan.status.nextRotationTime) / 1000);
    else deps.metrics.nextRotation.remove({ namespace, name });
  }

  /**
   * Nothing left to change in OpenBao: show the plan's status and come back when a rotation is due.
   * `read`: what OpenBao was just read to be (absent when a remembered view was planned). Only a
   * Ready key's view is remembered: a refused one (a name owned by another KMSKey, say) reads again
   * at every reconcile, so an admin's hand-over or repair shows at once.
   */
  async function settle(
    ref: { namespace: string; name: string } & typeof RESOURCES.kmsKey,
    object: KeyObject,
    plan: KmsKeyPlan,
    read?: { key: string; fingerprint: string; view: OpenBaoView },
  ): Promise<ReconcileResult> {
    setNextRotation(ref.namespace, ref.name, plan);
    const ready = plan.status.conditions?.find((c) => c.type === KMSKEY_CONDITIONS.ready);
    if (ready?.status === 'False') deps.metrics.refused.inc({ reason: ready.reason });
    if (read && ready?.status === 'True') driftClock.remember(read.key, read.fingerprint, read.view);
    else if (read) driftClock.forget(read.key);
    await updateStatusIfChanged(deps.kube, ref, object, plan.status);
    return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : {};
  }

  /**
   * Whether `transit/` and the registry are mounted in an organisation's OpenBao namespace (and
   * the namespace exists). Once both are, that is remembered for a minute: a resync of a thousand
   * keys then reads each key and its record, not the mount table a thousand times.
   */
  async function mountsOf(
    organization: string | undefined,
    bao: OpenBaoClient,
  ): Promise<{ transit: boolean; registry: boolean }> {
    const cacheKey = organization ?? '';
    if ((mountedUntil.get(cacheKey) ?? 0) > Date.now()) return { transit: true, registry: true };
    if (organization && !(await deps.openbao.readNamespace(organization)))
      await deps.openbao.createNamespace(organization);
    const mounts = (await bao.secretMounts()) as Parameters<typeof ownershipMountReady>[0];
    const mounted = { transit: Boolean(mounts['transit/']), registry: ownershipMountReady(mounts) };
    if (mounted.transit && mounted.registry) mountedUntil.set(cacheKey, Date.now() + 60_000);
    return mounted;
  }

  /** Reads the ownership records (and, only when needed, the legacy key) and resolves the name. */
  async function resolve(bao: OpenBaoClient, object: KeyObject) {
    const { namespace, name, uid } = object.metadata as { namespace: string; name: string; uid: string };
    const registry = new OwnershipRegistry(bao);
    const current = await registry.read(transitKeyName(namespace, name));
    const base = {
      namespace,
      name,
      uid,
      keyIdHint: object.status?.keyId,
      current,
      legacy: null,
      legacyKey: null,
      legacyNamesakes: [],
    };
    if (current) return resolveOwnership(base);
    const legacyName = legacyTransitKeyName(namespace, name);
    const legacy = await registry.read(legacyName);
    const legacyKey = legacy ? null : await bao.transit().readKey(legacyName);
    const legacyNamesakes = legacyKey
      ? deps.keys
          .list()
          .filter((k) => legacyTransitKeyName(k.metadata.namespace!, k.metadata.name) === legacyName)
          .map((k) => ({
            uid: k.metadata.uid!,
            namespace: k.metadata.namespace!,
            name: k.metadata.name,
            creationTimestamp: k.metadata?.creationTimestamp,
          }))
      : [];
    return resolveOwnership({ ...base, legacy, legacyKey, legacyNamesakes });
  }
}
