import {
  ANNOTATIONS,
  runPass,
  type EncryptableResource,
  type EventRecorder,
  type KdcClusterStatus,
  type KdcClusterSpec,
  type KubeObject,
  type Logger,
  type TenantApiClient,
  type TenantControlPlane,
} from '@kdc/shared';
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  nextRecord,
  planMigration,
  provenPlaintext,
  remaining,
  walked,
  type Coverage,
  type MigrationObservation,
  type MigrationRecord,
  type MigrationStep,
  type Rollout,
} from './plan.ts';
import type { DesiredProviders } from './providers.ts';
import { ContinueExpiredError, Pacer, rewritePage } from './rewrite.ts';

// The driver of the migration planner: observe (status, the replicas, the last scan), ask
// planMigration for one step, execute it, hand the new checkpoint to the status. One step per
// reconcile (a page of at most `pageSize` objects, or one scan) keeps every reconcile bounded;
// the checkpoint is written with the status at the end of each, so a restarted or newly elected
// controller resumes where the last one stopped.

export function migrationMetrics(registry: Registry) {
  return {
    objects: new Counter({
      name: 'kdc_migration_objects_total',
      help: 'Objects re-written by migrations, by result (rewritten, skipped, failed)',
      labelNames: ['result'],
      registers: [registry],
    }),
    completed: new Counter({
      name: 'kdc_migrations_completed_total',
      help: 'Migrations proven complete by a scan, by reason (enable, rewrap)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'kdc_migration_duration_seconds',
      help: 'From the start of a migration to the scan that proved it',
      buckets: [10, 30, 60, 300, 900, 3600, 4 * 3600],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'kdc_migration_failures_total',
      help: 'Migration steps that failed, by step',
      labelNames: ['step'],
      registers: [registry],
    }),
    scans: new Counter({
      name: 'kdc_coverage_scans_total',
      help: 'Coverage scans of tenant etcd rows, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}

/** The tenant's stored rows, read from its DataStore (etcd-access.ts). */
export interface RowStore {
  /** Counts the configured resources' rows under the tenant's etcd prefix (the coverage scan). */
  scan(input: {
    namespace: string;
    tcp: TenantControlPlane;
    resources: readonly EncryptableResource[];
    currentKeyIds: readonly string[];
    signal: AbortSignal;
  }): Promise<Omit<Coverage, 'scannedAt' | 'keyIds' | 'configHash'>>;
  /** Whether etcd has compacted every revision before `revision` (the old rows of a migration are gone then). */
  compactedBefore(input: { namespace: string; tcp: TenantControlPlane; revision: number }): Promise<boolean>;
  /** Whether one object's row is stored as `want` now: under one of `currentKeyIds`, or plaintext. */
  rowIs(input: {
    namespace: string;
    tcp: TenantControlPlane;
    resource: string;
    object: { namespace: string; name: string };
    want: 'current' | 'plaintext';
    currentKeyIds: readonly string[];
  }): Promise<boolean>;
}

export interface MigrationInput {
  cluster: KubeObject;
  namespace: string;
  spec: KdcClusterSpec;
  tcp: TenantControlPlane;
  /** What the config encrypts and decrypts (providers.ts). */
  providers: DesiredProviders;
  /** The config hash every replica must run. */
  configHash: string;
  rollout: Rollout;
  /** The tenant apiserver, for re-writes; absent when it cannot be reached. */
  client?: TenantApiClient;
  /** Aborts when the controller stops: the pass ends between steps. */
  signal?: AbortSignal;
  coverage?: Coverage;
  record?: MigrationRecord;
  lastCompletedAt?: string;
  /** status.encryption.history: a finished migration whose old revisions etcd still keeps. */
  history?: History;
  /** A key switch promoted the new key: rows under the old one must move (plugin-keys.ts). */
  switching?: boolean;
}

export interface History {
  untilRevision: number;
  migrationEnded: string;
}

/**
 * What the migration reads back from status: the last scan, the checkpoint, the last completion.
 * A scan older than the last state change of a restore describes rows that are gone (the restore
 * put a snapshot's rows back): it is dropped, so the next step scans again.
 */
export function migrationState(
  status: KdcClusterStatus | undefined,
): Pick<MigrationInput, 'coverage' | 'record' | 'lastCompletedAt' | 'history'> {
  const e = status?.encryption;
  const restored = status?.restore?.since;
  const c = e?.coverage;
  const current = c?.keyIds && !(restored && Date.parse(restored) >= Date.parse(c.scannedAt));
  return {
    ...(current ? { coverage: { ...c, keyIds: c.keyIds! } } : {}),
    ...(e?.migration ? { record: e.migration } : {}),
    ...(e?.lastRewrapCompleted ? { lastCompletedAt: e.lastRewrapCompleted } : {}),
    ...(e?.history ? { history: e.history } : {}),
  };
}

export interface MigrationOutcome {
  step: MigrationStep;
  coverage?: Coverage;
  record?: MigrationRecord;
  lastCompletedAt?: string;
  /** Decrypted resources a fresh scan proved plaintext (they leave the config). */
  provenPlaintext: EncryptableResource[];
  /** What status.encryption.history becomes (undefined: nothing old is known to be kept). */
  history?: History;
  /** A scan under the config every replica runs proved no row needs a re-write, and no migration runs. */
  settled: boolean;
  /** Why the step could not run (the scan or the apiserver), for the Encrypted condition. */
  problem?: string;
  requeueAfterMs?: number;
}

export interface MigrationDeps {
  rows: RowStore;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof migrationMetrics>;
  /** Objects listed per page (and re-written per step). */
  pageSize: number;
  /** Writes per second into one tenant apiserver. */
  ratePerSecond: number;
  timeoutMs?: number;
  now?: () => Date;
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function migrationReconciler(deps: MigrationDeps) {
  const now = deps.now ?? (() => new Date());
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const pacers = new Map<string, Pacer>();
  const pacerFor = (key: string) => pacers.get(key) ?? pacers.set(key, new Pacer(deps.ratePerSecond)).get(key)!;

  /** One step per reconcile: its checkpoint is written with the status before the next is planned. */
  return async function migrate(input: MigrationInput): Promise<MigrationOutcome> {
    const pass = await runPass<{ o: MigrationObservation; outcome?: MigrationOutcome }, MigrationStep>(
      {
        observe: async () => ({ o: observation(input) }),
        plan: ({ o }) => planMigration(o),
        stops: () => false,
        execute: async (step, { o }) => ({ o, outcome: await executeStep(step, input, o) }),
        endsPass: () => true,
        maxSteps: 1,
      },
      { signal: input.signal },
    );
    return pass.observed.outcome!;
  };

  function observation(input: MigrationInput): MigrationObservation {
    const etcd = input.spec.encryption!.etcd;
    const o: MigrationObservation = {
      encrypt: input.providers.encrypt,
      decrypt: input.providers.decrypt,
      configHash: input.configHash,
      rollout: input.rollout,
      ...(input.coverage ? { coverage: input.coverage } : {}),
      ...(input.record ? { record: input.record } : {}),
      autoRewrap: etcd.rewrapAfterRotation ?? true,
      ...(input.cluster.metadata?.annotations?.[ANNOTATIONS.rewrapRequested]
        ? { rewrapRequestedAt: input.cluster.metadata.annotations[ANNOTATIONS.rewrapRequested] }
        : {}),
      ...(input.lastCompletedAt ? { lastCompletedAt: input.lastCompletedAt } : {}),
      ...(input.switching ? { switching: true } : {}),
      now: now(),
    };
    return o;
  }

  async function executeStep(
    step: MigrationStep,
    input: MigrationInput,
    o: MigrationObservation,
  ): Promise<MigrationOutcome> {
    const resources = walked(o);
    const settled = (step.kind === 'idle' && !step.stale) || step.kind === 'finish';
    const base: MigrationOutcome = {
      step,
      settled,
      provenPlaintext: provenPlaintext(o),
      ...(input.history ? { history: input.history } : {}),
      ...(input.coverage ? { coverage: input.coverage } : {}),
      ...(input.record ? { record: input.record } : {}),
      ...(input.lastCompletedAt ? { lastCompletedAt: input.lastCompletedAt } : {}),
    };
    const key = `${input.namespace}/${input.cluster.metadata?.name}`;
    try {
      switch (step.kind) {
        case 'idle': {
          // Between migrations: has etcd compacted away the old revisions of the last one yet?
          if (
            !input.history ||
            !(await deps.rows.compactedBefore({
              namespace: input.namespace,
              tcp: input.tcp,
              revision: input.history.untilRevision,
            }))
          )
            return base;
          const { history: _gone, ...rest } = base;
          return rest;
        }
        case 'wait':
          return { ...base, requeueAfterMs: step.retryMs };
        case 'scan': {
          const keyIds = input.rollout.ready ? input.rollout.keyIds : [];
          const scannedAt = rfc3339(now());
          const counted: Omit<Coverage, 'scannedAt' | 'keyIds' | 'configHash'> = await deps.rows.scan({
            namespace: input.namespace,
            tcp: input.tcp,
            resources,
            currentKeyIds: keyIds,
            signal: AbortSignal.timeout(5 * 60_000),
          });
          deps.metrics.scans.inc({ result: 'ok' });
          const coverage: Coverage = { ...counted, scannedAt, keyIds: [...keyIds], configHash: input.configHash };
          return {
            ...base,
            coverage,
            provenPlaintext: provenPlaintext({ ...o, coverage }),
            settled: false,
            requeueAfterMs: 0,
          };
        }
        case 'start':
          await deps.recorder.record(
            input.cluster,
            'Normal',
            'MigrationStarted',
            startMessage(step.reason, o, input.coverage!),
          );
          return { ...base, record: nextRecord(step, o), requeueAfterMs: 0 };
        case 'rewrite': {
          if (!input.client)
            return {
              ...base,
              problem: 'the tenant apiserver cannot be reached to re-write rows',
              requeueAfterMs: 10_000,
            };
          const currentKeyIds = input.rollout.ready ? input.rollout.keyIds : [];
          const verifyFirst = (namespace: string, name: string) =>
            deps.rows.rowIs({
              namespace: input.namespace,
              tcp: input.tcp,
              resource: step.resource,
              object: { namespace, name },
              want: o.decrypt.includes(step.resource) ? 'plaintext' : 'current',
              currentKeyIds,
            });
          let page;
          try {
            page = await rewritePage(input.client, step.resource, step.continue, {
              limit: deps.pageSize,
              timeoutMs,
              pacer: pacerFor(key),
              verifyFirst,
            });
          } catch (error) {
            if (!(error instanceof ContinueExpiredError)) throw error;
            // Walk this resource again from its start: rows written meanwhile are current anyway.
            const { continue: _expired, ...rest } = input.record!;
            return { ...base, record: rest, requeueAfterMs: 0 };
          }
          for (const result of ['rewritten', 'skipped', 'failed'] as const)
            deps.metrics.objects.inc({ result }, page[result]);
          if (page.halted) {
            // The checkpoint stays where it was: this page is walked again once the apiserver writes under the current key_id.
            const problem = o.decrypt.includes(step.resource)
              ? `the tenant apiserver still stores ${step.resource} through KMS after a re-write: it does not run the decrypting config yet`
              : `the tenant apiserver does not yet store rows under the key_id its plugins publish (${currentKeyIds.join(', ')}); it adopts a new key_id within about a minute`;
            return { ...base, problem, requeueAfterMs: 10_000 };
          }
          return {
            ...base,
            record: nextRecord(step, o, {
              ...(page.continue ? { continue: page.continue } : {}),
              rewritten: page.rewritten,
            }),
            requeueAfterMs: 0,
          };
        }
        case 'endPass':
        case 'nextPass':
          return { ...base, record: nextRecord(step, o), requeueAfterMs: 0 };
        case 'finish': {
          const r = input.record!;
          const seconds = (now().getTime() - Date.parse(r.startedAt)) / 1000;
          deps.metrics.completed.inc({ reason: r.reason });
          deps.metrics.duration.observe(seconds);
          const proven = [
            o.encrypt.length ? `every ${o.encrypt.join(' and ')} row is encrypted under the current key_id` : '',
            o.decrypt.length ? `every ${o.decrypt.join(' and ')} row is plaintext` : '',
          ]
            .filter(Boolean)
            .join('; ');
          await deps.recorder.record(
            input.cluster,
            'Normal',
            'MigrationCompleted',
            `${proven} (${input.coverage!.total} rows, ${r.rewritten} re-written in ${r.pass} pass${r.pass === 1 ? '' : 'es'}, ${Math.round(seconds)} s)`,
          );
          const { record: _done, ...rest } = base;
          // A decrypt leaves only encrypted rows behind (in history and older backups): nothing to
          // scrub, and no rewrap to date. After an enable or a rewrap, every row re-written before
          // the proving scan has an older revision (plaintext or an older key_id) below its revision.
          if (r.reason === 'decrypt') return rest;
          const ended = rfc3339(now());
          const revision = input.coverage!.revision;
          return {
            ...rest,
            lastCompletedAt: ended,
            ...(revision ? { history: { untilRevision: revision, migrationEnded: ended } } : {}),
          };
        }
      }
    } catch (error) {
      deps.metrics.failures.inc({ step: step.kind });
      if (step.kind === 'scan') deps.metrics.scans.inc({ result: 'failed' });
      const message = (error as Error).message.slice(0, 300);
      deps.logger.warn({ cluster: key, step: step.kind, err: message }, 'migration step failed');
      return {
        ...base,
        problem: `${step.kind === 'scan' ? 'the coverage scan' : `step ${step.kind}`} failed: ${message}`,
        requeueAfterMs: 15_000,
      };
    }
  }
}

function startMessage(reason: MigrationRecord['reason'], o: MigrationObservation, c: Coverage): string {
  const left = remaining(o, c);
  if (reason === 'decrypt')
    return `re-writing every ${o.decrypt.join(' and ')} row to plaintext before KMS leaves them: ${left.encrypted} of ${c.total} rows are KMS-encrypted`;
  if (reason === 'switch')
    return `re-writing every ${o.encrypt.join(' and ')} row under the new key (key switch): ${left.stale} of ${c.total} rows are under the old key`;
  return `re-writing every ${o.encrypt.join(' and ')} row (${reason}): ${left.plaintext} plaintext and ${left.stale} under an older key_id of ${c.total}`;
}
