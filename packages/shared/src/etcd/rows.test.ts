import { describe, expect, it } from 'vitest';
import { KMS_STORED_PREFIX } from '../names.ts';
import { encodeEncryptedObject } from './encrypted-object.ts';
import {
  classifyRow,
  coverageStatus,
  emptyTally,
  MAX_KEY_IDS,
  OTHER_KEY_IDS,
  tallyRow,
  versionOfKeyId,
  type RowClass,
} from './rows.ts';

const ID = (v: number, c = 'A') => `kdc2.v${v}.${c.repeat(32)}`;
const object = (keyID: string) =>
  encodeEncryptedObject({
    encryptedData: Buffer.from('ciphertext'),
    keyID,
    encryptedDEKSource: Buffer.alloc(32, 1),
    encryptedDEKSourceType: 1,
  });
const under = (provider: string, keyID: string) =>
  Buffer.concat([Buffer.from(`k8s:enc:kms:v2:${provider}:`), object(keyID)]);
const ours = (keyID: string) => Buffer.concat([Buffer.from(KMS_STORED_PREFIX), object(keyID)]);
const current = new Set([ID(3), ID(4, 'B')]);

describe('versionOfKeyId', () => {
  it.each([
    [ID(1), 1],
    [ID(42), 42],
    [`kdc2.v3.${'A'.repeat(32)}`, 3],
    ['kdc1.v3.short', null],
    [`kdc3.v3.${'A'.repeat(32)}`, null],
    [`kdc1.v3.${'A'.repeat(31)}=`, null],
    [`kdc1.v.${'A'.repeat(32)}`, null],
    [`kdc1.v1234567890.${'A'.repeat(32)}`, null],
    ['', null],
  ])('%j -> %j', (id, v) => expect(versionOfKeyId(id)).toBe(v));
});

describe('classifyRow', () => {
  it.each<[string, Buffer, RowClass]>([
    ['current key_id', ours(ID(3)), { kind: 'current', provider: 'kms:v2:kube-dc-kms-plugin', keyId: ID(3) }],
    [
      'the other current key_id (two replicas mid-rotation)',
      ours(ID(4, 'B')),
      { kind: 'current', provider: 'kms:v2:kube-dc-kms-plugin', keyId: ID(4, 'B') },
    ],
    [
      'older version of our form',
      ours(ID(2)),
      { kind: 'stale', provider: 'kms:v2:kube-dc-kms-plugin', keyId: ID(2), version: 2 },
    ],
    // The bug the full key_id fixes: same version as a current one, another key (or OpenBao URL).
    [
      'the earlier kdc1 form of the same version',
      ours(`kdc1.v3.${'A'.repeat(32)}`),
      { kind: 'stale', provider: 'kms:v2:kube-dc-kms-plugin', keyId: `kdc1.v3.${'A'.repeat(32)}`, version: 3 },
    ],
    [
      'same version, another hash',
      ours(ID(3, 'Z')),
      { kind: 'stale', provider: 'kms:v2:kube-dc-kms-plugin', keyId: ID(3, 'Z'), version: 3 },
    ],
    [
      'our provider, key_id not of our form',
      ours('arn:aws:kms:eu-west-1:1:key/x'),
      { kind: 'foreign', provider: 'kms:v2:kube-dc-kms-plugin', keyId: 'arn:aws:kms:eu-west-1:1:key/x' },
    ],
    [
      'another kms v2 provider, even with a current key_id',
      under('someone-else', ID(3)),
      { kind: 'foreign', provider: 'kms:v2:someone-else' },
    ],
    ['kms v1', Buffer.from('k8s:enc:kms:v1:old-plugin:xyz'), { kind: 'foreign', provider: 'kms:v1:old-plugin' }],
    ['aescbc', Buffer.from('k8s:enc:aescbc:v1:key1:xyz'), { kind: 'foreign', provider: 'aescbc:v1:key1' }],
    ['secretbox', Buffer.from('k8s:enc:secretbox:v1:k:xyz'), { kind: 'foreign', provider: 'secretbox:v1:k' }],
    [
      'kms v2 prefix without a provider name end',
      Buffer.from(`k8s:enc:kms:v2:${'x'.repeat(300)}`),
      { kind: 'foreign', provider: `kms:v2:${'x'.repeat(185)}` },
    ],
    ['plaintext protobuf', Buffer.from('k8s\u0000\n\u000cv1\u0012\u0006Secret'), { kind: 'plaintext' }],
    ['plaintext json', Buffer.from('{"kind":"Secret"}'), { kind: 'plaintext' }],
    ['empty value', Buffer.alloc(0), { kind: 'plaintext' }],
    ['a prefix cut short', Buffer.from('k8s:enc:kms'), { kind: 'foreign', provider: 'kms' }],
  ])('%s', (_name, value, expected) => expect(classifyRow(value, { current })).toEqual(expected));

  it.each<[string, Buffer, RegExp]>([
    [
      'broken protobuf',
      Buffer.concat([Buffer.from(KMS_STORED_PREFIX), Buffer.from([0x12, 0x50])]),
      /does not decode \(length 80 runs past the end\)/,
    ],
    [
      'no keyID',
      Buffer.concat([
        Buffer.from(KMS_STORED_PREFIX),
        encodeEncryptedObject({ encryptedData: Buffer.from('x'), keyID: '', encryptedDEKSource: Buffer.from('y') }),
      ]),
      /no keyID/,
    ],
    ['nothing after the prefix', Buffer.from(KMS_STORED_PREFIX), /no keyID/],
  ])('unreadable: %s', (_name, value, reason) => {
    expect(classifyRow(value, { current })).toEqual({
      kind: 'unreadable',
      provider: 'kms:v2:kube-dc-kms-plugin',
      reason: expect.stringMatching(reason),
    });
  });

  it('a second provider of ours (a key change runs two) is read when named', () => {
    const row = under('kube-dc-kms-plugin-next', ID(3));
    expect(classifyRow(row, { current }).kind).toBe('foreign');
    expect(classifyRow(row, { current, providers: ['kube-dc-kms-plugin', 'kube-dc-kms-plugin-next'] })).toEqual({
      kind: 'current',
      provider: 'kms:v2:kube-dc-kms-plugin-next',
      keyId: ID(3),
    });
  });

  it('nothing is current when no key_id is (a disable)', () => {
    expect(classifyRow(ours(ID(3)), { current: new Set() })).toMatchObject({ kind: 'stale', version: 3 });
  });
});

describe('tallyRow', () => {
  it('counts per kind, key_id, provider and resource, keeping a few unreadable examples', () => {
    const t = emptyTally();
    const rows: [string, string, Buffer][] = [
      ['secrets', '/p/secrets/a/1', ours(ID(3))],
      ['secrets', '/p/secrets/a/2', ours(ID(3))],
      ['secrets', '/p/secrets/a/3', ours(ID(2))],
      ['secrets', '/p/secrets/a/4', Buffer.from('k8s\u0000x')],
      ['configmaps', '/p/configmaps/a/1', Buffer.from('k8s:enc:aescbc:v1:k:x')],
      ['configmaps', '/p/configmaps/a/2', ours('not-ours')],
      ['configmaps', '/p/configmaps/a/3', Buffer.concat([Buffer.from(KMS_STORED_PREFIX), Buffer.from([0x12, 0x50])])],
    ];
    for (const [resource, key, value] of rows) tallyRow(t, resource, key, classifyRow(value, { current }));
    expect(t).toEqual({
      total: 7,
      current: 2,
      stale: 1,
      plaintext: 1,
      foreign: 2,
      unreadable: 1,
      byKeyId: { [ID(3)]: 2, [ID(2)]: 1, 'not-ours': 1 },
      otherProviders: { 'aescbc:v1:k': 1 },
      byResource: {
        secrets: { total: 4, current: 2, stale: 1, plaintext: 1, foreign: 0, unreadable: 0 },
        configmaps: { total: 3, current: 0, stale: 0, plaintext: 0, foreign: 2, unreadable: 1 },
      },
      unreadableExamples: [expect.stringMatching(/^\/p\/configmaps\/a\/3: EncryptedObject does not decode/)],
    });
  });

  it(`keeps at most ${MAX_KEY_IDS} distinct key_ids; the rest count under a label no pre-flight reads as a version`, () => {
    const t = emptyTally();
    for (let i = 1; i <= MAX_KEY_IDS + 5; i++)
      tallyRow(t, 'secrets', `/p/secrets/a/${i}`, { kind: 'stale', provider: 'kms:v2:x', keyId: ID(i), version: i });
    expect(Object.keys(t.byKeyId)).toHaveLength(MAX_KEY_IDS + 1);
    expect(t.byKeyId[OTHER_KEY_IDS]).toBe(5);
    expect(versionOfKeyId(OTHER_KEY_IDS)).toBeNull();
    expect(t.stale).toBe(MAX_KEY_IDS + 5);
  });
});

describe('coverageStatus', () => {
  it.each([
    [
      { total: 10, current: 10, stale: 0, plaintext: 0, foreign: 0, unreadable: 0 },
      { total: 10, current: 10, stale: 0, plaintext: 0 },
    ],
    // A foreign or unreadable row is not proven current: it must keep the migration from completing.
    [
      { total: 10, current: 6, stale: 1, plaintext: 1, foreign: 1, unreadable: 1 },
      { total: 10, current: 6, stale: 3, plaintext: 1 },
    ],
  ])('%j', (counts, expected) => {
    const status = coverageStatus(counts, '2026-01-01T00:00:00.000Z');
    expect(status).toEqual({ ...expected, scannedAt: '2026-01-01T00:00:00.000Z' });
    expect(status.current + status.stale + status.plaintext).toBe(status.total);
  });
});
