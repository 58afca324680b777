import { describe, expect, it } from 'vitest';
import { resolvePlatformConfig } from './platform-config.ts';

describe('resolvePlatformConfig (SPEC 7)', () => {
  it('takes everything from the environment', () => {
    expect(
      resolvePlatformConfig({
        KMS_PLUGIN_IMAGE: 'reg/kms:1',
        OPENBAO_URL: 'https://bao:8200',
        OPENBAO_CA_BUNDLE: 'PEM',
        S3_ENDPOINT: 'http://s3',
      }),
    ).toEqual({
      ok: true,
      config: {
        kmsPluginImage: 'reg/kms:1',
        openBaoUrl: 'https://bao:8200',
        openBaoCaBundle: 'PEM',
        s3Endpoint: 'http://s3',
      },
    });
  });

  it('reads the S3 endpoint allow-list', () => {
    expect(
      resolvePlatformConfig({
        KMS_PLUGIN_IMAGE: 'i',
        OPENBAO_URL: 'https://bao',
        S3_ENDPOINT_ALLOWLIST: ' https://a.example, http://b:9000 https://c ',
      }),
    ).toMatchObject({ ok: true, config: { s3EndpointAllowlist: ['https://a.example', 'http://b:9000', 'https://c'] } });
  });

  it('falls back to master-config keys', () => {
    const result = resolvePlatformConfig(
      { KMS_PLUGIN_IMAGE: 'reg/kms:1' },
      { enable_openbao: 'true', openbao_url: 'https://bao', openbao_ca_bundle: 'PEM' },
    );
    expect(result).toEqual({
      ok: true,
      config: { kmsPluginImage: 'reg/kms:1', openBaoUrl: 'https://bao', openBaoCaBundle: 'PEM' },
    });
  });

  it('takes an empty OPENBAO_URL as unset, so master-config still applies', () => {
    expect(
      resolvePlatformConfig({ KMS_PLUGIN_IMAGE: 'i', OPENBAO_URL: '' }, { openbao_url: 'https://bao' }),
    ).toMatchObject({ ok: true, config: { openBaoUrl: 'https://bao' } });
  });

  it.each([
    [{}, {}, ['OpenBaoURLMissing', 'KMSPluginImageMissing']],
    [{ KMS_PLUGIN_IMAGE: 'i' }, { enable_openbao: 'false', openbao_url: 'https://bao' }, ['OpenBaoDisabled']],
    [
      { KMS_PLUGIN_IMAGE: 'i', OPENBAO_ENABLED: 'false' },
      { enable_openbao: 'true', openbao_url: 'https://bao' },
      ['OpenBaoDisabled'],
    ],
    [{ KMS_PLUGIN_IMAGE: 'i', OPENBAO_URL: '' }, {}, ['OpenBaoURLMissing']],
    [{ KMS_PLUGIN_IMAGE: '  ', OPENBAO_URL: 'https://bao' }, {}, ['KMSPluginImageMissing']],
    [{ KMS_PLUGIN_IMAGE: 'i', OPENBAO_URL: 'bao:8200' }, {}, ['OpenBaoURLInvalid']],
  ])('env %j + master-config %j -> %j', (env, master, reasons) => {
    const result = resolvePlatformConfig(env, master);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.missing.map((m) => m.reason)).toEqual(reasons);
      for (const m of result.missing) expect(m.message).toMatch(/set|fix|ask/);
    }
  });
});
