import { describe, expect, it } from 'vitest';
import { parsePolicy } from '@kdc/shared';
import { backupWriterPolicyRules, kmsPluginPolicy, kmsPluginPolicyRules } from './policy.ts';

describe('kms plugin policy (SPEC 3.3)', () => {
  it('grants only encrypt/decrypt/read on its own key and lookup-self', () => {
    expect(kmsPluginPolicyRules('acme-shop.prod-etcd')).toEqual([
      { path: 'transit/encrypt/acme-shop.prod-etcd', capabilities: ['update'] },
      { path: 'transit/decrypt/acme-shop.prod-etcd', capabilities: ['update'] },
      { path: 'transit/keys/acme-shop.prod-etcd', capabilities: ['read'] },
      { path: 'auth/token/lookup-self', capabilities: ['read'] },
    ]);
  });

  it('never grants rotate, config, create, wildcards or another key', () => {
    const rules = parsePolicy(kmsPluginPolicy('acme-shop.prod-etcd'));
    for (const rule of rules) {
      expect(rule.path).not.toMatch(/rotate|config|\*|\+/);
      expect(rule.capabilities).not.toContain('create');
      expect(rule.capabilities).not.toContain('sudo');
    }
    expect(
      rules.filter((r) => r.path.startsWith('transit/')).every((r) => r.path.endsWith('/acme-shop.prod-etcd')),
    ).toBe(true);
  });
});

describe('backup writer policy', () => {
  it('adds datakey and rewrap, still without rotate', () => {
    const paths = backupWriterPolicyRules('acme-shop.prod-etcd').map((r) => r.path);
    expect(paths).toContain('transit/datakey/plaintext/acme-shop.prod-etcd');
    expect(paths).toContain('transit/rewrap/acme-shop.prod-etcd');
    expect(paths.some((p) => p.includes('rotate'))).toBe(false);
  });
});
