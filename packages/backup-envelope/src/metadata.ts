// metadata.json: what a restore needs besides snapshot.db.enc (SPEC 6). Parsed strictly; any
// field the key derivation binds is checked against kdf.info so an edit is named, not guessed.
import { ciphertextVersion } from '@kdc/shared/openbao';
import { BackupError } from './errors.ts';
import { kdfInfo, type BoundMetadata } from './format/kdf.ts';
import {
  ALGORITHM,
  KDF_INFO_PREFIX,
  KDF_NAME,
  SCHEMA_VERSION,
  checkPlaintextSize,
  checkSegmentSize,
  ciphertextSizeFor,
} from './format/spec.ts';
import { V1_ALGORITHM } from './legacy.ts';

export interface MetadataV2 {
  schemaVersion: 2;
  algorithm: typeof ALGORITHM;
  transitKey: string;
  transitKeyVersion: number;
  wrappedDek: string;
  createdAt: string;
  source: { cluster: string; namespace: string };
  /** SHA-256 (hex) of the plaintext snapshot, i.e. exactly what `etcdctl snapshot save` writes. */
  etcdSnapshotSha256: string;
  segmentSize: number;
  plaintextSize: number;
  ciphertextSize: number;
  kdf: { name: typeof KDF_NAME; salt: string; info: string };
  /** Informational, not bound: what etcd reported while streaming the snapshot. */
  etcd?: { storageVersion?: string; revision?: number; databaseSize?: number };
}

export interface MetadataV1 {
  schemaVersion: 1;
  algorithm: typeof V1_ALGORITHM;
  transitKey: string;
  transitKeyVersion: number;
  wrappedDek: string;
  createdAt: string;
  source?: { cluster?: string; namespace?: string };
  etcdSnapshotSha256?: string;
  [field: string]: unknown;
}

export type BackupMetadata = MetadataV1 | MetadataV2;

const HEX64 = /^[0-9a-f]{64}$/;
const WRAPPED = /^vault:v(\d+):[A-Za-z0-9+/=]+$/;

function fail(message: string, key?: string): never {
  throw new BackupError('INVALID_METADATA', `${key ? `${key}metadata.json` : 'metadata.json'}: ${message}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function boundOf(m: MetadataV2): BoundMetadata {
  return {
    schemaVersion: SCHEMA_VERSION,
    algorithm: ALGORITHM,
    transitKey: m.transitKey,
    createdAt: m.createdAt,
    source: { cluster: m.source.cluster, namespace: m.source.namespace },
    segmentSize: m.segmentSize,
  };
}

/** What a decryptor checks a v2 snapshot object against: everything metadata.json binds. */
export function decryptExpectation(m: MetadataV2) {
  return {
    bound: boundOf(m),
    salt: Buffer.from(m.kdf.salt, 'hex'),
    sha256: Buffer.from(m.etcdSnapshotSha256, 'hex'),
    plaintextSize: m.plaintextSize,
    ciphertextSize: m.ciphertextSize,
  };
}

/** Which bound fields differ between kdf.info and the metadata's own fields. */
function editedBoundFields(m: MetadataV2): string[] {
  let recorded: Record<string, unknown>;
  try {
    if (!m.kdf.info.startsWith(KDF_INFO_PREFIX)) return ['kdf.info'];
    recorded = JSON.parse(m.kdf.info.slice(KDF_INFO_PREFIX.length)) as Record<string, unknown>;
  } catch {
    return ['kdf.info'];
  }
  const actual = JSON.parse(kdfInfo(boundOf(m)).slice(KDF_INFO_PREFIX.length)) as Record<string, unknown>;
  const edited: string[] = [];
  for (const field of ['schemaVersion', 'algorithm', 'transitKey', 'createdAt', 'segmentSize'] as const) {
    if (recorded[field] !== actual[field]) edited.push(field);
  }
  const rs = isObject(recorded.source) ? recorded.source : {};
  for (const field of ['cluster', 'namespace'] as const) {
    if (rs[field] !== m.source[field]) edited.push(`source.${field}`);
  }
  return edited.length ? edited : ['kdf.info'];
}

/** Parses and checks metadata.json. `where` (the backup prefix) only decorates messages. */
export function parseMetadata(text: string, where = ''): BackupMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    fail('is not valid JSON', where);
  }
  if (!isObject(raw)) fail('is not a JSON object', where);
  const version = raw.schemaVersion;
  if (version !== 1 && version !== 2) {
    throw new BackupError(
      'UNSUPPORTED_FORMAT',
      `${where}metadata.json has schemaVersion ${JSON.stringify(version)}; this reader knows 1 (single seal) and 2 (segmented stream): upgrade the backup tool`,
    );
  }
  const str = (field: string) => {
    const v = raw[field];
    if (typeof v !== 'string' || v.length === 0) fail(`"${field}" must be a non-empty string`, where);
    return v;
  };
  const transitKey = str('transitKey');
  const wrappedDek = str('wrappedDek');
  const createdAt = str('createdAt');
  if (Number.isNaN(Date.parse(createdAt)))
    fail(`"createdAt" is not a date: ${JSON.stringify(createdAt).slice(0, 60)}`, where);
  const match = WRAPPED.exec(wrappedDek);
  if (!match) fail('"wrappedDek" is not a Transit ciphertext (vault:vN:...)', where);
  const wrappedVersion = Number(match[1]);
  const transitKeyVersion = raw.transitKeyVersion ?? wrappedVersion;
  if (transitKeyVersion !== wrappedVersion) {
    fail(
      `"transitKeyVersion" is ${JSON.stringify(transitKeyVersion)} but wrappedDek is wrapped with version ${wrappedVersion}: the two must agree (an interrupted or hand-made edit)`,
      where,
    );
  }

  if (version === 1) {
    const algorithm = raw.algorithm ?? V1_ALGORITHM;
    if (algorithm !== V1_ALGORITHM)
      throw new BackupError(
        'UNSUPPORTED_FORMAT',
        `${where}metadata.json (schemaVersion 1) has algorithm ${JSON.stringify(algorithm)}; only ${V1_ALGORITHM} exists`,
      );
    const sha = raw.etcdSnapshotSha256;
    if (sha !== undefined && (typeof sha !== 'string' || !HEX64.test(sha.toLowerCase())))
      fail('"etcdSnapshotSha256" is not a hex SHA-256', where);
    const source = raw.source;
    if (source !== undefined && !isObject(source)) fail('"source" must be an object', where);
    return {
      ...raw,
      schemaVersion: 1,
      algorithm: V1_ALGORITHM,
      transitKey,
      transitKeyVersion: wrappedVersion,
      wrappedDek,
      createdAt,
      ...(typeof sha === 'string' ? { etcdSnapshotSha256: sha.toLowerCase() } : {}),
    };
  }

  if (raw.algorithm !== ALGORITHM)
    throw new BackupError(
      'UNSUPPORTED_FORMAT',
      `${where}metadata.json (schemaVersion 2) has algorithm ${JSON.stringify(raw.algorithm)}; only ${ALGORITHM} exists`,
    );
  const source = raw.source;
  if (
    !isObject(source) ||
    typeof source.cluster !== 'string' ||
    !source.cluster ||
    typeof source.namespace !== 'string' ||
    !source.namespace
  ) {
    fail('"source" must be {cluster, namespace} with non-empty strings', where);
  }
  const sha = str('etcdSnapshotSha256');
  if (!HEX64.test(sha)) fail('"etcdSnapshotSha256" is not a lowercase hex SHA-256', where);
  for (const field of ['segmentSize', 'plaintextSize', 'ciphertextSize'] as const) {
    if (!isCount(raw[field])) fail(`"${field}" must be a non-negative integer`, where);
  }
  const segmentSize = raw.segmentSize as number;
  try {
    checkSegmentSize(segmentSize);
  } catch (error) {
    fail(`"segmentSize": ${(error as Error).message}`, where);
  }
  const plaintextSize = raw.plaintextSize as number;
  const ciphertextSize = raw.ciphertextSize as number;
  // Before anything is sized from them: the same bounds the writers keep.
  try {
    checkPlaintextSize(plaintextSize, segmentSize);
  } catch (error) {
    fail(`"plaintextSize": ${(error as Error).message}`, where);
  }
  if (ciphertextSizeFor(plaintextSize, segmentSize) !== ciphertextSize) {
    fail(
      `"ciphertextSize" ${ciphertextSize} does not follow from plaintextSize ${plaintextSize} and segmentSize ${segmentSize} (expected ${ciphertextSizeFor(plaintextSize, segmentSize)}): the sizes were edited`,
      where,
    );
  }
  const kdf = raw.kdf;
  if (
    !isObject(kdf) ||
    kdf.name !== KDF_NAME ||
    typeof kdf.salt !== 'string' ||
    !HEX64.test(kdf.salt) ||
    typeof kdf.info !== 'string'
  ) {
    fail(`"kdf" must be {name: "${KDF_NAME}", salt: <64 hex>, info: <string>}`, where);
  }
  const metadata: MetadataV2 = {
    schemaVersion: 2,
    algorithm: ALGORITHM,
    transitKey,
    transitKeyVersion: wrappedVersion,
    wrappedDek,
    createdAt,
    source: { cluster: source.cluster, namespace: source.namespace },
    etcdSnapshotSha256: sha,
    segmentSize,
    plaintextSize,
    ciphertextSize,
    kdf: { name: KDF_NAME, salt: kdf.salt, info: kdf.info },
    ...(isObject(raw.etcd) ? { etcd: raw.etcd } : {}),
  };
  if (kdf.info !== kdfInfo(boundOf(metadata))) {
    const edited = editedBoundFields(metadata);
    throw new BackupError(
      'METADATA_ALTERED',
      `${where}metadata.json was edited: ${edited.join(', ')} no longer match${edited.length === 1 ? 'es' : ''} the values the backup was written with (recorded in kdf.info and bound into the key derivation)`,
      { fields: edited },
    );
  }
  return metadata;
}

/** Key version of a metadata's wrapped DEK (the authoritative one; transitKeyVersion mirrors it). */
export function wrappedVersion(metadata: BackupMetadata): number {
  return ciphertextVersion(metadata.wrappedDek) ?? metadata.transitKeyVersion;
}

/** metadata.json text: stable field order, two-space indent, trailing newline. */
export function serializeMetadata(metadata: BackupMetadata): string {
  return `${JSON.stringify(metadata, null, 2)}\n`;
}

/** The same metadata with a rewrapped DEK (rewrap changes nothing else). */
export function withWrappedDek<T extends BackupMetadata>(metadata: T, wrappedDek: string, version: number): T {
  return { ...metadata, transitKeyVersion: version, wrappedDek };
}
