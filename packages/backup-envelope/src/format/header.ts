import { BackupError } from '../errors.ts';
import { NONCE_PREFIX_LENGTH } from './segment.ts';
import {
  ALGORITHM,
  ALGORITHM_ID,
  HEADER_LENGTH,
  KEY_CHECK_LENGTH,
  MAGIC,
  SALT_LENGTH,
  SCHEMA_VERSION,
} from './spec.ts';

export interface Header {
  version: number;
  algorithmId: number;
  segmentSize: number;
  salt: Buffer;
  noncePrefix: Buffer;
  keyCheck: Buffer;
  bytes: Buffer;
}

export function encodeHeader(input: {
  segmentSize: number;
  salt: Buffer;
  noncePrefix: Buffer;
  keyCheck: Buffer;
}): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  let at = MAGIC.copy(header, 0);
  header[at++] = SCHEMA_VERSION;
  header[at++] = ALGORITHM_ID;
  at = header.writeUInt32BE(input.segmentSize, at);
  at += input.salt.copy(header, at);
  at += input.noncePrefix.copy(header, at);
  input.keyCheck.copy(header, at);
  return header;
}

/** Parses the fixed header; refuses anything that is not a version-2 envelope. */
export function parseHeader(bytes: Buffer): Header {
  if (bytes.length < HEADER_LENGTH) {
    throw new BackupError(
      'TRUNCATED',
      `snapshot.db.enc is ${bytes.length} bytes, shorter than its ${HEADER_LENGTH}-byte header: the file was truncated`,
      { size: bytes.length },
    );
  }
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupError(
      'HEADER_INVALID',
      'snapshot.db.enc does not start with the "KDC-SNAP" magic: it is not a schemaVersion 2 backup envelope, or its first bytes were altered',
    );
  }
  let at = MAGIC.length;
  const version = bytes[at++]!;
  const algorithmId = bytes[at++]!;
  if (version !== SCHEMA_VERSION)
    throw new BackupError(
      'HEADER_INVALID',
      `snapshot.db.enc has format version ${version} in its header; metadata.json says ${SCHEMA_VERSION}: the header was altered`,
    );
  if (algorithmId !== ALGORITHM_ID)
    throw new BackupError(
      'HEADER_INVALID',
      `snapshot.db.enc names algorithm ${algorithmId} in its header; only ${ALGORITHM_ID} (${ALGORITHM}) exists: the header was altered`,
    );
  const segmentSize = bytes.readUInt32BE(at);
  at += 4;
  const salt = bytes.subarray(at, (at += SALT_LENGTH));
  const noncePrefix = bytes.subarray(at, (at += NONCE_PREFIX_LENGTH));
  const keyCheck = bytes.subarray(at, (at += KEY_CHECK_LENGTH));
  return { version, algorithmId, segmentSize, salt, noncePrefix, keyCheck, bytes: bytes.subarray(0, HEADER_LENGTH) };
}
