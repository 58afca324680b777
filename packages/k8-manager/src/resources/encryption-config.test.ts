import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildEncryptionConfiguration, contentHash, renderEncryptionConfiguration } from './encryption-config.ts';

describe('EncryptionConfiguration', () => {
  it('encrypts with kms v2 first and keeps identity to read old plaintext rows', () => {
    const config = buildEncryptionConfiguration(['secrets'], 'encrypt');
    expect(config.resources).toEqual([
      {
        resources: ['secrets'],
        providers: [{ kms: { apiVersion: 'v2', name: 'kube-dc-kms-plugin', endpoint: 'unix:///var/run/kmsplugin/kms.sock', timeout: '3s' } }, { identity: {} }],
      },
    ]);
  });

  it('puts identity first while the disable migration runs', () => {
    const providers = buildEncryptionConfiguration(['secrets', 'configmaps'], 'decrypt').resources[0]!.providers;
    expect(Object.keys(providers[0]!)).toEqual(['identity']);
    expect(Object.keys(providers[1]!)).toEqual(['kms']);
  });

  it('sorts resources so the same set renders the same bytes', () => {
    expect(renderEncryptionConfiguration(['secrets', 'configmaps'], 'encrypt')).toBe(renderEncryptionConfiguration(['configmaps', 'secrets'], 'encrypt'));
    expect(parse(renderEncryptionConfiguration(['secrets'], 'encrypt')).kind).toBe('EncryptionConfiguration');
  });

  it('hashes content independent of key order and sensitive to any change', () => {
    expect(contentHash({ a: '1', b: '2' })).toBe(contentHash({ b: '2', a: '1' }));
    expect(contentHash({ a: '1', b: '2' })).not.toBe(contentHash({ a: '1', b: '3' }));
    expect(contentHash({ ab: '' })).not.toBe(contentHash({ a: 'b' }));
  });
});
