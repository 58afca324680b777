import type { EncryptableResource } from '@kdc/shared';
import type { Providers } from '../resources/encryption-config.ts';

// Which resources the EncryptionConfiguration encrypts and which it decrypts, from the spec and
// what status says was written before. Rows name their KMS provider in their prefix
// (k8s:enc:kms:v2:<name>:) and kube-apiserver refuses a config that names one KMS v2 provider
// twice, so every resource encrypted under our one provider name stays in one entry with one
// provider order. Hence a resource leaves KMS only with all of them: on disableRequested the
// entry becomes [identity, kms] until a scan proves every row plaintext (status
// decryptingResources empties), and only then does the plugin go. A resource dropped from
// spec.encryption.etcd.resources while its rows are encrypted stays encrypted (`retained`), and
// status says how to get it out; removing kms at once would make those rows unreadable. The state
// lives in status, which tenants cannot write.

export interface ProviderState {
  /** status.encryption.encryptedResources: what the written config encrypts. */
  encryptedResources?: readonly EncryptableResource[];
  /** status.encryption.decryptingResources: what it decrypts, not yet proven plaintext. */
  decryptingResources?: readonly EncryptableResource[];
}

export interface DesiredProviders extends Providers {
  encrypt: EncryptableResource[];
  decrypt: EncryptableResource[];
  /** Dropped from the spec but still encrypted: they stay in the config until a disable. */
  retained: EncryptableResource[];
}

const sorted = (xs: Iterable<EncryptableResource>) => [...new Set(xs)].sort();

export function desiredProviders(input: {
  resources: readonly EncryptableResource[];
  disableRequested: boolean;
  /** The TenantControlPlane runs the KMS plugin now. */
  attached: boolean;
  state: ProviderState | undefined;
}): DesiredProviders {
  // A cluster written before these fields existed encrypted exactly its spec's resources.
  const before = sorted([...(input.state?.encryptedResources ?? (input.attached ? input.resources : [])), ...(input.state?.decryptingResources ?? [])]);
  if (input.disableRequested) return { encrypt: [], decrypt: before, retained: [] };
  const encrypt = sorted([...input.resources, ...before]);
  return { encrypt, decrypt: [], retained: encrypt.filter((r) => !input.resources.includes(r)) };
}

/** The disable migration has proven every row plaintext: nothing is left to read through KMS. */
export const disableComplete = (p: Providers, disableRequested: boolean) => disableRequested && p.encrypt.length === 0 && p.decrypt.length === 0;

/** What status keeps after this reconcile: resources a fresh scan proved plaintext leave the decrypt set. */
export function nextProviderState(p: DesiredProviders, provenPlaintext: readonly EncryptableResource[]): { encryptedResources: EncryptableResource[]; decryptingResources: EncryptableResource[] } {
  return { encryptedResources: p.encrypt, decryptingResources: p.decrypt.filter((r) => !provenPlaintext.includes(r)) };
}
