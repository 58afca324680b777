import { PLUGIN_SLOTS, type PluginSlot } from '../names.ts';

// A key change (a new keyRef, or a new KMSKey behind it) without one unreadable row (SPEC 5):
// two plugin instances side by side, each with its own Transit key, socket and provider names.
// The new one is added read-only, then promoted to write, every row is re-written, a scan proves
// none is left under the old key, and only then does the old instance leave the config; its
// key's grant goes once every replica runs without it. One phase per call, like the migration
// planner. The list lives in status.encryption.pluginKeys (tenants cannot write status); both
// controllers read it: k8-manager builds the sidecars and providers from it, the
// encryption-reconciler grants exactly its keys.

export const PLUGIN_KEY_MODES = ['write', 'incoming', 'outgoing', 'retiring'] as const;
/**
 * write: the first provider, encrypts every new row. incoming: the new key, read-only until every
 * replica can read it. outgoing: the old key, read-only while its rows are re-written. retiring:
 * out of the config, still granted until no replica runs it.
 */
export type PluginKeyMode = (typeof PLUGIN_KEY_MODES)[number];

export interface KeyTarget {
  keyRef: string;
  transitKey: string;
}

export interface PluginKey extends KeyTarget {
  slot: PluginSlot;
  mode: PluginKeyMode;
}

export type KeySwitchPhase = 'none' | 'steady' | 'adding' | 'promoted' | 'retiring';

export function keySwitchPhase(keys: readonly PluginKey[]): KeySwitchPhase {
  if (!keys.some((k) => k.mode === 'write')) return 'none';
  if (keys.some((k) => k.mode === 'incoming')) return 'adding';
  if (keys.some((k) => k.mode === 'outgoing')) return 'promoted';
  if (keys.some((k) => k.mode === 'retiring')) return 'retiring';
  return 'steady';
}

/** The instances the TCP runs and the config names, writer first. */
export const configuredKeys = (keys: readonly PluginKey[]): PluginKey[] => [
  ...keys.filter((k) => k.mode === 'write'),
  ...keys.filter((k) => k.mode === 'incoming' || k.mode === 'outgoing'),
];

/** The key the plugin writes with once the switch under way (if any) is through. */
export function switchTarget(keys: readonly PluginKey[]): PluginKey | undefined {
  return keys.find((k) => k.mode === 'incoming') ?? keys.find((k) => k.mode === 'write');
}

export interface KeyChangeInput {
  /** status.encryption.pluginKeys (or what an older controller left on the TCP). */
  keys: readonly PluginKey[];
  /** The spec's etcd key, resolved to its Transit key; undefined until it can be. */
  desired: KeyTarget | undefined;
  /** A migration (enable, rewrap, decrypt, switch) is running: a key change waits for it. */
  migrating: boolean;
}

/**
 * Why the spec's key is not applied now, or undefined. Both controllers ask: a refused change
 * is granted nothing and changes nothing; once the running work is proven complete, the newest
 * keyRef is applied.
 */
export function refusedKeyChange(input: KeyChangeInput): string | undefined {
  const { keys, desired } = input;
  const writer = keys.find((k) => k.mode === 'write');
  if (!desired || !writer) return undefined;
  const phase = keySwitchPhase(keys);
  if (phase === 'steady') {
    if (desired.transitKey === writer.transitKey || !input.migrating) return undefined;
    return `keyRef ${desired.keyRef} is not applied while a migration of the rows runs (see the Encrypted condition): nothing was changed for it; it is applied once that migration is proven complete`;
  }
  const target = switchTarget(keys)!;
  if (desired.transitKey === target.transitKey) return undefined;
  const from = keys.find((k) => k.mode === 'outgoing' || k.mode === 'retiring') ?? writer;
  return `keyRef ${desired.keyRef} is refused while the switch from KMSKey ${from.keyRef} to ${target.keyRef} runs (${phase}): nothing was changed for it; set keyRef back to ${target.keyRef}, or wait: the newest keyRef is applied once this switch is proven complete`;
}

/** Transit keys the plugin policy grants: every key an instance still uses, and the spec's unless refused. */
export function grantedTransitKeys(input: KeyChangeInput): string[] {
  const keys = input.keys.map((k) => k.transitKey);
  if (input.desired && !refusedKeyChange(input)) keys.push(input.desired.transitKey);
  return [...new Set(keys)];
}

/** What the KMS pre-flight proves: the key the plugin writes with once the current work is through. */
export function preflightKey(input: KeyChangeInput): KeyTarget | undefined {
  if (refusedKeyChange(input)) return switchTarget(input.keys);
  return input.desired ?? switchTarget(input.keys);
}

export interface NextKeysInput extends KeyChangeInput {
  /** Every replica runs the config built from `keys` and its plugins are ready. */
  rolledOut: boolean;
  /** A scan under that config proved no row needs a re-write (none left under the old key). */
  proven: boolean;
}

const otherSlot = (slot: PluginSlot): PluginSlot => PLUGIN_SLOTS.find((s) => s !== slot)!;

/** The next key list (one phase per call; the same list when nothing may change). */
export function nextPluginKeys(input: NextKeysInput): PluginKey[] {
  const { keys, desired } = input;
  const writer = keys.find((k) => k.mode === 'write');
  if (!writer) return desired ? [{ slot: PLUGIN_SLOTS[0], ...desired, mode: 'write' }] : [...keys];
  switch (keySwitchPhase(keys)) {
    case 'steady':
      if (!desired || desired.transitKey === writer.transitKey || refusedKeyChange(input)) return [...keys];
      return [writer, { slot: otherSlot(writer.slot), ...desired, mode: 'incoming' }];
    case 'adding': {
      // Promoted only once every replica can read the new key: an old replica would fail on rows a new one wrote.
      if (!input.rolledOut) return [...keys];
      const incoming = keys.find((k) => k.mode === 'incoming')!;
      return [
        { ...incoming, mode: 'write' },
        { ...writer, mode: 'outgoing' },
      ];
    }
    case 'promoted':
      return input.proven
        ? [writer, ...keys.filter((k) => k.mode === 'outgoing').map((k) => ({ ...k, mode: 'retiring' as const }))]
        : [...keys];
    case 'retiring':
      return input.rolledOut ? [writer] : [...keys];
    default:
      return [...keys];
  }
}
