import { createHash } from 'node:crypto';

// The KMS v2 key_id names one Transit key version for ever: it hashes the key's identity
// (server, namespace, mount, name) with the version number and that version's creation time,
// so a deleted and recreated key never reuses an id, and the id is safe to publish (no raw names).

export interface KeyIdentity {
  /** OpenBao address as configured (scheme://host:port). */
  server: string;
  namespace: string;
  mount: string;
  key: string;
}

export const KEY_ID_PREFIX = 'kdc1';

export function keyIdFor(identity: KeyIdentity, version: number, createdAtUnix: number): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([identity.server, identity.namespace, identity.mount, identity.key, version, createdAtUnix]))
    .digest('base64url');
  return `${KEY_ID_PREFIX}.v${version}.${digest.slice(0, 32)}`;
}

/** The version a key_id of ours claims, or null when it is not one of ours at all. */
export function versionOfKeyId(keyId: string): number | null {
  const match = /^kdc1\.v(\d{1,9})\.[A-Za-z0-9_-]{32}$/.exec(keyId);
  return match ? Number(match[1]) : null;
}

/** A short non-reversible fingerprint for logs and metrics labels. */
export function keyIdHash(keyId: string): string {
  return createHash('sha256').update(keyId).digest('hex').slice(0, 16);
}
