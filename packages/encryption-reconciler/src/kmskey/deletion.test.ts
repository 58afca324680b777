import { describe, expect, it } from 'vitest';
import { planKmsKeyDeletion, type KmsKeyDeletionObservation } from './deletion.ts';

const obs = (o: Partial<KmsKeyDeletionObservation> = {}): KmsKeyDeletionObservation => ({
  hasFinalizer: true,
  deletionPolicy: 'retain',
  destructionRecorded: false,
  taskName: 'kdc-cleanup-key-u1',
  due: new Date('2026-02-01T00:00:00Z'),
  ...o,
});

describe('planKmsKeyDeletion', () => {
  it('retain: lets go at once, keeping the key', () =>
    expect(planKmsKeyDeletion(obs(), 'kube-dc-system')).toMatchObject({
      action: { kind: 'removeFinalizer' },
      event: { reason: 'KeyRetained' },
    }));
  it('schedule: records the destruction first, then lets go, saying how to cancel', () => {
    expect(planKmsKeyDeletion(obs({ deletionPolicy: 'schedule' }), 'kube-dc-system').action).toEqual({
      kind: 'recordDestruction',
    });
    expect(
      planKmsKeyDeletion(obs({ deletionPolicy: 'schedule', destructionRecorded: true }), 'kube-dc-system'),
    ).toMatchObject({
      action: { kind: 'removeFinalizer' },
      event: {
        type: 'Warning',
        reason: 'DeletionScheduled',
        message: expect.stringMatching(
          /2026-02-01T00:00:00.000Z.*kubectl -n kube-dc-system delete configmap kdc-cleanup-key-u1/,
        ),
      },
    });
  });
  it('without our finalizer: nothing to do', () =>
    expect(planKmsKeyDeletion(obs({ hasFinalizer: false }), 'ns').action).toEqual({ kind: 'none' }));
});
