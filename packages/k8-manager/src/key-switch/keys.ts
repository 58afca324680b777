import {
  KDC_CLUSTER_CONDITIONS as C,
  kmsPluginSlot,
  keySwitchPhase,
  switchTarget,
  type ConditionInput,
  type KdcClusterStatus,
  type PluginKey,
  type TenantControlPlane,
} from '@kdc/shared';
import { pluginFlagValues } from '../resources/tenant-control-plane.ts';

// The k8-manager side of a key switch (shared/src/cluster/plugin-keys.ts has the rules): which
// plugin instances a cluster runs now, and what its KeySwitch condition says.

/**
 * status.encryption.pluginKeys, or for a cluster attached before that field existed the one
 * instance its TCP runs: slot a, with the Transit key on its --transit-key flag.
 */
export function recordedPluginKeys(
  status: KdcClusterStatus | undefined,
  tcp: TenantControlPlane | null,
  attached: boolean,
): PluginKey[] {
  const recorded = status?.encryption?.pluginKeys;
  if (recorded?.length) return recorded.map((k) => ({ ...k }));
  if (!attached) return [];
  const [transitKey] = pluginFlagValues(
    tcp?.spec.controlPlane.deployment,
    [kmsPluginSlot('a').container],
    '--transit-key',
  );
  const keyRef = status?.encryption?.resolvedKeyRef;
  if (!transitKey || !keyRef) return [];
  return [{ slot: 'a', keyRef, transitKey, mode: 'write' }];
}

export type KeySwitchEvent = { type: 'Normal' | 'Warning'; reason: string; message: string };

/** KeySwitch: undefined for a cluster that never switched and is not asked to. */
export function keySwitchCondition(
  keys: readonly PluginKey[],
  refused: string | undefined,
  previous: KdcClusterStatus | undefined,
): Omit<ConditionInput, 'observedGeneration'> | undefined {
  const writer = keys.find((k) => k.mode === 'write');
  const old = keys.find((k) => k.mode === 'outgoing' || k.mode === 'retiring');
  const target = switchTarget(keys);
  if (refused) return { type: C.keySwitch, status: 'False', reason: 'KeyChangeRefused', message: refused };
  const running = (message: string) => ({
    type: C.keySwitch,
    status: 'True' as const,
    reason: 'KeySwitchInProgress',
    message,
  });
  switch (keySwitchPhase(keys)) {
    case 'adding':
      return running(
        `KMSKey ${target!.keyRef} is added read-only beside ${writer!.keyRef}; it is promoted to write once every control-plane replica can read it`,
      );
    case 'promoted':
      return running(
        `KMSKey ${writer!.keyRef} writes; every row is re-written from ${old!.keyRef}, which stays readable until a scan proves no row needs it`,
      );
    case 'retiring':
      return running(
        `a scan proved no row needs KMSKey ${old!.keyRef}: its plugin leaves the control plane, and its grant once every replica runs without it`,
      );
    default:
      if (!writer || !previous?.conditions?.some((c) => c.type === C.keySwitch)) return undefined;
      return {
        type: C.keySwitch,
        status: 'False',
        reason: 'KeySwitchCompleted',
        message: `every row is under KMSKey ${writer.keyRef}; the previous key's plugin, providers and grant are gone`,
      };
  }
}

/** The events a reconcile's key list change deserves: start, end, and a refusal when it is new. */
export function keySwitchEvents(
  before: readonly PluginKey[],
  after: readonly PluginKey[],
  refused: string | undefined,
  previous: KdcClusterStatus | undefined,
): KeySwitchEvent[] {
  const events: KeySwitchEvent[] = [];
  const [from, to] = [keySwitchPhase(before), keySwitchPhase(after)];
  if (from === 'steady' && to === 'adding')
    events.push({
      type: 'Normal',
      reason: 'KeySwitchStarted',
      message: `switching from KMSKey ${before[0]!.keyRef} to ${switchTarget(after)!.keyRef}: the new key's plugin is added read-only`,
    });
  if (from === 'retiring' && to === 'steady')
    events.push({
      type: 'Normal',
      reason: 'KeySwitchCompleted',
      message: `every row is under KMSKey ${after[0]!.keyRef}; the plugin and grant of ${before.find((k) => k.mode === 'retiring')!.keyRef} are gone`,
    });
  const shown = previous?.conditions?.find((c) => c.type === C.keySwitch);
  if (refused && (shown?.reason !== 'KeyChangeRefused' || shown.message !== refused))
    events.push({ type: 'Warning', reason: 'KeyChangeRefused', message: refused });
  return events;
}
