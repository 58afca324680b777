// A valid schemaVersion 2 metadata.json and what it binds, for the tests that read or check one.
import { kdfInfo, type BoundMetadata } from './format/kdf.ts';
import { ALGORITHM, KDF_NAME, SCHEMA_VERSION, ciphertextSizeFor } from './format/spec.ts';
import type { MetadataV2 } from './metadata.ts';

export const SAMPLE_BOUND: BoundMetadata = {
  schemaVersion: SCHEMA_VERSION,
  algorithm: ALGORITHM,
  transitKey: 'ns-prod-etcd',
  createdAt: '2026-03-04T05:06:07.890Z',
  source: { cluster: 'prod', namespace: 'ns' },
  segmentSize: 1 << 20,
};

export const SAMPLE_V2: MetadataV2 = {
  schemaVersion: 2,
  algorithm: ALGORITHM,
  transitKey: SAMPLE_BOUND.transitKey,
  transitKeyVersion: 2,
  wrappedDek: 'vault:v2:QUJD',
  createdAt: SAMPLE_BOUND.createdAt,
  source: SAMPLE_BOUND.source,
  etcdSnapshotSha256: 'a'.repeat(64),
  segmentSize: SAMPLE_BOUND.segmentSize,
  plaintextSize: 5_000_000,
  ciphertextSize: ciphertextSizeFor(5_000_000, SAMPLE_BOUND.segmentSize),
  kdf: { name: KDF_NAME, salt: 'b'.repeat(64), info: kdfInfo(SAMPLE_BOUND) },
};
