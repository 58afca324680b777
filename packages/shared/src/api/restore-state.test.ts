import { describe, expect, it } from 'vitest';
import { RESTORE_STATES, isRestoreFinished, type RestoreState } from './kdccluster.ts';

// A Record, so that a new state fails the typecheck here until it is put on one side of the line.
const FINISHED: Record<RestoreState, boolean> = {
  Validating: false,
  DrainingControlPlane: false,
  StoppingEtcd: false,
  RestoringSnapshot: false,
  StartingEtcd: false,
  StartingControlPlane: false,
  Succeeded: true,
  Failed: true,
};

describe('isRestoreFinished', () => {
  it.each<[string | undefined, boolean]>([
    ...RESTORE_STATES.map((state): [string, boolean] => [state, FINISHED[state]]),
    // Not taken up yet, or an annotation k8-manager never wrote: nothing has ended.
    [undefined, false],
    ['', false],
    ['Done', false],
  ])('%s -> %s', (state, finished) => {
    expect(isRestoreFinished(state)).toBe(finished);
  });
});
