import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { MalformedMessageError, decodeSnapshotResponse } from './snapshot-response.ts';

// The reference encoder: protobufjs, from the same schema (test only; the job does not load it).
const definition = loadSync(fileURLToPath(new URL('./maintenance.proto', import.meta.url)), {
  keepCase: true,
  longs: Number,
});
const snapshot = definition['etcdserverpb.Maintenance'] as unknown as {
  Snapshot: { responseSerialize: (value: object) => Buffer };
};
const encode = (value: object) => snapshot.Snapshot.responseSerialize(value);

describe('decodeSnapshotResponse', () => {
  it.each([
    {
      name: 'the first message: header, remaining bytes, blob, version',
      value: {
        header: { cluster_id: 7, member_id: 9, revision: 123456, raft_term: 3 },
        remaining_bytes: 2 ** 40,
        blob: Buffer.from('bolt page'),
        version: '3.6.0',
      },
      expected: { revision: 123456, remainingBytes: 2 ** 40, blob: 'bolt page', version: '3.6.0' },
    },
    {
      name: 'a later message: blob only',
      value: { remaining_bytes: 32, blob: Buffer.alloc(32 * 1024, 1) },
      expected: { revision: undefined, remainingBytes: 32, blob: Buffer.alloc(32 * 1024, 1).toString(), version: '' },
    },
    {
      name: 'the last message: the SHA-256 and nothing left',
      value: { remaining_bytes: 0, blob: Buffer.alloc(32, 0xab) },
      expected: { revision: undefined, remainingBytes: 0, blob: Buffer.alloc(32, 0xab).toString(), version: '' },
    },
    {
      name: 'an empty message',
      value: {},
      expected: { revision: undefined, remainingBytes: 0, blob: '', version: '' },
    },
  ])('decodes what protobufjs encodes: $name', ({ value, expected }) => {
    const decoded = decodeSnapshotResponse(encode(value));
    expect({ ...decoded, blob: decoded.blob.toString() }).toEqual(expected);
  });

  it('returns the blob as a view of the message, not a copy', () => {
    const bytes = encode({ remaining_bytes: 1, blob: Buffer.from('abc') });
    const { blob } = decodeSnapshotResponse(bytes);
    expect(blob.buffer).toBe(bytes.buffer);
  });

  it('skips fields a newer etcd may add, of every wire type', () => {
    const known = encode({ remaining_bytes: 5, blob: Buffer.from('x'), version: 'v' });
    const unknown = Buffer.from([
      ...[0x48, 0x96, 0x01], // field 9, varint 150
      ...[0x55, 1, 2, 3, 4], // field 10, fixed32
      ...[0x59, 1, 2, 3, 4, 5, 6, 7, 8], // field 11, fixed64
      ...[0x62, 2, 0xff, 0xff], // field 12, 2 bytes
    ]);
    const decoded = decodeSnapshotResponse(Buffer.concat([unknown, known]));
    expect({ ...decoded, blob: decoded.blob.toString() }).toEqual({
      revision: undefined,
      remainingBytes: 5,
      blob: 'x',
      version: 'v',
    });
  });

  it.each([
    { name: 'a truncated varint', bytes: [0x10, 0x80], problem: 'at byte 2: a varint runs past the end' },
    {
      name: 'a blob longer than the message',
      bytes: [0x1a, 0x05, 1, 2],
      problem: 'a field of 5 bytes runs past the end',
    },
    { name: 'the blob as a varint', bytes: [0x18, 0x01], problem: 'blob has wire type 0, expected 2' },
    { name: 'remaining_bytes as bytes', bytes: [0x12, 0x00], problem: 'remaining_bytes has wire type 2, expected 0' },
    { name: 'a group (wire type 3)', bytes: [0x2b], problem: 'wire type 3 is not used by SnapshotResponse' },
    { name: 'field number 0', bytes: [0x02, 0x00], problem: 'field number 0' },
    {
      name: 'an 11-byte varint',
      bytes: [0x10, ...Array(10).fill(0xff), 0x01],
      problem: 'a varint is longer than 10 bytes',
    },
    {
      name: 'remaining_bytes over 2^53',
      bytes: [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
      problem: 'a number is larger than 2^53',
    },
    {
      name: 'a negative revision (int64 -1)',
      bytes: [0x0a, 0x0b, 0x18, ...Array(9).fill(0xff), 0x01],
      problem: 'malformed ResponseHeader from etcd',
    },
    { name: 'a truncated fixed64', bytes: [0x59, 1, 2, 3], problem: 'a fixed-size field runs past the end' },
  ])('refuses $name, saying what is wrong', ({ bytes, problem }) => {
    const decode = () => decodeSnapshotResponse(Buffer.from(bytes));
    expect(decode).toThrow(MalformedMessageError);
    expect(decode).toThrow(problem);
  });
});
