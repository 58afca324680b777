import { KMS_LIMITS } from '../transport/proto.ts';

// Checks on what kube-apiserver (or anything else on the socket) sends, made before any call to
// OpenBao. Each failure names the field and the rule, and maps to INVALID_ARGUMENT.

export class RequestError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RequestError';
    this.field = field;
  }
}

const CIPHERTEXT = /^vault:v(\d{1,9}):[A-Za-z0-9+/]+={0,2}$/;
// Lowercase RFC 1123 DNS subdomain with at least two labels, as upstream requires of keys.
const FQDN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

// Transit's AES-GCM and ChaCha20-Poly1305 ciphertext: `vault:v<N>:` + base64(12-byte nonce ||
// ciphertext || 16-byte tag).
const AEAD_OVERHEAD_BYTES = 28;

/** The largest plaintext whose ciphertext under `keyVersion` still fits what Decrypt accepts. */
export function maxPlaintextBytes(keyVersion: number): number {
  const prefix = `vault:v${keyVersion}:`.length;
  return Math.floor((KMS_LIMITS.maxCiphertextBytes - prefix) / 4) * 3 - AEAD_OVERHEAD_BYTES;
}

export function checkPlaintext(plaintext: Buffer | undefined): Buffer {
  if (!plaintext || plaintext.length === 0) throw new RequestError('plaintext', 'must not be empty');
  return plaintext;
}

/**
 * kube-apiserver sends a 32-byte seed. A plaintext whose ciphertext Decrypt would refuse is
 * refused here, before OpenBao sees it: encrypting it would store data nobody can read back.
 */
export function checkPlaintextSize(plaintext: Buffer, keyVersion: number): void {
  const max = maxPlaintextBytes(keyVersion);
  if (plaintext.length > max) {
    throw new RequestError(
      'plaintext',
      `is ${plaintext.length} bytes; at most ${max} bytes, so that its ciphertext stays within the ${KMS_LIMITS.maxCiphertextBytes} bytes Decrypt accepts`,
    );
  }
}

/** Parses our own Transit ciphertext; returns the key version it was made with. */
export function checkCiphertext(ciphertext: Buffer | undefined): { text: string; version: number } {
  if (!ciphertext || ciphertext.length === 0) throw new RequestError('ciphertext', 'must not be empty');
  if (ciphertext.length > KMS_LIMITS.maxCiphertextBytes)
    throw new RequestError('ciphertext', `is ${ciphertext.length} bytes; at most ${KMS_LIMITS.maxCiphertextBytes}`);
  const text = ciphertext.toString('latin1');
  const match = CIPHERTEXT.exec(text);
  if (!match)
    throw new RequestError('ciphertext', 'is not a ciphertext this plugin produced (expected vault:v<N>:<base64>)');
  return { text, version: Number(match[1]) };
}

export function checkKeyId(keyId: string | undefined): string {
  if (!keyId) throw new RequestError('key_id', 'must not be empty');
  if (Buffer.byteLength(keyId) > KMS_LIMITS.maxKeyIdBytes)
    throw new RequestError('key_id', `is longer than ${KMS_LIMITS.maxKeyIdBytes} bytes`);
  return keyId;
}

export function checkAnnotations(annotations: Record<string, Buffer> | undefined): void {
  const entries = Object.entries(annotations ?? {});
  let total = 0;
  for (const [key, value] of entries) {
    if (!FQDN.test(key))
      throw new RequestError('annotations', `key "${key.slice(0, 64)}" is not a lowercase fully qualified domain name`);
    total += key.length + (value?.length ?? 0);
  }
  if (total > KMS_LIMITS.maxAnnotationsBytes)
    throw new RequestError('annotations', `total ${total} bytes exceeds ${KMS_LIMITS.maxAnnotationsBytes}`);
  // This plugin never returns annotations, so any it is handed were not made by it.
  if (entries.length > 0)
    throw new RequestError('annotations', 'this plugin produces no annotations; the data was not encrypted by it');
}
