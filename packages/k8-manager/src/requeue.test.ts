import { describe, expect, it } from 'vitest';
import { PENDING_RESYNC_MS, RESTORE_RESYNC_MS, requeueAfter, type RequeueInput } from './requeue.ts';

const OBSERVE = 30_000;
const base: RequeueInput = {
  restoreActive: false,
  enabled: true,
  forceDisabled: false,
  kmsPluginReady: false,
  controlPlaneReady: undefined,
  waitingForPreflight: false,
  migrationRequeueMs: undefined,
  statusWritten: false,
  observePeriodMs: OBSERVE,
};

describe('requeueAfter', () => {
  const cases: [string, Partial<RequeueInput>, number | undefined][] = [
    ['a running restore, whatever else', { restoreActive: true, kmsPluginReady: true }, RESTORE_RESYNC_MS],
    ['encryption off: the watches and the resync suffice', { enabled: false }, undefined],
    ['force-disabled: the warning repeats at the observe period', { enabled: false, forceDisabled: true }, OBSERVE],
    ['a step pending (no tenant observation): polled', {}, PENDING_RESYNC_MS],
    [
      'control plane Ready, plugin not yet: polled (pods are not watched)',
      { controlPlaneReady: true },
      PENDING_RESYNC_MS,
    ],
    ['control plane not Ready: no poll, its TCP watch brings it back', { controlPlaneReady: false }, undefined],
    [
      'control plane not Ready with a migration step paced: the pace, at most the observe period',
      { controlPlaneReady: false, migrationRequeueMs: 60_000 },
      OBSERVE,
    ],
    [
      'waiting for the pre-flight: no poll, the KdcCluster watch brings it back',
      { waitingForPreflight: true },
      undefined,
    ],
    ['plugin Ready: the observe period', { controlPlaneReady: true, kmsPluginReady: true }, OBSERVE],
    ['a migration step next, nothing written: at once', { controlPlaneReady: true, migrationRequeueMs: 0 }, 0],
    [
      'a migration step next after a status write: its watch event first',
      { controlPlaneReady: true, kmsPluginReady: true, migrationRequeueMs: 0, statusWritten: true },
      OBSERVE,
    ],
    [
      'a migration paced slower than the poll: the poll',
      { controlPlaneReady: true, migrationRequeueMs: 9_000 },
      PENDING_RESYNC_MS,
    ],
    [
      'a migration paced in between: its pace',
      { controlPlaneReady: true, kmsPluginReady: true, migrationRequeueMs: 1_000 },
      1_000,
    ],
  ];
  it.each(cases)('%s', (_, input, expected) => {
    expect(requeueAfter({ ...base, ...input }).requeueAfterMs).toBe(expected);
  });
});
