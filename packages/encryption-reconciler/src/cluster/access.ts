import {
  clusterNames,
  openBaoAccessNames,
  resolveKeyRefs,
  OPENBAO_AUDIENCE,
  type KdcClusterSpec,
  type PolicyRule,
} from '@kdc/shared';
import { backupWriterPolicyRules, kmsPluginPolicyRules } from '../policy.ts';

// Desired OpenBao access for one KdcCluster (SPEC 3.3) as pure data: which policies and
// Kubernetes-auth roles must exist, with exactly which content.

export interface DesiredRole {
  name: string;
  body: {
    bound_service_account_names: string[];
    bound_service_account_namespaces: string[];
    audience: string;
    token_policies: string[];
    token_ttl: number;
    token_max_ttl: number;
  };
}

export interface DesiredAccess {
  policies: { name: string; rules: PolicyRule[] }[];
  roles: DesiredRole[];
  etcdKeyRef: string;
  backupKeyRef: string;
  /** The Transit key the plugin writes with once the current work is through (what the pre-flight proves). */
  etcdTransitKey: string;
  /** Every Transit key the plugin policy grants (two during a key switch), each proven this namespace's. */
  etcdGrants: string[];
  backupTransitKey: string;
}

export const TOKEN_TTL_SECONDS = 3600;
export const TOKEN_MAX_TTL_SECONDS = 86_400;

function role(name: string, serviceAccount: string, namespace: string, policy: string): DesiredRole {
  return {
    name,
    body: {
      bound_service_account_names: [serviceAccount],
      bound_service_account_namespaces: [namespace],
      audience: OPENBAO_AUDIENCE,
      token_policies: [policy],
      token_ttl: TOKEN_TTL_SECONDS,
      token_max_ttl: TOKEN_MAX_TTL_SECONDS,
    },
  };
}

export function desiredAccess(
  namespace: string,
  cluster: string,
  spec: KdcClusterSpec,
  transitKeys: { etcd: string; backup: string; etcdGrants?: readonly string[] },
): DesiredAccess {
  const grants = [...new Set([...(transitKeys.etcdGrants ?? []), transitKeys.etcd])];
  const names = clusterNames(cluster);
  const access = openBaoAccessNames(namespace, cluster);
  const keys = resolveKeyRefs(cluster, spec);
  const backupEnabled = spec.backup?.enabled ?? true;
  return {
    etcdKeyRef: keys.etcd,
    backupKeyRef: keys.backup,
    etcdTransitKey: transitKeys.etcd,
    etcdGrants: grants,
    backupTransitKey: transitKeys.backup,
    policies: [
      { name: access.pluginPolicy, rules: kmsPluginPolicyRules(grants) },
      ...(backupEnabled ? [{ name: access.backupPolicy, rules: backupWriterPolicyRules(transitKeys.backup) }] : []),
    ],
    roles: [
      role(access.pluginRole, names.kmsPluginServiceAccount, namespace, access.pluginPolicy),
      ...(backupEnabled ? [role(access.backupRole, names.backupServiceAccount, namespace, access.backupPolicy)] : []),
    ],
  };
}

/**
 * Whether a role as OpenBao returns it matches what we want. OpenBao echoes more fields than we
 * set (defaults); only ours are compared, and list order does not matter.
 */
export function roleMatches(actual: Record<string, unknown> | null, desired: DesiredRole['body']): boolean {
  if (!actual) return false;
  const sameSet = (a: unknown, b: string[]) =>
    Array.isArray(a) &&
    a.length === b.length &&
    (a as unknown[]).map(String).sort().join('\n') === [...b].sort().join('\n');
  const audience = Array.isArray(actual.audience)
    ? (actual.audience as unknown[]).join(',')
    : typeof actual.audience === 'string'
      ? actual.audience
      : '';
  return (
    sameSet(actual.bound_service_account_names, desired.bound_service_account_names) &&
    sameSet(actual.bound_service_account_namespaces, desired.bound_service_account_namespaces) &&
    sameSet(actual.token_policies, desired.token_policies) &&
    audience === desired.audience &&
    Number(actual.token_ttl) === desired.token_ttl &&
    Number(actual.token_max_ttl) === desired.token_max_ttl
  );
}
