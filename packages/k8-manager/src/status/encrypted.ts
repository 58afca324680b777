import {
  ENCRYPTED_REASONS,
  KDC_CLUSTER_CONDITIONS as C,
  type ConditionInput,
  type KdcClusterStatus,
} from '@kdc/shared';
import type { MigrationOutcome } from '../migration/reconcile.ts';
import { remaining } from '../migration/plan.ts';
import type { DesiredProviders } from '../migration/providers.ts';

// What the stored rows show, as the migration last saw them: the Encrypted condition and the
// migration's fields of status.encryption. Only a scan proves rows, so nothing here reads the
// plugin or the spec beyond the providers.

/** Encrypted (SPEC 3.1, 5): True only when a scan of the stored rows shows none plaintext and none stale. */
export function encryptedCondition(
  providers: Pick<DesiredProviders, 'encrypt' | 'decrypt' | 'retained'>,
  m: MigrationOutcome | undefined,
  previous: KdcClusterStatus | undefined,
): Omit<ConditionInput, 'type'> {
  const resources = providers.encrypt;
  if (!m) {
    // The migration did not run in this reconcile (a restore, say): what was proven last stands.
    const last = previous?.conditions?.find((c) => c.type === C.encrypted);
    return last
      ? { status: last.status, reason: last.reason, message: last.message }
      : { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: 'rows are not counted yet' };
  }
  const problem = m.problem ? ` (${m.problem})` : '';
  const r = m.record;
  if (r) {
    const progress = `${r.rewritten}/${r.total} objects re-written${r.pass > 1 ? ` (pass ${r.pass})` : ''}`;
    if (r.reason === 'decrypt')
      return {
        status: 'False',
        reason: ENCRYPTED_REASONS.decryptionInProgress,
        message: `decrypting every ${providers.decrypt.join(' and ')} row before KMS leaves them: ${progress}${problem}`,
      };
    if (r.reason === 'switch')
      return {
        status: 'False',
        reason: ENCRYPTED_REASONS.rewrapInProgress,
        message: `moving every row to the new key (key switch): ${progress}${problem}`,
      };
    return r.reason === 'rewrap'
      ? {
          status: 'False',
          reason: ENCRYPTED_REASONS.rewrapInProgress,
          message: `re-wrapping every row under the current key_id: ${progress}${problem}`,
        }
      : {
          status: 'False',
          reason: ENCRYPTED_REASONS.inProgress,
          message: `encrypting the rows written before: ${progress}${problem}`,
        };
  }
  const c = m.coverage;
  if (m.step.kind === 'wait')
    return { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: `${m.step.message}${problem}` };
  if (!c || m.step.kind === 'scan')
    return { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: `counting the stored rows${problem}` };
  const decrypting = providers.decrypt.filter((r) => !m.provenPlaintext.includes(r));
  if (decrypting.length)
    return {
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionInProgress,
      message: `counting the ${decrypting.join(' and ')} rows left to decrypt${problem}`,
    };
  if (!resources.length)
    return {
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionCompleted,
      message: `every row is proven plaintext; KMS is being detached${problem}`,
    };
  const left = remaining(providers, c);
  if (left.plaintext === 0 && left.stale === 0) {
    const retained = providers.retained.length
      ? ` (${providers.retained.join(', ')} stay${providers.retained.length === 1 ? 's' : ''} encrypted although dropped from spec.encryption.etcd.resources: their rows share the KMS provider, so they leave KMS only with the disable migration, disableRequested: true)`
      : '';
    return {
      status: 'True',
      reason: ENCRYPTED_REASONS.completed,
      message: `All resources encrypted: ${resources.join(', ')}${retained}`,
    };
  }
  return {
    status: 'False',
    reason: ENCRYPTED_REASONS.inProgress,
    message: `${left.stale} of ${c.total} rows are under an older key_id and automatic re-wrap is off: run kubectl kdc rewrap-etcd${problem}`,
  };
}

/** disableMigrationProgress (SPEC 2): 0 when requested, 1..99 while the decrypt pass runs; 100 is set once KMS is detached. */
export function disableProgress(r: { reason: string; rewritten: number; total: number } | undefined): number {
  if (r?.reason !== 'decrypt' || r.total === 0) return 0;
  return Math.max(1, Math.min(99, Math.floor((r.rewritten / r.total) * 100)));
}

export function migrationFields(
  m: MigrationOutcome,
  previous: KdcClusterStatus | undefined,
): Partial<NonNullable<KdcClusterStatus['encryption']>> {
  const { migration: _previous, ...kept } = previous?.encryption ?? {};
  return {
    ...(m.coverage ? { coverage: m.coverage } : {}),
    ...(m.record ? { migration: m.record } : { migration: undefined }),
    rewrapInProgress: m.record?.reason === 'rewrap' || m.record?.reason === 'switch',
    history: m.history,
    ...(m.lastCompletedAt
      ? { lastRewrapCompleted: m.lastCompletedAt }
      : kept.lastRewrapCompleted
        ? { lastRewrapCompleted: kept.lastRewrapCompleted }
        : {}),
  };
}
