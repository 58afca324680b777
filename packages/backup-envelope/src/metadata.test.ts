import { describe, expect, it } from 'vitest';
import { SAMPLE_V2 } from './metadata.fixture.ts';
import { ciphertextSizeFor } from './format/spec.ts';
import { parseMetadata, serializeMetadata, withWrappedDek, wrappedVersion } from './metadata.ts';

const valid = SAMPLE_V2;
const edit = (change: Record<string, unknown>) => serializeMetadata({ ...valid, ...change });
const code = (text: string) => {
  try {
    parseMetadata(text, 'prod/prod-20260304T050607Z/');
    return 'ok';
  } catch (error) {
    return `${(error as { code: string }).code}: ${(error as Error).message}`;
  }
};

describe('metadata.json', () => {
  it('round-trips a valid schemaVersion 2 document', () => {
    expect(parseMetadata(serializeMetadata(valid))).toEqual(valid);
    expect(wrappedVersion(valid)).toBe(2);
  });

  it('rewrap replaces only wrappedDek and transitKeyVersion, and the result still parses', () => {
    const next = withWrappedDek(valid, 'vault:v5:WFla', 5);
    expect(parseMetadata(serializeMetadata(next))).toEqual({
      ...valid,
      wrappedDek: 'vault:v5:WFla',
      transitKeyVersion: 5,
    });
  });

  it.each([
    ['not JSON', '{', /INVALID_METADATA: .*not valid JSON/],
    ['unknown schema', edit({ schemaVersion: 3 }), /UNSUPPORTED_FORMAT/],
    ['unknown algorithm', edit({ algorithm: 'ROT13' }), /UNSUPPORTED_FORMAT/],
    ['version disagrees with the wrapped key', edit({ transitKeyVersion: 3 }), /INVALID_METADATA: .*transitKeyVersion/],
    ['not a Transit ciphertext', edit({ wrappedDek: 'abc' }), /INVALID_METADATA: .*wrappedDek/],
    ['inconsistent sizes', edit({ ciphertextSize: 1 }), /INVALID_METADATA: .*ciphertextSize/],
    ['segment size out of range', edit({ segmentSize: 3 }), /INVALID_METADATA: .*segmentSize/],
    [
      'a segment larger than any writer makes (1 GiB)',
      edit({ segmentSize: 2 ** 30, ciphertextSize: ciphertextSizeFor(5_000_000, 2 ** 30) }),
      /INVALID_METADATA: .*"segmentSize": segment size 1073741824 is outside 16\.\.67108864/,
    ],
    [
      'more segments than the counter holds',
      edit({ segmentSize: 16, plaintextSize: 2 ** 38, ciphertextSize: ciphertextSizeFor(2 ** 38, 16) }),
      /INVALID_METADATA: .*"plaintextSize": 17179869184 segments of 16 bytes exceed/,
    ],
    [
      'a plaintext above the format limit',
      edit({ plaintextSize: 2 ** 41, ciphertextSize: ciphertextSizeFor(2 ** 41, 1 << 20) }),
      /INVALID_METADATA: .*"plaintextSize": plaintext size 2199023255552 is outside/,
    ],
    ['bad hash', edit({ etcdSnapshotSha256: 'xyz' }), /INVALID_METADATA/],
    ['missing source', edit({ source: undefined }), /INVALID_METADATA: .*source/],
    ['edited cluster', edit({ source: { cluster: 'other', namespace: 'ns' } }), /METADATA_ALTERED: .*source\.cluster/],
    ['edited createdAt', edit({ createdAt: '2026-03-04T05:06:08.890Z' }), /METADATA_ALTERED: .*createdAt/],
    ['edited transitKey', edit({ transitKey: 'other' }), /METADATA_ALTERED: .*transitKey/],
    ['edited kdf.info', edit({ kdf: { ...valid.kdf, info: 'x' } }), /METADATA_ALTERED: .*kdf\.info/],
  ])('refuses %s', (_name, text, expected) => {
    expect(code(text)).toMatch(expected);
  });

  it('reads the single-seal schemaVersion 1 document', () => {
    const v1 = {
      schemaVersion: 1,
      algorithm: 'AES-256-GCM',
      transitKey: 'k',
      wrappedDek: 'vault:v1:QUJD',
      createdAt: '2025-01-01T00:00:00Z',
      source: { cluster: 'prod' },
      etcdSnapshotSha256: 'C'.repeat(64),
    };
    expect(parseMetadata(JSON.stringify(v1))).toMatchObject({
      schemaVersion: 1,
      transitKeyVersion: 1,
      etcdSnapshotSha256: 'c'.repeat(64),
    });
    expect(code(JSON.stringify({ ...v1, algorithm: 'AES-128-CBC' }))).toMatch(/UNSUPPORTED_FORMAT/);
  });
});
