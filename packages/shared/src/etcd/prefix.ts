// Where a tenant's rows live in its DataStore. Kamaji starts the tenant kube-apiserver with
// `--etcd-prefix=/<status.storage.setup.schema>` (internal/builders/controlplane/deployment.go);
// the schema is spec.dataStoreSchema, which Kamaji's defaulting webhook always fills on create:
// the TCP's UID since 26.7.4 (CVE-2026-62246), "<ns>_<name>" with '-' turned into '_' before.
// So the prefix is read from the object, never guessed from names: a guess would read the wrong
// rows (or none) and prove nothing.

const field = (value: unknown): string | undefined => {
  const trimmed = typeof value === 'string' ? value.replace(/^\/+|\/+$/g, '') : '';
  return trimmed || undefined;
};

/**
 * The etcd key prefix of a TenantControlPlane (as read from the API), with a trailing '/': what
 * Kamaji applied (status.storage.setup.schema), else what it will apply (spec.dataStoreSchema),
 * else null while Kamaji has set neither (no apiserver of that TCP has written anything yet).
 */
export function tenantEtcdPrefix(tcp: object | null | undefined): string | null {
  const { spec, status } = (tcp ?? {}) as {
    spec?: { dataStoreSchema?: unknown };
    status?: { storage?: { setup?: { schema?: unknown } } };
  };
  const schema = field(status?.storage?.setup?.schema) ?? field(spec?.dataStoreSchema);
  return schema === undefined ? null : `/${schema}/`;
}

/** Where the apiserver stores a resource under the tenant prefix: "<prefix><resource>/" (secrets, configmaps). */
export function resourcePrefix(tenantPrefix: string, resource: string): string {
  if (!tenantPrefix.startsWith('/') || !tenantPrefix.endsWith('/'))
    throw new Error(`tenant etcd prefix "${tenantPrefix}" must start and end with "/"`);
  if (!/^[a-z0-9.-]+$/.test(resource))
    throw new Error(`resource "${resource}" is not a plural resource name like "secrets"`);
  return `${tenantPrefix}${resource}/`;
}

/** The end of a prefix range for etcd: the prefix with its last byte incremented (carrying over 0xff). */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}
