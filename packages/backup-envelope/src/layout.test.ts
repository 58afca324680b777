import { describe, expect, it } from 'vitest';
import { backupTimestamp, envelopePrefix, parseBackupKey } from './layout.ts';

const at = new Date('2026-03-04T05:06:07.890Z');

describe('backup layout', () => {
  it('names an envelope backup prefix', () => {
    expect(backupTimestamp(at)).toBe('20260304T050607Z');
    expect(envelopePrefix('prod', at)).toBe('prod/prod-20260304T050607Z/');
  });

  it('parses both layouts and round-trips', () => {
    expect(parseBackupKey(envelopePrefix('prod', at))).toEqual({
      kind: 'envelope',
      cluster: 'prod',
      createdAt: new Date('2026-03-04T05:06:07Z'),
    });
    expect(parseBackupKey('prod/prod-20260304T050607Z.db')).toMatchObject({ kind: 'plaintext', cluster: 'prod' });
  });

  it.each([
    'prod/other-20260304T050607Z/',
    'prod/prod-20260304T050607Z',
    'prod/prod-2026.db',
    '../prod/prod-20260304T050607Z/',
    'prod/prod-20261304T050607Z/',
  ])('refuses %s', (key) => {
    expect(parseBackupKey(key)).toBeNull();
  });
});
