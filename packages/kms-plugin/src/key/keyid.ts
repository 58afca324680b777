import { createHash } from 'node:crypto';

// The KMS v2 key_id names one Transit key version for ever: it hashes the key's identity with the
// version number and that version's creation time, so a deleted and recreated key never reuses an
// id, and the id is safe to publish (no raw names).
//
// kdc2 (published): the identity is where the key lives inside OpenBao (namespace, mount, name),
// so reaching the same server by another hostname keeps every key_id.
// kdc1 (earlier releases, still decrypted): the hash also covers the URL the plugin was given, so
// a kdc1 id can only be recognised by a plugin told that URL (--legacy-key-id-openbao-addr).

export interface KeyIdentity {
  /** OpenBao namespace; empty = root. */
  namespace: string;
  mount: string;
  key: string;
}

export type KeyIdForm = 'kdc2' | 'kdc1';
export const KEY_ID_FORMS: readonly KeyIdForm[] = ['kdc2', 'kdc1'];
export const KEY_ID_PREFIX: KeyIdForm = 'kdc2';
export const LEGACY_KEY_ID_PREFIX: KeyIdForm = 'kdc1';

/** Either form: `kdc1|kdc2` `.v<version>.` 32 base64url characters (SHA-256, truncated). */
export const KEY_ID_PATTERN = /^kdc([12])\.v(\d{1,9})\.[A-Za-z0-9_-]{32}$/;

const digest = (parts: unknown[]) =>
  createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 32);

// `acme/` and `acme`, `transit/` and `transit` name the same place: one spelling, one key_id.
const trimSlashes = (value: string) => value.replace(/^\/+|\/+$/g, '');

/** The published form: independent of the URL OpenBao is reached by. */
export function keyIdFor(identity: KeyIdentity, version: number, createdAtUnix: number): string {
  const hash = digest([
    KEY_ID_PREFIX,
    trimSlashes(identity.namespace),
    trimSlashes(identity.mount),
    identity.key,
    version,
    createdAtUnix,
  ]);
  return `${KEY_ID_PREFIX}.v${version}.${hash}`;
}

/**
 * The form of releases before kdc2, byte for byte: `server` is the --openbao-addr that plugin was
 * given (trailing slash removed), namespace and mount as they were configured.
 */
export function legacyKeyIdFor(server: string, identity: KeyIdentity, version: number, createdAtUnix: number): string {
  const hash = digest([server, identity.namespace, identity.mount, identity.key, version, createdAtUnix]);
  return `${LEGACY_KEY_ID_PREFIX}.v${version}.${hash}`;
}

/** The version a key_id of ours (either form) claims, or null when it is not one of ours at all. */
export function versionOfKeyId(keyId: string): number | null {
  const match = KEY_ID_PATTERN.exec(keyId);
  return match ? Number(match[2]) : null;
}

/** A short non-reversible fingerprint for logs and metrics labels. */
export function keyIdHash(keyId: string): string {
  return createHash('sha256').update(keyId).digest('hex').slice(0, 16);
}
