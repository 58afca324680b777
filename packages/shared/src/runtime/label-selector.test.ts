import { describe, expect, it } from 'vitest';
import { LabelSelectorError, parseLabelSelector, shardLabels, type LabelSelector } from './label-selector.ts';

/** The apiserver's reading of a selector (labels.Selector.Matches): what the tests hold shardLabels to. */
function selectorMatches(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  return selector.requirements.every(({ key, operator, values }) => {
    const value = labels?.[key];
    switch (operator) {
      case 'exists':
        return value !== undefined;
      case 'notExists':
        return value === undefined;
      case 'in':
        return value !== undefined && values.includes(value);
      case 'notIn':
        return value === undefined || !values.includes(value);
    }
  });
}

describe('parseLabelSelector', () => {
  it.each([
    ['', [], []],
    ['shard=a', [{ key: 'shard', operator: 'in', values: ['a'] }], ['shard']],
    ['shard==a', [{ key: 'shard', operator: 'in', values: ['a'] }], ['shard']],
    ['shard != a', [{ key: 'shard', operator: 'notIn', values: ['a'] }], ['shard']],
    [
      'kdc.io/tier in (gold, silver),!legacy',
      [
        { key: 'kdc.io/tier', operator: 'in', values: ['gold', 'silver'] },
        { key: 'legacy', operator: 'notExists', values: [] },
      ],
      ['kdc.io/tier', 'legacy'],
    ],
    [
      'zone notin (a),zone',
      [
        { key: 'zone', operator: 'notIn', values: ['a'] },
        { key: 'zone', operator: 'exists', values: [] },
      ],
      ['zone'],
    ],
    ['empty=', [{ key: 'empty', operator: 'in', values: [''] }], ['empty']],
  ])('%j', (text, requirements, keys) => {
    const selector = parseLabelSelector(text);
    expect(selector.requirements).toEqual(requirements);
    expect(selector.keys).toEqual(keys);
    expect(selector.text).toBe(text.trim());
  });

  it.each([
    ['shard=a,', 'an empty requirement'],
    ['shard in (a', 'unbalanced parentheses'],
    ['shard in ((a))', 'unbalanced parentheses'],
    ['shard in ()', 'lists no values'],
    ['replicas>2', '< and > are not supported'],
    ['-shard=a', 'is not a label key'],
    ['Bad_Prefix.io/shard=a', 'is not a label key'],
    [`shard=${'x'.repeat(64)}`, 'is not a label value'],
    ['shard=a b', 'is not a label'],
  ])('refuses %j: %s', (text, message) => {
    expect(() => parseLabelSelector(text)).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector(text)).toThrow(message);
  });
});

describe('selectorMatches (the model the shardLabels test uses)', () => {
  it.each([
    ['shard=a', { shard: 'a' }, true],
    ['shard=a', { shard: 'b' }, false],
    ['shard=a', {}, false],
    ['shard!=a', {}, true],
    ['shard!=a', { shard: 'a' }, false],
    ['shard in (a,b)', { shard: 'b' }, true],
    ['shard notin (a,b)', { shard: 'c' }, true],
    ['shard', { shard: '' }, true],
    ['!shard', { shard: 'a' }, false],
    ['!shard', { other: 'a' }, true],
    ['', {}, true],
  ])('%j on %j: %s', (text, labels, expected) => {
    expect(selectorMatches(parseLabelSelector(text), labels)).toBe(expected);
  });
});

describe('shardLabels', () => {
  it('copies the value of each key the selector reads, null where the cluster has none', () => {
    expect(shardLabels(parseLabelSelector('shard=a,!legacy'), { shard: 'a', team: 'x' })).toEqual({
      legacy: null,
      shard: 'a',
    });
    expect(shardLabels(undefined, { shard: 'a' })).toEqual({});
  });

  it('an object labelled so is selected exactly when its cluster is, whatever labels it had', () => {
    const selectors = ['shard=a', 'shard!=a', 'shard in (a,b)', 'shard notin (b)', 'shard', '!shard', 'shard=a,tier'];
    const labelSets: Record<string, string>[] = [
      {},
      { shard: 'a' },
      { shard: 'b' },
      { shard: 'c', tier: 'x' },
      { tier: 'y' },
    ];
    let checked = 0;
    for (const text of selectors) {
      const selector = parseLabelSelector(text);
      for (const cluster of labelSets)
        for (const before of labelSets) {
          const after: Record<string, string> = { ...before, kamaji: 'keep' };
          for (const [key, value] of Object.entries(shardLabels(selector, cluster))) {
            if (value === null) delete after[key];
            else after[key] = value;
          }
          expect(selectorMatches(selector, after), `${text} cluster=${JSON.stringify(cluster)}`).toBe(
            selectorMatches(selector, cluster),
          );
          checked++;
        }
    }
    expect(checked).toBe(selectors.length * labelSets.length ** 2);
  });
});
