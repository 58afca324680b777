import { describe, expect, it } from 'vitest';
import { KMS_STORED_PREFIX } from '@kdc/shared';
import { classifyRow, countRow, emptyCounts, versionOfKeyId } from './etcd-rows.ts';
import { encodeEncryptedObject } from './kms-proto.ts';

const ours = (keyID: string) => Buffer.concat([Buffer.from(KMS_STORED_PREFIX), encodeEncryptedObject({ encryptedData: Buffer.from('secret-bytes'), keyID, encryptedDEKSource: Buffer.alloc(32, 1), encryptedDEKSourceType: 1 })]);
const ID = (v: number) => `kdc1.v${v}.${'A'.repeat(32)}`;

describe('versionOfKeyId', () => {
  it.each([
    [ID(1), 1],
    [ID(42), 42],
    ['kdc1.v3.short', null],
    [`kdc2.v3.${'A'.repeat(32)}`, null],
    [`kdc1.v.${'A'.repeat(32)}`, null],
    ['', null],
  ])('%j -> %j', (id, v) => expect(versionOfKeyId(id)).toBe(v));
});

describe('classifyRow', () => {
  it.each([
    ['ours v2', ours(ID(2)), { kind: 'kms', version: 2 }],
    ['ours v7', ours(ID(7)), { kind: 'kms', version: 7 }],
    ['plaintext protobuf', Buffer.from('k8s\u0000\n\u000cv1\u0012\u0006Secret'), { kind: 'plaintext' }],
    ['plaintext json', Buffer.from('{"kind":"Secret"}'), { kind: 'plaintext' }],
    ['other kms provider', Buffer.from('k8s:enc:kms:v2:someone-else:xyz'), { kind: 'other-provider', provider: 'kms:v2:someone-else' }],
    ['aescbc', Buffer.from('k8s:enc:aescbc:v1:key1:xyz'), { kind: 'other-provider', provider: 'aescbc:v1:key1' }],
  ])('%s', (_name, value, expected) => expect(classifyRow(value)).toEqual(expected));

  it('our prefix with a foreign keyID or broken protobuf is unreadable', () => {
    expect(classifyRow(ours('not-ours'))).toMatchObject({ kind: 'unreadable', reason: expect.stringContaining('not kdc1.v<N>') });
    expect(classifyRow(Buffer.concat([Buffer.from(KMS_STORED_PREFIX), Buffer.from([0x12, 0x50])]))).toMatchObject({ kind: 'unreadable', reason: expect.stringContaining('does not decode') });
  });
});

describe('countRow', () => {
  it('counts rows per version and kind, keeping a few unreadable examples', () => {
    const counts = emptyCounts();
    countRow(counts, '/p/secrets/a', ours(ID(2)));
    countRow(counts, '/p/secrets/b', ours(ID(2)));
    countRow(counts, '/p/secrets/c', ours(ID(3)));
    countRow(counts, '/p/pods/d', Buffer.from('k8s\u0000x'));
    countRow(counts, '/p/secrets/e', Buffer.from('k8s:enc:aescbc:v1:k:x'));
    countRow(counts, '/p/secrets/f', ours('bad'));
    expect(counts).toEqual({ rows: 6, byVersion: { 2: 2, 3: 1 }, plaintext: 1, otherProviders: { 'aescbc:v1:k': 1 }, unreadable: 1, unreadableExamples: [expect.stringContaining('/p/secrets/f')] });
  });
});
