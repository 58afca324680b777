import { describe, expect, it } from 'vitest';
import {
  configuredKeys,
  grantedTransitKeys,
  keySwitchPhase,
  nextPluginKeys,
  preflightKey,
  refusedKeyChange,
  type NextKeysInput,
  type PluginKey,
} from './plugin-keys.ts';

const k1 = { keyRef: 'k1', transitKey: 'ns.k1' };
const k2 = { keyRef: 'k2', transitKey: 'ns.k2' };
const k3 = { keyRef: 'k3', transitKey: 'ns.k3' };
const steady: PluginKey[] = [{ slot: 'a', ...k1, mode: 'write' }];
const adding: PluginKey[] = [
  { slot: 'a', ...k1, mode: 'write' },
  { slot: 'b', ...k2, mode: 'incoming' },
];
const promoted: PluginKey[] = [
  { slot: 'b', ...k2, mode: 'write' },
  { slot: 'a', ...k1, mode: 'outgoing' },
];
const retiring: PluginKey[] = [
  { slot: 'b', ...k2, mode: 'write' },
  { slot: 'a', ...k1, mode: 'retiring' },
];
const done: PluginKey[] = [{ slot: 'b', ...k2, mode: 'write' }];
const input = (keys: PluginKey[], over: Partial<NextKeysInput> = {}): NextKeysInput => ({
  keys,
  desired: k2,
  migrating: false,
  rolledOut: false,
  proven: false,
  ...over,
});

describe('nextPluginKeys: one phase per call', () => {
  it.each<[string, NextKeysInput, PluginKey[]]>([
    ['first enable: slot a writes', input([], { desired: k1 }), steady],
    ['nothing resolved yet: nothing', input([], { desired: undefined }), []],
    ['steady, same key: unchanged', input(steady, { desired: k1, rolledOut: true, proven: true }), steady],
    ['steady, new key: added read-only in the other slot', input(steady), adding],
    ['steady, new key while a migration runs: unchanged', input(steady, { migrating: true }), steady],
    ['adding, not rolled out: unchanged', input(adding, { proven: true }), adding],
    ['adding, rolled out: promoted to write, the old one reads', input(adding, { rolledOut: true }), promoted],
    ['promoted, rows not proven: unchanged', input(promoted, { rolledOut: true, migrating: true }), promoted],
    [
      'promoted, proven: the old one leaves the config, still granted',
      input(promoted, { rolledOut: true, proven: true }),
      retiring,
    ],
    ['retiring, not rolled out: unchanged', input(retiring, { proven: true }), retiring],
    ['retiring, rolled out: the old key is gone', input(retiring, { rolledOut: true }), done],
    [
      'switch back from b to a',
      input(done, { desired: k1 }),
      [
        { slot: 'b', ...k2, mode: 'write' },
        { slot: 'a', ...k1, mode: 'incoming' },
      ],
    ],
    [
      'a third key while adding: refused, the switch to k2 goes on',
      input(adding, { desired: k3, rolledOut: true }),
      promoted,
    ],
    [
      'a third key while promoted: refused, the switch to k2 goes on',
      input(promoted, { desired: k3, proven: true }),
      retiring,
    ],
    [
      'a third key while retiring: the switch ends, then k3 is next',
      input(retiring, { desired: k3, rolledOut: true }),
      done,
    ],
  ])('%s', (_, i, expected) => {
    expect(nextPluginKeys(i)).toEqual(expected);
  });

  it('the phases', () => {
    expect([[], steady, adding, promoted, retiring, done].map(keySwitchPhase)).toEqual([
      'none',
      'steady',
      'adding',
      'promoted',
      'retiring',
      'steady',
    ]);
    expect(configuredKeys(retiring)).toEqual(done);
    expect(configuredKeys(promoted).map((k) => k.mode)).toEqual(['write', 'outgoing']);
  });
});

describe('refused key changes grant nothing', () => {
  it.each([
    [
      'steady, migration running',
      { keys: steady, desired: k2, migrating: true },
      /not applied while a migration/,
      ['ns.k1'],
    ],
    [
      'adding, third key',
      { keys: adding, desired: k3, migrating: false },
      /refused while the switch from KMSKey k1 to k2 runs \(adding\).*set keyRef back to k2/,
      ['ns.k1', 'ns.k2'],
    ],
    [
      'promoted, back to the old key',
      { keys: promoted, desired: k1, migrating: true },
      /refused while the switch from KMSKey k1 to k2 runs \(promoted\)/,
      ['ns.k2', 'ns.k1'],
    ],
  ])('%s', (_, i, message, grants) => {
    expect(refusedKeyChange(i)).toMatch(message);
    expect(grantedTransitKeys(i)).toEqual(grants);
    expect(preflightKey(i)?.keyRef).not.toBe(i.desired.keyRef);
  });

  it('an accepted change grants the new key before anything else happens (the pre-flight proves it)', () => {
    const i = { keys: steady, desired: k2, migrating: false };
    expect(refusedKeyChange(i)).toBeUndefined();
    expect(grantedTransitKeys(i)).toEqual(['ns.k1', 'ns.k2']);
    expect(preflightKey(i)).toEqual(k2);
    expect(grantedTransitKeys({ keys: retiring, desired: k2, migrating: false })).toEqual(['ns.k2', 'ns.k1']);
    expect(grantedTransitKeys({ keys: done, desired: k2, migrating: false })).toEqual(['ns.k2']);
  });
});
