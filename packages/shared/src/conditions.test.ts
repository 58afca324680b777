import { describe, expect, it } from 'vitest';
import { findCondition, isConditionTrue, removeCondition, rfc3339, setCondition, setConditions } from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00.456Z');
const t1 = new Date('2026-01-01T01:00:00Z');

describe('setCondition', () => {
  it('adds a condition with a second-precision transition time', () => {
    const list = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting' }, t0);
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pending',
        message: 'waiting',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ]);
  });

  it('keeps lastTransitionTime when only reason or message change', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
    const second = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 3 },
      t1,
    );
    expect(second[0]).toMatchObject({
      reason: 'B',
      message: 'b',
      observedGeneration: 3,
      lastTransitionTime: rfc3339(t0),
    });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: '' }, t0);
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, t1);
    expect(second[0]!.lastTransitionTime).toBe(rfc3339(t1));
  });

  it('keeps the order of the other conditions and does not mutate its input', () => {
    const start = setConditions(
      [],
      [
        { type: 'A', status: 'True', reason: 'R', message: '' },
        { type: 'B', status: 'True', reason: 'R', message: '' },
      ],
      t0,
    );
    const frozen = structuredClone(start);
    const next = setCondition(start, { type: 'A', status: 'False', reason: 'R', message: '' }, t1);
    expect(next.map((c) => c.type)).toEqual(['A', 'B']);
    expect(start).toEqual(frozen);
  });

  it('finds, tests and removes', () => {
    const list = setCondition([], { type: 'Ready', status: 'True', reason: 'R', message: '' }, t0);
    expect(isConditionTrue(list, 'Ready')).toBe(true);
    expect(isConditionTrue(list, 'Other')).toBe(false);
    expect(findCondition(removeCondition(list, 'Ready'), 'Ready')).toBeUndefined();
  });
});
