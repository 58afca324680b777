import { describe, expect, it } from 'vitest';
import type { KdcClusterStatus, PluginKey, TenantControlPlane } from '@kdc/shared';
import { keySwitchCondition, keySwitchEvents, recordedPluginKeys } from './keys.ts';

const steady: PluginKey[] = [{ slot: 'a', keyRef: 'k1', transitKey: 'ns.k1', mode: 'write' }];
const adding: PluginKey[] = [...steady, { slot: 'b', keyRef: 'k2', transitKey: 'ns.k2', mode: 'incoming' }];
const retiring: PluginKey[] = [
  { slot: 'b', keyRef: 'k2', transitKey: 'ns.k2', mode: 'write' },
  { slot: 'a', keyRef: 'k1', transitKey: 'ns.k1', mode: 'retiring' },
];
const tcp = (args: string[]) =>
  ({
    spec: { controlPlane: { deployment: { additionalInitContainers: [{ name: 'kms-plugin', image: 'x', args }] } } },
  }) as unknown as TenantControlPlane;
const withCondition = (reason: string, message = 'm'): KdcClusterStatus => ({
  conditions: [{ type: 'KeySwitch', status: 'True', reason, message, lastTransitionTime: '2026-12-01T00:00:00Z' }],
});

describe('recordedPluginKeys', () => {
  it('status wins; an attached cluster from before the field runs slot a with its --transit-key; a detached one runs nothing', () => {
    expect(recordedPluginKeys({ encryption: { pluginKeys: adding } }, null, true)).toEqual(adding);
    expect(
      recordedPluginKeys({ encryption: { resolvedKeyRef: 'k1' } }, tcp(['--socket=/x', '--transit-key=ns.k1']), true),
    ).toEqual(steady);
    expect(recordedPluginKeys({ encryption: { resolvedKeyRef: 'k1' } }, tcp(['--transit-key=ns.k1']), false)).toEqual(
      [],
    );
    expect(recordedPluginKeys(undefined, tcp(['--transit-key=ns.k1']), true)).toEqual([]);
  });
});

describe('KeySwitch condition and events', () => {
  it('says nothing for a cluster that never switched', () => {
    expect(keySwitchCondition(steady, undefined, {})).toBeUndefined();
    expect(keySwitchEvents(steady, steady, undefined, {})).toEqual([]);
  });
  it('a switch: started, in progress, completed', () => {
    expect(keySwitchEvents(steady, adding, undefined, {}).map((e) => e.reason)).toEqual(['KeySwitchStarted']);
    expect(keySwitchCondition(adding, undefined, {})).toMatchObject({
      status: 'True',
      reason: 'KeySwitchInProgress',
      message: expect.stringContaining('k2 is added read-only beside k1'),
    });
    expect(
      keySwitchEvents(retiring, [retiring[0]!], undefined, withCondition('KeySwitchInProgress')).map((e) => e.reason),
    ).toEqual(['KeySwitchCompleted']);
    expect(keySwitchCondition([retiring[0]!], undefined, withCondition('KeySwitchInProgress'))).toMatchObject({
      status: 'False',
      reason: 'KeySwitchCompleted',
    });
  });
  it('a refusal is a condition on every reconcile and an event once per message', () => {
    expect(keySwitchCondition(adding, 'no', {})).toMatchObject({
      status: 'False',
      reason: 'KeyChangeRefused',
      message: 'no',
    });
    expect(keySwitchEvents(adding, adding, 'no', withCondition('KeySwitchInProgress'))).toEqual([
      { type: 'Warning', reason: 'KeyChangeRefused', message: 'no' },
    ]);
    expect(keySwitchEvents(adding, adding, 'no', withCondition('KeyChangeRefused', 'no'))).toEqual([]);
  });
});
