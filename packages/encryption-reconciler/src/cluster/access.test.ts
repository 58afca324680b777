import { describe, expect, it } from 'vitest';
import { kdcClusterSpecSchema } from '@kdc/shared';
import { resolveKeyRefs } from '@kdc/shared';
import { desiredAccess, roleMatches } from './access.ts';

const spec = (etcd: Record<string, unknown>, backup?: Record<string, unknown>) =>
  kdcClusterSpecSchema.parse({
    version: 'v1.35.0',
    encryption: { etcd: { enabled: true, ...etcd } },
    ...(backup ? { backup } : {}),
  });

describe('resolveKeyRefs', () => {
  it.each([
    [spec({}), { etcd: 'prod-etcd', backup: 'prod-etcd' }],
    [spec({ keyRef: 'shared' }), { etcd: 'shared', backup: 'shared' }],
    [spec({ keyRef: 'shared', backup: { keyRef: 'vault-b' } }), { etcd: 'shared', backup: 'vault-b' }],
  ])('%#', (s, refs) => expect(resolveKeyRefs('prod', s)).toEqual(refs));
});

describe('desiredAccess', () => {
  it('binds the plugin role to the plugin SA in the project namespace, audience openbao, its own policy', () => {
    const access = desiredAccess('acme-shop', 'prod', spec({}), {
      etcd: 'acme-shop.prod-etcd',
      backup: 'acme-shop.prod-etcd',
    });
    expect(access.policies.map((p) => p.name)).toEqual(['tcp-acme-shop.prod', 'backup-acme-shop.prod']);
    expect(access.roles[0]).toEqual({
      name: 'tcp-acme-shop.prod',
      body: {
        bound_service_account_names: ['prod-kms-plugin'],
        bound_service_account_namespaces: ['acme-shop'],
        audience: 'openbao',
        token_policies: ['tcp-acme-shop.prod'],
        token_ttl: 3600,
        token_max_ttl: 86400,
      },
    });
    expect(access.policies[0]!.rules.map((r) => r.path)).toEqual([
      'transit/encrypt/acme-shop.prod-etcd',
      'transit/decrypt/acme-shop.prod-etcd',
      'transit/keys/acme-shop.prod-etcd',
      'auth/token/lookup-self',
    ]);
  });
  it('grants both keys while a key switch runs both plugin instances, and proves the one that will write', () => {
    const access = desiredAccess('ns', 'c', spec({ keyRef: 'k2' }), {
      etcd: 'ns.k2',
      etcdGrants: ['ns.k1', 'ns.k2'],
      backup: 'ns.k2',
    });
    expect(access.etcdTransitKey).toBe('ns.k2');
    expect(access.policies[0]!.rules.map((r) => r.path)).toEqual([
      'transit/encrypt/ns.k1',
      'transit/decrypt/ns.k1',
      'transit/keys/ns.k1',
      'transit/encrypt/ns.k2',
      'transit/decrypt/ns.k2',
      'transit/keys/ns.k2',
      'auth/token/lookup-self',
    ]);
  });
  it('has no backup writer when backups are off', () => {
    expect(
      desiredAccess('ns', 'c', spec({}, { enabled: false }), { etcd: 'ns.c-etcd', backup: 'ns.c-etcd' }).roles.map(
        (r) => r.name,
      ),
    ).toEqual(['tcp-ns.c']);
  });
});

describe('roleMatches', () => {
  const desired = desiredAccess('ns', 'c', spec({}), { etcd: 'ns.c-etcd', backup: 'ns.c-etcd' }).roles[0]!.body;
  const echoed = {
    ...desired,
    bound_service_account_names: ['c-kms-plugin'],
    audience: 'openbao',
    token_type: 'default',
    alias_name_source: 'serviceaccount_uid',
    token_num_uses: 0,
  };
  it('ignores fields OpenBao adds', () => expect(roleMatches(echoed, desired)).toBe(true));
  it.each([
    [{ ...echoed, audience: 'other' }],
    [{ ...echoed, token_policies: ['tcp-ns.c', 'admin'] }],
    [{ ...echoed, bound_service_account_namespaces: ['*'] }],
    [{ ...echoed, token_ttl: 7200 }],
    [null],
  ])('detects drift %#', (actual) => expect(roleMatches(actual, desired)).toBe(false));
});
