import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildEncryptionConfiguration, contentHash, renderEncryptionConfiguration } from './encryption-config.ts';

const KMS = {
  kms: { apiVersion: 'v2', name: 'kube-dc-kms-plugin', endpoint: 'unix:///var/run/kmsplugin/kms.sock', timeout: '3s' },
};

describe('EncryptionConfiguration', () => {
  it('encrypts with kms v2 first and keeps identity to read old plaintext rows', () => {
    expect(buildEncryptionConfiguration({ encrypt: ['secrets'], decrypt: [] }).resources).toEqual([
      { resources: ['secrets'], providers: [KMS, { identity: {} }] },
    ]);
  });

  it('puts identity first while the disable migration runs', () => {
    const config = buildEncryptionConfiguration({ encrypt: [], decrypt: ['secrets'] });
    expect(config.resources).toEqual([{ resources: ['secrets'], providers: [{ identity: {} }, KMS] }]);
  });

  it('a provider name per resource: one dropped from the spec is decrypted while the others stay encrypted', () => {
    const cm = { kms: { ...KMS.kms, name: 'kube-dc-kms-plugin-configmaps' } };
    expect(buildEncryptionConfiguration({ encrypt: ['secrets'], decrypt: ['configmaps'] }).resources).toEqual([
      { resources: ['secrets'], providers: [KMS, { identity: {} }] },
      { resources: ['configmaps'], providers: [{ identity: {} }, cm] },
    ]);
  });

  it('resources encrypted under one shared name stay in one entry, and never in two (kube-apiserver refuses a name twice)', () => {
    expect(
      buildEncryptionConfiguration({
        encrypt: ['secrets', 'configmaps'],
        decrypt: [],
        shared: ['configmaps', 'secrets'],
      }).resources,
    ).toEqual([{ resources: ['configmaps', 'secrets'], providers: [KMS, { identity: {} }] }]);
    expect(() =>
      buildEncryptionConfiguration({
        encrypt: ['secrets'],
        decrypt: ['configmaps'],
        shared: ['configmaps', 'secrets'],
      }),
    ).toThrow(/named in two entries/);
  });

  it('renders each distinct input once: the same text again, another text for other providers or slots, refusals every time', () => {
    const first = renderEncryptionConfiguration({ encrypt: ['secrets'], decrypt: ['configmaps'] }, ['a', 'b']);
    expect(renderEncryptionConfiguration({ encrypt: ['secrets'], decrypt: ['configmaps'] }, ['a', 'b'])).toBe(first);
    expect(renderEncryptionConfiguration({ encrypt: ['secrets'], decrypt: ['configmaps'] }, ['a'])).not.toBe(first);
    expect(renderEncryptionConfiguration({ encrypt: ['secrets', 'configmaps'], decrypt: [] }, ['a', 'b'])).not.toBe(
      first,
    );
    const clash = { encrypt: ['secrets'], decrypt: ['configmaps'], shared: ['configmaps', 'secrets'] };
    expect(() => renderEncryptionConfiguration(clash)).toThrow(/named in two entries/);
    expect(() => renderEncryptionConfiguration(clash)).toThrow(/named in two entries/);
  });

  it('renders an encrypt-only config byte for byte as before decrypting existed (no rollout on upgrade)', () => {
    expect(renderEncryptionConfiguration({ encrypt: ['secrets'], decrypt: [] })).toBe(
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - kms:\n          apiVersion: v2\n          name: kube-dc-kms-plugin\n          endpoint: unix:///var/run/kmsplugin/kms.sock\n          timeout: 3s\n      - identity: {}\n',
    );
  });

  it('a key switch: both plugin instances in every entry, the writer first, each under its own socket and names', () => {
    const b = (name: string) => ({ kms: { ...KMS.kms, name, endpoint: 'unix:///var/run/kmsplugin/kms-b.sock' } });
    const a = (name: string) => ({ kms: { ...KMS.kms, name } });
    expect(
      buildEncryptionConfiguration({ encrypt: ['secrets'], decrypt: ['configmaps'] }, ['b', 'a']).resources,
    ).toEqual([
      { resources: ['secrets'], providers: [b('kube-dc-kms-plugin-b'), a('kube-dc-kms-plugin'), { identity: {} }] },
      {
        resources: ['configmaps'],
        providers: [{ identity: {} }, b('kube-dc-kms-plugin-b-configmaps'), a('kube-dc-kms-plugin-configmaps')],
      },
    ]);
    expect(
      buildEncryptionConfiguration(
        { encrypt: ['configmaps', 'secrets'], decrypt: [], shared: ['configmaps', 'secrets'] },
        ['a', 'b'],
      ).resources,
    ).toEqual([
      {
        resources: ['configmaps', 'secrets'],
        providers: [a('kube-dc-kms-plugin'), b('kube-dc-kms-plugin-b'), { identity: {} }],
      },
    ]);
  });

  it('sorts resources so the same set renders the same bytes', () => {
    expect(renderEncryptionConfiguration({ encrypt: ['secrets', 'configmaps'], decrypt: [] })).toBe(
      renderEncryptionConfiguration({ encrypt: ['configmaps', 'secrets'], decrypt: [] }),
    );
    expect(parse(renderEncryptionConfiguration({ encrypt: ['secrets'], decrypt: [] })).kind).toBe(
      'EncryptionConfiguration',
    );
  });

  it('hashes content independent of key order and sensitive to any change', () => {
    expect(contentHash({ a: '1', b: '2' })).toBe(contentHash({ b: '2', a: '1' }));
    expect(contentHash({ a: '1', b: '2' })).not.toBe(contentHash({ a: '1', b: '3' }));
    expect(contentHash({ ab: '' })).not.toBe(contentHash({ a: 'b' }));
  });
});
