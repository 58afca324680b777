import {
  legacyTransitKeyName,
  transitKeyFromKeyId,
  transitKeyName,
  type OwnerRecord,
  type TransitKey,
  type TransitKeyOwner,
} from '@kdc/shared';

// Which Transit key a KMSKey may use, decided from the ownership registry (pure). A KMSKey uses
// `<ns>.<name>` unless it owns a key of the first naming scheme (`<ns>-<name>`), which it keeps:
// data encrypted under it must stay readable. A legacy key without a record is claimed only by the
// KMSKey it was demonstrably created for; every doubt is a refusal an admin resolves, never a silent
// switch to a fresh key (that would leave the tenant's rows unreadable).

export type Ownership =
  /** The registry names this KMSKey (by uid). */
  | { kind: 'owned'; owner: TransitKeyOwner }
  /** Nobody holds the name: this KMSKey may claim it (and then create the key, if there is none). */
  | { kind: 'unclaimed' }
  /** A legacy key with no record, created for this KMSKey: claim it as it is. */
  | { kind: 'legacyAdoptable' }
  /** Another KMSKey holds the name, or a legacy key this KMSKey was using is not provably its own. */
  | { kind: 'refused'; reason: 'TransitKeyOwnedElsewhere' | 'LegacyKeyOwnershipUnproven'; message: string };

export interface OwnershipInput {
  namespace: string;
  name: string;
  uid: string;
  /** `status.keyId`: only a hint (tenant-writable), used to avoid switching keys under a running cluster. */
  keyIdHint?: string;
  /** Registry record for `<ns>.<name>`. */
  current: OwnerRecord | null;
  /** Registry record for `<ns>-<name>`. */
  legacy: OwnerRecord | null;
  /** The Transit key `<ns>-<name>`, if it exists. */
  legacyKey: TransitKey | null;
  /** Every KMSKey of the platform whose legacy name is `<ns>-<name>` (this one included). */
  legacyNamesakes: readonly { uid: string; namespace: string; name: string; creationTimestamp?: string }[];
}

export interface ResolvedOwnership {
  transitKeyName: string;
  ownership: Ownership;
}

const who = (o: TransitKeyOwner) => `KMSKey ${o.namespace}/${o.kmsKey} (uid ${o.uid})`;
const ADMIN_HINT = 'a platform admin can hand a key over with `kubectl kdc keys adopt`';

export function resolveOwnership(i: OwnershipInput): ResolvedOwnership {
  const current = transitKeyName(i.namespace, i.name);
  const legacy = legacyTransitKeyName(i.namespace, i.name);
  if (i.current?.owner.uid === i.uid)
    return { transitKeyName: current, ownership: { kind: 'owned', owner: i.current.owner } };
  if (i.current) {
    return {
      transitKeyName: current,
      ownership: {
        kind: 'refused',
        reason: 'TransitKeyOwnedElsewhere',
        message: `Transit key ${current} belongs to ${who(i.current.owner)}, not to this KMSKey (it was re-created, or imported): ${ADMIN_HINT}, or use another KMSKey name`,
      },
    };
  }
  if (i.legacy?.owner.uid === i.uid)
    return { transitKeyName: legacy, ownership: { kind: 'owned', owner: i.legacy.owner } };
  const wasUsingLegacy = transitKeyFromKeyId(i.keyIdHint) === legacy;
  if (i.legacy) {
    if (!wasUsingLegacy) return { transitKeyName: current, ownership: { kind: 'unclaimed' } };
    return {
      transitKeyName: legacy,
      ownership: {
        kind: 'refused',
        reason: 'TransitKeyOwnedElsewhere',
        message: `this KMSKey used Transit key ${legacy}, which belongs to ${who(i.legacy.owner)}: ${ADMIN_HINT}`,
      },
    };
  }
  if (i.legacyKey) {
    const v1 = i.legacyKey.versions[1];
    // The key was created for a KMSKey that existed before it (both times in whole seconds). No
    // slack for clock skew: a key planted a second before a KMSKey must not pass, and a true owner
    // whose clocks disagree only gets a refusal an admin resolves, never the wrong key.
    const creators = i.legacyNamesakes.filter(
      (k) => k.creationTimestamp !== undefined && v1 !== undefined && Date.parse(k.creationTimestamp) / 1000 <= v1,
    );
    if (creators.length === 1 && creators[0]!.uid === i.uid)
      return { transitKeyName: legacy, ownership: { kind: 'legacyAdoptable' } };
    if (wasUsingLegacy || creators.some((k) => k.uid === i.uid)) {
      const others = i.legacyNamesakes.filter((k) => k.uid !== i.uid).map((k) => `${k.namespace}/${k.name}`);
      return {
        transitKeyName: legacy,
        ownership: {
          kind: 'refused',
          reason: 'LegacyKeyOwnershipUnproven',
          message: `Transit key ${legacy} (first naming scheme) cannot be proven to be this KMSKey's${others.length ? `: KMSKey ${others.join(', ')} map to the same name` : ''}; ${ADMIN_HINT}`,
        },
      };
    }
  }
  return { transitKeyName: current, ownership: { kind: 'unclaimed' } };
}
