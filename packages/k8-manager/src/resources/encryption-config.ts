import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { KMS_ENDPOINT, KMS_PROVIDER_NAME } from '@kdc/shared';

// The EncryptionConfiguration file of one cluster (SPEC 3.4).

/** `encrypt`: new writes go through KMS, old plaintext stays readable. `decrypt`: the disable migration. */
export type EncryptionMode = 'encrypt' | 'decrypt';

/** Above the plugin's own OpenBao timeout (2.5 s), so a slow OpenBao fails in the plugin first. */
export const KMS_PROVIDER_TIMEOUT = '3s';

export function buildEncryptionConfiguration(resources: readonly string[], mode: EncryptionMode) {
  const kms = { kms: { apiVersion: 'v2', name: KMS_PROVIDER_NAME, endpoint: KMS_ENDPOINT, timeout: KMS_PROVIDER_TIMEOUT } };
  const identity = { identity: {} };
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [{ resources: [...resources].sort(), providers: mode === 'encrypt' ? [kms, identity] : [identity, kms] }],
  };
}

export function renderEncryptionConfiguration(resources: readonly string[], mode: EncryptionMode): string {
  return stringify(buildEncryptionConfiguration(resources, mode));
}

/** A stable digest of a Secret's data: key order does not matter. */
export function contentHash(data: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`);
  return hash.digest('hex').slice(0, 32);
}
