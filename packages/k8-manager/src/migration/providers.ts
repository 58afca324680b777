import type { EncryptableResource } from '@kdc/shared';
import type { Providers } from '../resources/encryption-config.ts';

// Which resources the EncryptionConfiguration encrypts and which it decrypts, from the spec and
// what status says was written before. A resource dropped from spec.encryption.etcd.resources,
// or all of them on disableRequested, is configured [identity, kms] until a scan proves none of
// its rows is KMS-encrypted (status decryptingResources shrinks then), and only then leaves the
// config: removing kms at once would make every row still encrypted unreadable. Every row names
// its provider and kube-apiserver refuses a name in two entries, so resources that a cluster
// encrypted under one shared name (before names per resource) can only leave KMS together: one
// of them dropped alone stays encrypted (`retained`) and status says so. The state lives in
// status, which tenants cannot write.

export interface ProviderState {
  /** status.encryption.encryptedResources: what the written config encrypts. */
  encryptedResources?: readonly EncryptableResource[];
  /** status.encryption.decryptingResources: what it decrypts, not yet proven plaintext. */
  decryptingResources?: readonly EncryptableResource[];
  /** status.encryption.sharedProviderResources: encrypted under the one shared provider name. */
  sharedProviderResources?: readonly EncryptableResource[];
}

export interface DesiredProviders extends Providers {
  encrypt: EncryptableResource[];
  decrypt: EncryptableResource[];
  /** Dropped from the spec but sharing the provider name with a resource that stays: kept encrypted. */
  retained: EncryptableResource[];
  shared: EncryptableResource[];
}

const sorted = (xs: Iterable<EncryptableResource>) => [...new Set(xs)].sort();

export function desiredProviders(input: {
  resources: readonly EncryptableResource[];
  disableRequested: boolean;
  /** The TenantControlPlane runs the KMS plugin now. */
  attached: boolean;
  state: ProviderState | undefined;
}): DesiredProviders {
  const state = input.state;
  // A cluster written before these fields existed encrypted exactly its spec's resources, all
  // under the one name.
  const legacy = input.attached && state?.encryptedResources === undefined;
  const before = sorted([
    ...(state?.encryptedResources ?? (legacy ? input.resources : [])),
    ...(state?.decryptingResources ?? []),
  ]);
  const shared = sorted(
    state?.sharedProviderResources ?? (legacy && input.resources.length > 1 ? input.resources : []),
  ).filter((r) => before.includes(r));
  if (input.disableRequested) return { encrypt: [], decrypt: before, retained: [], shared };
  const dropped = before.filter((r) => !input.resources.includes(r));
  const retained = shared.some((r) => input.resources.includes(r)) ? dropped.filter((r) => shared.includes(r)) : [];
  return {
    encrypt: sorted([...input.resources, ...retained]),
    decrypt: dropped.filter((r) => !retained.includes(r)),
    retained,
    shared,
  };
}

/** The disable migration has proven every row plaintext: nothing is left to read through KMS. */
export const disableComplete = (p: Providers, disableRequested: boolean) =>
  disableRequested && p.encrypt.length === 0 && p.decrypt.length === 0;

/** What status keeps after this reconcile: resources a fresh scan proved plaintext leave the decrypt set. */
export function nextProviderState(
  p: DesiredProviders,
  provenPlaintext: readonly EncryptableResource[],
): {
  encryptedResources: EncryptableResource[];
  decryptingResources: EncryptableResource[];
  sharedProviderResources: EncryptableResource[] | undefined;
} {
  const decryptingResources = p.decrypt.filter((r) => !provenPlaintext.includes(r));
  const shared = p.shared.filter((r) => p.encrypt.includes(r) || decryptingResources.includes(r));
  // undefined, not absent: it must replace what status held before.
  return {
    encryptedResources: p.encrypt,
    decryptingResources,
    sharedProviderResources: shared.length ? shared : undefined,
  };
}
