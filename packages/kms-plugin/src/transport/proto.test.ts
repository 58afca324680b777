import { describe, expect, it } from 'vitest';
import { loadKmsV2, methodPaths } from './proto.ts';

describe('KMS v2 proto', () => {
  it('exposes exactly the three unary methods kube-apiserver calls', () => {
    expect(methodPaths().sort()).toEqual([
      '/v2.KeyManagementService/Decrypt',
      '/v2.KeyManagementService/Encrypt',
      '/v2.KeyManagementService/Status',
    ]);
    for (const method of Object.values(loadKmsV2().service)) {
      expect(method.requestStream).toBe(false);
      expect(method.responseStream).toBe(false);
    }
  });

  it('keeps the upstream field numbers (wire compatibility)', () => {
    const { definition } = loadKmsV2();
    const fields = (name: string) =>
      Object.fromEntries(
        (definition[`v2.${name}`] as unknown as { type: { field: { name: string; number: number }[] } }).type.field.map(
          (f) => [f.name, f.number],
        ),
      );
    expect(fields('StatusResponse')).toEqual({ version: 1, healthz: 2, key_id: 3 });
    expect(fields('DecryptRequest')).toEqual({ ciphertext: 1, uid: 2, key_id: 3, annotations: 4 });
    expect(fields('DecryptResponse')).toEqual({ plaintext: 1 });
    expect(fields('EncryptRequest')).toEqual({ plaintext: 1, uid: 2 });
    expect(fields('EncryptResponse')).toEqual({ ciphertext: 1, key_id: 2, annotations: 3 });
  });

  it('round-trips an EncryptResponse through the wire format', () => {
    const { service } = loadKmsV2();
    const encrypt = service.Encrypt!;
    const bytes = encrypt.responseSerialize({
      ciphertext: Buffer.from('vault:v1:abc'),
      key_id: 'kdc.1',
      annotations: { 'version.kdc.local': Buffer.from('1') },
    });
    expect(encrypt.responseDeserialize(bytes)).toEqual({
      ciphertext: Buffer.from('vault:v1:abc'),
      key_id: 'kdc.1',
      annotations: { 'version.kdc.local': Buffer.from('1') },
    });
  });
});
