// What one stored etcd value says about encryption at rest (pure). The judge is the full KMS v2
// key_id inside the EncryptedObject, compared with the key_ids the tenant's plugins publish now:
// a Transit version alone cannot tell our key from another key (or another plugin) at the same
// version, so a row counts as current only when its exact key_id is one of the current ones.
import { ENCRYPTABLE_RESOURCES } from '../api/kdccluster.ts';
import { allKmsProviderNames } from '../names.ts';
import { decodeEncryptedObject } from './encrypted-object.ts';

export type RowClass =
  /** Not encrypted (the identity provider, or written before encryption was on). */
  | { kind: 'plaintext' }
  /** One of our KMS v2 providers, under a key_id the caller says is current. */
  | { kind: 'current'; provider: string; keyId: string }
  /** One of our providers, under a key_id of our form (`kdc2.v<N>.<hash>`, `kdc1...`) that is not current. */
  | { kind: 'stale'; provider: string; keyId: string; version: number }
  /** Encrypted by something else: another provider type or name, or our provider with a key_id not of our form. */
  | { kind: 'foreign'; provider: string; keyId?: string }
  /** Carries one of our providers' prefixes, but the EncryptedObject cannot be read. */
  | { kind: 'unreadable'; provider: string; reason: string };

export type RowKind = RowClass['kind'];

export interface ClassifyOptions {
  /** The key_ids the tenant's plugins publish now: a set, since two replicas mid-rotation may publish two. */
  current: ReadonlySet<string>;
  /** KMS v2 provider names that are ours (default: every name the platform configures, both plugin slots). */
  providers?: readonly string[];
}

const ENC = Buffer.from('k8s:enc:');
const KMS_V2 = Buffer.from('k8s:enc:kms:v2:');
const COLON = 0x3a;
/** apiserver provider names are short; a name longer than this is not a prefix we wrote. */
const MAX_PROVIDER_NAME = 253;
const DEFAULT_PROVIDERS: readonly string[] = allKmsProviderNames(ENCRYPTABLE_RESOURCES);

/** Same rule as the plugin's keyid.ts KEY_ID_PATTERN: `kdc2` (or the earlier `kdc1`) `.v<N>.<32 base64url chars>`. */
export const OUR_KEY_ID = /^kdc([12])\.v(\d{1,9})\.[A-Za-z0-9_-]{32}$/;

/** The Transit version a key_id of ours claims, or null when it is not of our form. */
export function versionOfKeyId(keyId: string): number | null {
  const match = OUR_KEY_ID.exec(keyId);
  return match ? Number(match[2]) : null;
}

const startsWith = (value: Uint8Array, prefix: Buffer) =>
  value.length >= prefix.length && prefix.equals(value.subarray(0, prefix.length));

/** `k8s:enc:<type>:<version>:<name>:...` -> "<type>:<version>:<name>" (what a person needs to recognise it). */
function providerLabel(value: Uint8Array): string {
  const head = Buffer.from(value.buffer, value.byteOffset, Math.min(value.length, 200)).toString('latin1');
  return head.slice(ENC.length).split(':').slice(0, 3).join(':');
}

export function classifyRow(value: Uint8Array, options: ClassifyOptions): RowClass {
  if (!startsWith(value, ENC)) return { kind: 'plaintext' };
  if (!startsWith(value, KMS_V2)) return { kind: 'foreign', provider: providerLabel(value) };
  const limit = Math.min(value.length, KMS_V2.length + MAX_PROVIDER_NAME + 1);
  let colon = -1;
  for (let i = KMS_V2.length; i < limit; i++) {
    if (value[i] === COLON) {
      colon = i;
      break;
    }
  }
  if (colon < 0) return { kind: 'foreign', provider: providerLabel(value) };
  const name = Buffer.from(value.buffer, value.byteOffset + KMS_V2.length, colon - KMS_V2.length).toString('latin1');
  const provider = `kms:v2:${name}`;
  if (!(options.providers ?? DEFAULT_PROVIDERS).includes(name)) return { kind: 'foreign', provider };
  let keyId: string;
  try {
    keyId = decodeEncryptedObject(value.subarray(colon + 1)).keyID;
  } catch (error) {
    return { kind: 'unreadable', provider, reason: `EncryptedObject does not decode (${(error as Error).message})` };
  }
  if (!keyId) return { kind: 'unreadable', provider, reason: 'EncryptedObject has no keyID' };
  if (options.current.has(keyId)) return { kind: 'current', provider, keyId };
  const version = versionOfKeyId(keyId);
  return version === null ? { kind: 'foreign', provider, keyId } : { kind: 'stale', provider, keyId, version };
}

export interface CoverageCounts {
  total: number;
  current: number;
  stale: number;
  plaintext: number;
  foreign: number;
  unreadable: number;
}

export interface CoverageTally extends CoverageCounts {
  /** Rows of our providers per key_id (current, stale and foreign-form ones): the min-decryption inventory. */
  byKeyId: Record<string, number>;
  /** Rows of other providers, by "<type>:<version>:<name>". */
  otherProviders: Record<string, number>;
  byResource: Record<string, CoverageCounts>;
  /** Up to MAX_EXAMPLES "<key>: <reason>" of unreadable rows, to look at (keys name objects, never hold values). */
  unreadableExamples: string[];
}

/**
 * Distinct key_ids kept in byKeyId; the rest are counted under OTHER_KEY_IDS. A store holds one
 * key_id per Transit version in practice; the cap keeps a corrupted store from growing the map.
 * OTHER_KEY_IDS is not of our form, so a pre-flight reading it can never take it for a version.
 */
export const MAX_KEY_IDS = 1000;
export const OTHER_KEY_IDS = '(other key_ids)';
const MAX_EXAMPLES = 3;
const LABEL_LIMIT = 200;

export const emptyCounts = (): CoverageCounts => ({
  total: 0,
  current: 0,
  stale: 0,
  plaintext: 0,
  foreign: 0,
  unreadable: 0,
});

export const emptyTally = (): CoverageTally => ({
  ...emptyCounts(),
  byKeyId: {},
  otherProviders: {},
  byResource: {},
  unreadableExamples: [],
});

function bump(record: Record<string, number>, label: string, cap: number, overflow: string): void {
  if (record[label] === undefined && Object.keys(record).length >= cap) label = overflow;
  record[label] = (record[label] ?? 0) + 1;
}

/** Adds one classified row of `resource` (e.g. "secrets") stored at `key` to the tally. */
export function tallyRow(tally: CoverageTally, resource: string, key: string, row: RowClass): void {
  const perResource = (tally.byResource[resource] ??= emptyCounts());
  for (const counts of [tally, perResource]) {
    counts.total++;
    counts[row.kind]++;
  }
  if (row.kind === 'current' || row.kind === 'stale' || (row.kind === 'foreign' && row.keyId !== undefined)) {
    bump(tally.byKeyId, row.keyId!.slice(0, 1024), MAX_KEY_IDS, OTHER_KEY_IDS);
  } else if (row.kind === 'foreign') {
    bump(tally.otherProviders, row.provider.slice(0, LABEL_LIMIT), MAX_KEY_IDS, '(other providers)');
  } else if (row.kind === 'unreadable' && tally.unreadableExamples.length < MAX_EXAMPLES) {
    tally.unreadableExamples.push(`${key.slice(0, LABEL_LIMIT)}: ${row.reason}`);
  }
}

/**
 * The status.encryption.coverage view: every encrypted row not under a current key_id (stale,
 * foreign, unreadable) counts as stale, so "0 plaintext and 0 stale" means every row is proven
 * current and total = current + stale + plaintext.
 */
export function coverageStatus(
  counts: CoverageCounts,
  scannedAt: string,
): { total: number; current: number; stale: number; plaintext: number; scannedAt: string } {
  return {
    total: counts.total,
    current: counts.current,
    stale: counts.stale + counts.foreign + counts.unreadable,
    plaintext: counts.plaintext,
    scannedAt,
  };
}
