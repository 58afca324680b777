import { describe, expect, it } from 'vitest';
import { OTHER_KEY_IDS } from '@kdc/shared/etcd';
import { rowCountsOf } from './etcd-rows.ts';

const ID = (form: 'kdc1' | 'kdc2', v: number, c = 'A') => `${form}.v${v}.${c.repeat(32)}`;
const scan = (extra: Partial<Parameters<typeof rowCountsOf>[0]>) => ({
  total: 0,
  plaintext: 0,
  unreadable: 0,
  byKeyId: {},
  otherProviders: {},
  unreadableExamples: [],
  ...extra,
});

describe('rowCountsOf', () => {
  it.each([
    [
      'versions of both forms add up',
      scan({ total: 6, plaintext: 1, byKeyId: { [ID('kdc2', 3)]: 2, [ID('kdc1', 3)]: 1, [ID('kdc2', 2, 'B')]: 2 } }),
      { rows: 6, byVersion: { 2: 2, 3: 3 }, plaintext: 1, unreadable: 0 },
    ],
    [
      'other providers are carried over',
      scan({ total: 2, byKeyId: { [ID('kdc2', 1)]: 1 }, otherProviders: { 'aescbc:v1:k': 1 } }),
      { rows: 2, byVersion: { 1: 1 }, otherProviders: { 'aescbc:v1:k': 1 } },
    ],
    [
      'unreadable rows stay unreadable',
      scan({ total: 1, unreadable: 1, unreadableExamples: ['/p/secrets/a: EncryptedObject does not decode'] }),
      { unreadable: 1, unreadableExamples: ['/p/secrets/a: EncryptedObject does not decode'] },
    ],
  ])('%s', (_name, input, expected) => expect(rowCountsOf(input)).toMatchObject(expected));

  it.each([
    ['a key_id not of our form under our provider', 'arn:aws:kms:x'],
    ['the overflow bucket of a store with too many key_ids', OTHER_KEY_IDS],
  ])('%s cannot be proven above the target: unreadable', (_name, keyId) => {
    const counts = rowCountsOf(scan({ total: 3, byKeyId: { [keyId]: 2, [ID('kdc2', 4)]: 1 } }));
    expect(counts).toMatchObject({ rows: 3, byVersion: { 4: 1 }, unreadable: 2 });
    expect(counts.unreadableExamples).toEqual([expect.stringContaining(`2 rows under key_id "${keyId.slice(0, 64)}"`)]);
  });
});
