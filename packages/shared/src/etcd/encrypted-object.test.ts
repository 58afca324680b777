import { describe, expect, it } from 'vitest';
import { decodeEncryptedObject, encodeEncryptedObject } from './encrypted-object.ts';

const KEY_ID = 'kdc1.v2.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef';

// Written by hand from api.proto, byte by byte:
const VECTOR = Buffer.from(
  [
    '0a 03 01 02 03', // 1 encryptedData: 3 bytes
    `12 28 ${Buffer.from(KEY_ID).toString('hex')}`, // 2 keyID: 40 chars
    '1a 02 aa bb', // 3 encryptedDEKSource: 2 bytes
    '22 06 0a 01 78 12 01 79', // 4 annotations: {"x": "y"}
    '28 01', // 5 encryptedDEKSourceType: AES_GCM_KEY (1)
  ]
    .join(' ')
    .replace(/\s+/g, ''),
  'hex',
);

describe('decodeEncryptedObject', () => {
  it('reads the hand-made vector', () => {
    expect(decodeEncryptedObject(VECTOR)).toEqual({
      keyID: KEY_ID,
      encryptedDataLength: 3,
      encryptedDEKSourceLength: 2,
      encryptedDEKSourceType: 1,
      annotationKeys: ['x'],
    });
  });

  it('agrees with the test encoder, also for multi-byte lengths', () => {
    const encoded = encodeEncryptedObject({
      encryptedData: Buffer.alloc(300, 7),
      keyID: KEY_ID,
      encryptedDEKSource: Buffer.alloc(60, 1),
      annotations: { 'kms.kubernetes.io/a': Buffer.from('b') },
      encryptedDEKSourceType: 1,
    });
    expect(decodeEncryptedObject(encoded)).toEqual({
      keyID: KEY_ID,
      encryptedDataLength: 300,
      encryptedDEKSourceLength: 60,
      encryptedDEKSourceType: 1,
      annotationKeys: ['kms.kubernetes.io/a'],
    });
    expect(
      encodeEncryptedObject({
        encryptedData: Buffer.from([1, 2, 3]),
        keyID: KEY_ID,
        encryptedDEKSource: Buffer.from([0xaa, 0xbb]),
        annotations: { x: Buffer.from('y') },
        encryptedDEKSourceType: 1,
      }),
    ).toEqual(VECTOR);
  });

  it('skips unknown fields of every wire type', () => {
    const unknown = Buffer.from('3007' + '3d01020304' + '3901020304050607084204deadbeef', 'hex'); // 6 varint, 7 fixed32, 7 fixed64, 8 bytes
    expect(decodeEncryptedObject(Buffer.concat([unknown, VECTOR])).keyID).toBe(KEY_ID);
  });

  it.each([
    ['truncated length', VECTOR.subarray(0, 10), /runs past the end/],
    ['truncated varint', Buffer.from([0x28, 0x80]), /truncated varint/],
    ['wire type 3', Buffer.from([0x0b]), /unsupported wire type 3/],
    ['field 0', Buffer.from([0x02, 0x00]), /field number 0/],
    ['keyID not UTF-8', Buffer.from([0x12, 0x01, 0xff]), /not UTF-8/],
  ])('refuses %s', (_name, data, message) => {
    expect(() => decodeEncryptedObject(data)).toThrow(message);
  });

  it('an empty message has an empty keyID', () => {
    expect(decodeEncryptedObject(Buffer.alloc(0)).keyID).toBe('');
  });
});
