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
  /** The EncryptionConfiguration hash every replica ran when the scan read etcd. */
  configHash?: string;
  /** The etcd revision the scan read. */
  revision?: number;
  byResource?: Partial<Record<EncryptableResource, Counts>>;
}

export interface Counts {
  total: number;
  current: number;
  stale: number;
  plaintext: number;
}

/** The migration's checkpoint (status.encryption.migration): a restarted controller resumes here. */
export interface MigrationRecord {
  /** enable: plaintext rows to encrypt; rewrap: rows under an older key_id; decrypt: KMS rows of resources leaving KMS; switch: rows under the key a key switch leaves. */
  reason: 'enable' | 'rewrap' | 'decrypt' | 'switch';
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
  { ready: true; keyIds: string[] } | { ready: false; message: string };

export interface MigrationObservation {
  /** Resources the config encrypts ([kms, identity]): every row must be under the current key_id. */
  encrypt: readonly EncryptableResource[];
  /** Resources it decrypts ([identity, kms]): every row must be plaintext. */
  decrypt: readonly EncryptableResource[];
  /** The EncryptionConfiguration hash every replica must run (a scan under another proves nothing now). */
  configHash: string;
  rollout: Rollout;
  coverage?: Coverage;
  record?: MigrationRecord;
  /** Re-write after a rotation without being asked (spec.encryption.etcd.rewrapAfterRotation). */
  autoRewrap: boolean;
  /** A `kubectl kdc rewrap-etcd` request (RFC 3339), if any; it is pending while newer than lastCompletedAt. */
  rewrapRequestedAt?: string;
  /** When the last migration finished (status.encryption.lastRewrapCompleted). */
  lastCompletedAt?: string;
  /** A key switch has promoted the new key: rows under the old one are moved whatever autoRewrap says. */
  switching?: boolean;
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

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
const after = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && Date.parse(a) > Date.parse(b);

/** The resources a pass walks, in order. */
export const walked = (o: Pick<MigrationObservation, 'encrypt' | 'decrypt'>): EncryptableResource[] => [
  ...o.encrypt,
  ...o.decrypt,
];

/** What still needs a re-write: plaintext and stale rows of encrypted resources, KMS rows of decrypted ones. */
export function remaining(
  o: Pick<MigrationObservation, 'encrypt' | 'decrypt'>,
  c: Coverage,
): { plaintext: number; stale: number; encrypted: number } {
  if (!c.byResource) return { plaintext: c.plaintext, stale: c.stale, encrypted: 0 };
  const sum = (rs: readonly EncryptableResource[], f: (n: Counts) => number) =>
    rs.reduce((acc, r) => acc + f(c.byResource![r] ?? { total: 0, current: 0, stale: 0, plaintext: 0 }), 0);
  return {
    plaintext: sum(o.encrypt, (n) => n.plaintext),
    stale: sum(o.encrypt, (n) => n.stale),
    encrypted: sum(o.decrypt, (n) => n.total - n.plaintext),
  };
}

/** The last scan describes the store as the config stands now (same key_ids, same config, every resource counted). */
function isFresh(o: MigrationObservation, c: Coverage, keyIds: readonly string[]): boolean {
  const r = o.record;
  return (
    sameSet(c.keyIds, keyIds) &&
    c.configHash === o.configHash &&
    o.decrypt.every((res) => c.byResource?.[res] !== undefined) &&
    !after(o.rewrapRequestedAt, c.scannedAt) &&
    !(r?.passEndedAt && !after(c.scannedAt, r.passEndedAt))
  );
}

/**
 * Decrypted resources a fresh scan proved plaintext: they can leave the EncryptionConfiguration.
 * Only under the config every replica runs now ([identity, kms] for them), so nothing written
 * after the scan is KMS-encrypted either.
 */
export function provenPlaintext(o: MigrationObservation): EncryptableResource[] {
  const c = o.coverage;
  if (!o.rollout.ready || !c || !isFresh(o, c, o.rollout.keyIds)) return [];
  return o.decrypt.filter(
    (r) => c.byResource?.[r] !== undefined && c.byResource[r].total === c.byResource[r].plaintext,
  );
}

export function planMigration(o: MigrationObservation): MigrationStep {
  const r = o.record;
  if (!o.rollout.ready) return { kind: 'wait', message: o.rollout.message, retryMs: 5_000 };
  const keyIds = o.rollout.keyIds;
  // A pass in progress goes on: what it writes goes through whatever the apiserver uses now, and
  // the scan at its end says whether that was enough.
  if (r?.resource) return { kind: 'rewrite', resource: r.resource, ...(r.continue ? { continue: r.continue } : {}) };
  if (r && !r.passEndedAt) return { kind: 'endPass' };
  const c = o.coverage;
  if (!c || !isFresh(o, c, keyIds)) {
    const why = !c
      ? 'no scan yet'
      : r?.passEndedAt
        ? 'verifying the pass'
        : !sameSet(c.keyIds, keyIds)
          ? 'the published key_id changed'
          : c.configHash !== o.configHash || !o.decrypt.every((res) => c.byResource?.[res])
            ? 'the encryption config changed'
            : 'a rewrap was requested';
    return { kind: 'scan', why };
  }
  const left = remaining(o, c);
  const rows = left.plaintext + left.stale + left.encrypted;
  if (r) {
    if (rows === 0) return { kind: 'finish' };
    if (r.pass >= MAX_PASSES) {
      return {
        kind: 'wait',
        message: `${rows} rows still need a re-write after ${r.pass} passes: the tenant apiserver may not use the current config or key_id yet; retrying`,
        retryMs: PASS_RETRY_MS,
      };
    }
    const waited = o.now.getTime() - Date.parse(r.passEndedAt!);
    if (waited < PASS_RETRY_MS)
      return {
        kind: 'wait',
        message: `${rows} rows left after pass ${r.pass}; the next pass starts once the apiserver had time to adopt the current key_id`,
        retryMs: PASS_RETRY_MS - waited,
      };
    return { kind: 'nextPass' };
  }
  if (left.encrypted > 0) return { kind: 'start', reason: 'decrypt' };
  if (left.plaintext > 0) return { kind: 'start', reason: 'enable' };
  const requested = o.rewrapRequestedAt !== undefined && !after(o.lastCompletedAt, o.rewrapRequestedAt);
  if (left.stale > 0 && o.switching) return { kind: 'start', reason: 'switch' };
  if (left.stale > 0)
    return o.autoRewrap || requested ? { kind: 'start', reason: 'rewrap' } : { kind: 'idle', stale: left.stale };
  return { kind: 'idle' };
}

/** The record a step leaves behind (pure): what the driver writes to status after executing it. */
export function nextRecord(
  step: MigrationStep,
  o: MigrationObservation,
  outcome: { continue?: string; rewritten?: number } = {},
): MigrationRecord | undefined {
  const r = o.record;
  const stamp = o.now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  switch (step.kind) {
    case 'start':
      return {
        reason: step.reason,
        startedAt: stamp,
        pass: 1,
        resource: walked(o)[0],
        rewritten: 0,
        total: o.coverage?.total ?? 0,
      };
    case 'rewrite': {
      const rewritten = (r?.rewritten ?? 0) + (outcome.rewritten ?? 0);
      if (outcome.continue) return { ...r!, continue: outcome.continue, rewritten };
      const order = walked(o);
      const following = order[order.indexOf(step.resource) + 1];
      const { continue: _done, ...rest } = r!;
      return following ? { ...rest, resource: following, rewritten } : { ...withoutCursor(rest), rewritten };
    }
    case 'endPass':
      return { ...withoutCursor(r!), passEndedAt: stamp };
    case 'nextPass': {
      const { passEndedAt: _ended, ...rest } = r!;
      return { ...rest, pass: r!.pass + 1, resource: walked(o)[0] };
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
