import {
  OwnershipRegistry,
  legacyTransitKeyName,
  transitKeyFromKeyId,
  transitKeyName,
  type KubeObject,
  type OpenBaoClient,
} from '@kdc/shared';

// The Transit key a cluster's policy may grant for one of its KMSKeys: the name the ownership
// registry gives to that KMSKey's uid, never a name taken from the KMSKey's (tenant-writable)
// status. An answer that confirms what is asked is cached (ttlMs: the drift period, at least a few
// minutes): a record changes hands only by an admin's hand-over, and the cache keeps the
// steady-state resync of a thousand clusters cheap. One that does not confirm it is read again
// every time, so a hand-over to the asking KMSKey is seen at its next reconcile.

export type TransitKeyLookup = ((organization: string | undefined, kmsKey: KubeObject) => Promise<string | null>) & {
  /**
   * Whether a Transit key belongs to a KMSKey of `namespace` (that KMSKey may be gone): a key a
   * cluster's plugin still uses after a key switch is granted only then, whatever status says.
   */
  ownedByNamespace?: (organization: string | undefined, transitKey: string, namespace: string) => Promise<boolean>;
};

export function transitKeyLookup(
  openbao: OpenBaoClient,
  ttlMs = 300_000,
  now: () => number = Date.now,
): TransitKeyLookup {
  const owners = new Map<string, { uid: string; namespace: string; at: number }>();

  /** Whether the registry's record of `name` confirms what is asked of its owner (cached when it does). */
  async function confirmed(
    organization: string | undefined,
    name: string,
    confirms: (owner: { uid: string; namespace: string }) => boolean,
  ): Promise<boolean> {
    const cacheKey = `${organization ?? ''}\n${name}`;
    const hit = owners.get(cacheKey);
    if (hit && now() - hit.at < ttlMs && confirms(hit)) return true;
    const record = await new OwnershipRegistry(openbao.withNamespace(organization)).read(name);
    if (record) owners.set(cacheKey, { uid: record.owner.uid, namespace: record.owner.namespace, at: now() });
    return record !== null && confirms(record.owner);
  }

  const lookup: TransitKeyLookup = async (organization, kmsKey) => {
    const { namespace, name, uid } = kmsKey.metadata as { namespace: string; name: string; uid: string };
    const hint = transitKeyFromKeyId((kmsKey.status as { keyId?: string } | undefined)?.keyId);
    const candidates = [
      ...new Set(
        [hint, transitKeyName(namespace, name), legacyTransitKeyName(namespace, name)].filter((n): n is string =>
          Boolean(n),
        ),
      ),
    ];
    for (const candidate of candidates)
      if (await confirmed(organization, candidate, (o) => o.uid === uid)) return candidate;
    return null;
  };
  lookup.ownedByNamespace = async (organization, transitKey, namespace) =>
    confirmed(organization, transitKey, (o) => o.namespace === namespace);
  return lookup;
}
