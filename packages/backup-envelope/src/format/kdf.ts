// The key schedule: one HKDF over the data key yields the segment key and the key check, with
// the bound metadata as `info`, so editing any bound field of metadata.json changes both.
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { BackupError } from '../errors.ts';
import { KDF_INFO_PREFIX, type ALGORITHM, type SCHEMA_VERSION } from './spec.ts';

/** The backup metadata that must never change: the key derivation binds it. */
export interface BoundMetadata {
  schemaVersion: typeof SCHEMA_VERSION;
  algorithm: typeof ALGORITHM;
  transitKey: string;
  createdAt: string;
  source: { cluster: string; namespace: string };
  segmentSize: number;
}

/** HKDF `info`: a fixed label, a newline, then the bound fields as JSON in this exact order. */
export function kdfInfo(bound: BoundMetadata): string {
  return (
    KDF_INFO_PREFIX +
    JSON.stringify({
      schemaVersion: bound.schemaVersion,
      algorithm: bound.algorithm,
      transitKey: bound.transitKey,
      createdAt: bound.createdAt,
      source: { cluster: bound.source.cluster, namespace: bound.source.namespace },
      segmentSize: bound.segmentSize,
    })
  );
}

/** HKDF-SHA256 -> (segment key, key check). The caller zeroes `dek` afterwards. */
export function deriveKeys(dek: Uint8Array, salt: Buffer, info: string): { key: KeyObject; keyCheck: Buffer } {
  if (dek.length !== 32)
    throw new BackupError('WRONG_KEY', `the data key is ${dek.length} bytes, expected 32 (a 256-bit Transit data key)`);
  const okm = Buffer.from(hkdfSync('sha256', dek, salt, Buffer.from(info, 'utf8'), 64));
  const key = createSecretKey(okm.subarray(0, 32));
  const keyCheck = Buffer.from(okm.subarray(32, 64));
  okm.fill(0);
  return { key, keyCheck };
}
