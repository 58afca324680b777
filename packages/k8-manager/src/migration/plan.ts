import type { EncryptableResource } from '@kdc/shared';

// Every stored row of an encrypted tenant follows its configuration (issue 12, SPEC 5): after
// encryption is enabled no row stays plaintext, after a rotation no row stays under an older
// key_id. One pure function decides the next single step from what was observed; the driver
// (reconcile.ts) executes it and asks again. Completion is what a scan of the tenant's etcd rows
// says, never what a pass assumed.

/** What a scan of the configured resources' rows found (status.encryption.coverage). */
export interface Coverage {
  total: number;
  current: number;
  stale: number;
  plaintext: number;
  scannedAt: string;
  /** The key_ids counted as current: the ones every plugin replica published when the scan ran. */
  keyIds: string[];
}

/** The migration's checkpoint (status.encryption.migration): a restarted controller resumes here. */
export interface MigrationRecord {
  reason: 'enable' | 'rewrap';
  startedAt: string;
  /** 1 for the first pass over every configured resource. */
  pass: number;
  /** The resource being re-written and the list's continue token; both absent once the pass is done. */
  resource?: EncryptableResource;
  continue?: string;
  /** Objects re-written so far, over all passes. */
  rewritten: number;
  /** Rows the scan before the first pass counted (the N/M denominator). */
  total: number;
  /** When the current pass ended: a scan newer than this decides whether another pass is needed. */
  passEndedAt?: string;
}

export type Rollout =
  /** Every replica runs the expected EncryptionConfiguration, its KMS provider is healthy and every plugin publishes the same key_id. */
  | { ready: true; keyIds: string[] }
  | { ready: false; message: string };

export interface MigrationObservation {
  /** The configured resources, in the order passes walk them. */
  resources: readonly EncryptableResource[];
  rollout: Rollout;
  coverage?: Coverage;
  record?: MigrationRecord;
  /** Re-write after a rotation without being asked (spec.encryption.etcd.rewrapAfterRotation). */
  autoRewrap: boolean;
  /** A `kubectl kdc rewrap-etcd` request (RFC 3339), if any; it is pending while newer than lastCompletedAt. */
  rewrapRequestedAt?: string;
  /** When the last migration finished (status.encryption.lastRewrapCompleted). */
  lastCompletedAt?: string;
  now: Date;
}

export const MAX_PASSES = 5;
/** A pass that leaves rows behind (the apiserver had not adopted a new key_id yet) is repeated after this. */
export const PASS_RETRY_MS = 20_000;

export type MigrationStep =
  | { kind: 'wait'; message: string; retryMs: number }
  | { kind: 'scan'; why: string }
  | { kind: 'start'; reason: MigrationRecord['reason'] }
  | { kind: 'rewrite'; resource: EncryptableResource; continue?: string }
  | { kind: 'endPass' }
  | { kind: 'nextPass' }
  | { kind: 'finish' }
  | { kind: 'idle'; stale?: number };

const clean = (c: Coverage) => c.plaintext === 0 && c.stale === 0;
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
const after = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && Date.parse(a) > Date.parse(b);

export function planMigration(o: MigrationObservation): MigrationStep {
  const r = o.record;
  if (!o.rollout.ready) return { kind: 'wait', message: o.rollout.message, retryMs: 5_000 };
  const keyIds = o.rollout.keyIds;
  // A pass in progress goes on: what it writes goes through whatever the apiserver uses now, and
  // the scan at its end says whether that was enough.
  if (r?.resource) return { kind: 'rewrite', resource: r.resource, ...(r.continue ? { continue: r.continue } : {}) };
  if (r && !r.passEndedAt) return { kind: 'endPass' };
  const c = o.coverage;
  const fresh = c && sameSet(c.keyIds, keyIds) && !after(o.rewrapRequestedAt, c.scannedAt) && !(r?.passEndedAt && !after(c.scannedAt, r.passEndedAt));
  if (!c || !fresh) {
    const why = !c ? 'no scan yet' : r?.passEndedAt ? 'verifying the pass' : !sameSet(c.keyIds, keyIds) ? 'the published key_id changed' : 'a rewrap was requested';
    return { kind: 'scan', why };
  }
  if (r) {
    if (clean(c)) return { kind: 'finish' };
    if (r.pass >= MAX_PASSES) {
      return { kind: 'wait', message: `${c.plaintext + c.stale} rows are still plaintext or under an older key_id after ${r.pass} passes: the tenant apiserver may not use the new key_id yet; retrying`, retryMs: PASS_RETRY_MS };
    }
    const waited = o.now.getTime() - Date.parse(r.passEndedAt!);
    if (waited < PASS_RETRY_MS) return { kind: 'wait', message: `${c.plaintext + c.stale} rows left after pass ${r.pass}; the next pass starts once the apiserver had time to adopt the current key_id`, retryMs: PASS_RETRY_MS - waited };
    return { kind: 'nextPass' };
  }
  if (c.plaintext > 0) return { kind: 'start', reason: 'enable' };
  const requested = o.rewrapRequestedAt !== undefined && !after(o.lastCompletedAt, o.rewrapRequestedAt);
  if (c.stale > 0) return o.autoRewrap || requested ? { kind: 'start', reason: 'rewrap' } : { kind: 'idle', stale: c.stale };
  return { kind: 'idle' };
}

/** The record a step leaves behind (pure): what the driver writes to status after executing it. */
export function nextRecord(step: MigrationStep, o: MigrationObservation, outcome: { continue?: string; rewritten?: number } = {}): MigrationRecord | undefined {
  const r = o.record;
  const stamp = o.now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  switch (step.kind) {
    case 'start':
      return { reason: step.reason, startedAt: stamp, pass: 1, resource: o.resources[0], rewritten: 0, total: o.coverage?.total ?? 0 };
    case 'rewrite': {
      const rewritten = (r?.rewritten ?? 0) + (outcome.rewritten ?? 0);
      if (outcome.continue) return { ...r!, continue: outcome.continue, rewritten };
      const following = o.resources[o.resources.indexOf(step.resource) + 1];
      const { continue: _done, ...rest } = r!;
      return following ? { ...rest, resource: following, rewritten } : { ...withoutCursor(rest), rewritten };
    }
    case 'endPass':
      return { ...withoutCursor(r!), passEndedAt: stamp };
    case 'nextPass': {
      const { passEndedAt: _ended, ...rest } = r!;
      return { ...rest, pass: r!.pass + 1, resource: o.resources[0] };
    }
    case 'finish':
      return undefined;
    default:
      return r;
  }
}

function withoutCursor(r: MigrationRecord): MigrationRecord {
  const { resource: _resource, continue: _continue, ...rest } = r;
  return rest;
}
