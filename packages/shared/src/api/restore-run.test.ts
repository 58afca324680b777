import { describe, expect, it } from 'vitest';
import { restoreActive, restoreRun, type RestoreStatus } from './kdccluster.ts';

const A = 'web/web-20260101T000000Z/';
const B = 'web/web-20260102T000000Z/';
const ann = (from?: string, state?: string) => ({
  ...(from ? { 'kube-dc.com/restore-from': from } : {}),
  ...(state ? { 'kube-dc.com/restore-state': state } : {}),
});
const rec = (key: string, state: RestoreStatus['state']) => ({
  restore: { key, state, since: '2026-01-01T00:00:00Z' },
});

describe('restoreRun: the request is the annotation, the state is status.restore (finding 8)', () => {
  it.each([
    ['nothing requested', ann(), undefined, undefined],
    ['a new request', ann(A), undefined, { key: A, fresh: true }],
    [
      'a request that claims a state it never reached starts from scratch',
      ann(A, 'RestoringSnapshot'),
      undefined,
      { key: A, fresh: true },
    ],
    [
      'a running run goes on, whatever the annotation says',
      ann(A, 'Succeeded'),
      rec(A, 'StoppingEtcd'),
      { key: A, state: 'StoppingEtcd', fresh: false },
    ],
    [
      'a running run goes on when another key is asked for',
      ann(B),
      rec(A, 'RestoringSnapshot'),
      { key: A, state: 'RestoringSnapshot', fresh: false },
    ],
    [
      'a running run goes on when the request is removed',
      ann(),
      rec(A, 'StartingEtcd'),
      { key: A, state: 'StartingEtcd', fresh: false },
    ],
    [
      'a finished run stays finished while shown',
      ann(A, 'Failed'),
      rec(A, 'Failed'),
      { key: A, state: 'Failed', fresh: false },
    ],
    [
      'a finished run stays finished whatever state is shown',
      ann(A, 'Validating'),
      rec(A, 'Succeeded'),
      { key: A, state: 'Succeeded', fresh: false },
    ],
    ['the same key again once the shown state was removed', ann(A), rec(A, 'Succeeded'), { key: A, fresh: true }],
    ['another key after a finished run', ann(B, 'Succeeded'), rec(A, 'Succeeded'), { key: B, fresh: true }],
    [
      'a run an older controller finished is not run again',
      ann(A, 'Succeeded'),
      undefined,
      { key: A, state: 'Succeeded', fresh: false },
    ],
  ])('%s', (_, annotations, status, expected) => {
    const run = restoreRun(annotations, status);
    if (expected === undefined) expect(run).toBeUndefined();
    else expect(run).toMatchObject(expected);
  });

  it('is active until the run is Succeeded or Failed', () => {
    expect(restoreActive(restoreRun(ann(A), undefined))).toBe(true);
    expect(restoreActive(restoreRun(ann(), rec(A, 'StartingEtcd')))).toBe(true);
    expect(restoreActive(restoreRun(ann(A, 'Failed'), rec(A, 'Failed')))).toBe(false);
    expect(restoreActive(undefined)).toBe(false);
  });
});
