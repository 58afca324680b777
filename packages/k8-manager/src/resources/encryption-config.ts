import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { KMS_ENDPOINT, KMS_PROVIDER_NAME } from '@kdc/shared';

// The EncryptionConfiguration file of one cluster (SPEC 3.4).

/**
 * Which resources are written through KMS and which are being decrypted. `encrypt`: `[kms,
 * identity]` (identity keeps rows written before readable). `decrypt`: `[identity, kms]` while
 * their rows are re-written to plaintext (the disable migration); kms stays second so rows not
 * re-written yet stay readable. Never both: kube-apiserver refuses a config naming one KMS v2
 * provider in two entries, and every row names the provider that wrote it.
 */
export interface Providers {
  encrypt: readonly string[];
  decrypt: readonly string[];
}

/** Above the plugin's own OpenBao timeout (2.5 s), so a slow OpenBao fails in the plugin first. */
export const KMS_PROVIDER_TIMEOUT = '3s';

export function buildEncryptionConfiguration(providers: Providers) {
  if (providers.encrypt.length && providers.decrypt.length) throw new Error('one KMS provider cannot both encrypt some resources and decrypt others');
  const kms = { kms: { apiVersion: 'v2', name: KMS_PROVIDER_NAME, endpoint: KMS_ENDPOINT, timeout: KMS_PROVIDER_TIMEOUT } };
  const identity = { identity: {} };
  const entries = [
    ...(providers.encrypt.length ? [{ resources: [...providers.encrypt].sort(), providers: [kms, identity] }] : []),
    ...(providers.decrypt.length ? [{ resources: [...providers.decrypt].sort(), providers: [identity, kms] }] : []),
  ];
  return { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'EncryptionConfiguration', resources: entries };
}

export function renderEncryptionConfiguration(providers: Providers): string {
  return stringify(buildEncryptionConfiguration(providers));
}

/** A stable digest of a Secret's data: key order does not matter. */
export function contentHash(data: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
  return hash.digest('hex').slice(0, 32);
}
