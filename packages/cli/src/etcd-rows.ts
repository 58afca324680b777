// What an etcd row says about encryption (pure): plaintext, our KMS v2 plugin with the Transit
// key version named in its keyID, another provider, or a row of ours that cannot be read.
import { KMS_STORED_PREFIX } from '@kdc/shared';
import { decodeEncryptedObject } from './kms-proto.ts';

export type RowKind =
  | { kind: 'kms'; version: number }
  | { kind: 'plaintext' }
  | { kind: 'other-provider'; provider: string }
  | { kind: 'unreadable'; reason: string };

const ENC = 'k8s:enc:';
const OURS = Buffer.from(KMS_STORED_PREFIX);

/** Same rule as the plugin's keyid.ts versionOfKeyId: `kdc1.v<N>.<32 base64url chars>`. */
export function versionOfKeyId(keyId: string): number | null {
  const match = /^kdc1\.v(\d{1,9})\.[A-Za-z0-9_-]{32}$/.exec(keyId);
  return match ? Number(match[1]) : null;
}

export function classifyRow(value: Buffer): RowKind {
  if (value.subarray(0, OURS.length).equals(OURS)) {
    let keyID: string;
    try {
      keyID = decodeEncryptedObject(value.subarray(OURS.length)).keyID;
    } catch (error) {
      return { kind: 'unreadable', reason: `EncryptedObject does not decode (${(error as Error).message})` };
    }
    const version = versionOfKeyId(keyID);
    // The keyID is public (it names a key version, not key material), but keep messages short.
    return version === null ? { kind: 'unreadable', reason: `keyID "${keyID.slice(0, 48)}" is not kdc1.v<N>.<id>` } : { kind: 'kms', version };
  }
  const head = value.subarray(0, 128).toString('latin1');
  if (head.startsWith(ENC)) {
    // k8s:enc:<type>:<version>:<name>:... -> "<type>:<version>:<name>"
    return { kind: 'other-provider', provider: head.slice(ENC.length).split(':').slice(0, 3).join(':') };
  }
  return { kind: 'plaintext' };
}

export interface EtcdRowCounts {
  rows: number;
  /** Transit key version -> rows of our plugin wrapped with it. */
  byVersion: Record<number, number>;
  plaintext: number;
  otherProviders: Record<string, number>;
  unreadable: number;
  /** A few unreadable row keys with the reason, to look at. */
  unreadableExamples: string[];
}

export const emptyCounts = (): EtcdRowCounts => ({ rows: 0, byVersion: {}, plaintext: 0, otherProviders: {}, unreadable: 0, unreadableExamples: [] });

export function countRow(counts: EtcdRowCounts, key: string, value: Buffer): void {
  counts.rows++;
  const row = classifyRow(value);
  switch (row.kind) {
    case 'kms':
      counts.byVersion[row.version] = (counts.byVersion[row.version] ?? 0) + 1;
      break;
    case 'plaintext':
      counts.plaintext++;
      break;
    case 'other-provider':
      counts.otherProviders[row.provider] = (counts.otherProviders[row.provider] ?? 0) + 1;
      break;
    case 'unreadable':
      counts.unreadable++;
      if (counts.unreadableExamples.length < 3) counts.unreadableExamples.push(`${key}: ${row.reason}`);
      break;
  }
}
