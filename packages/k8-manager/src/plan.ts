import { isDeepStrictEqual } from 'node:util';
import {
  clusterNames,
  configuredKeys,
  isAttached,
  kmsKeyTransitName,
  type Condition,
  type PluginKey,
  type KmsKeySpecInput,
  type TcpDeployment,
  type TenantControlPlane,
  type Validation,
} from '@kdc/shared';
import { contentHash } from './resources/encryption-config.ts';
import { buildEncryptionConfigSecret, desiredSecretData } from './resources/encryption-config-secret.ts';
import { autoKeyRotationDrift, buildAutoKey, desiredAutoKeySpec } from './resources/kms-key.ts';
import { buildPluginServiceAccount } from './resources/service-account.ts';
import { desiredProviders, disableComplete, type DesiredProviders, type ProviderState } from './migration/providers.ts';
import {
  buildEncryptionFields,
  buildTenantControlPlane,
  legacyOpenBaoUrls,
  mergeEncryptionFields,
  shardLabelDrift,
} from './resources/tenant-control-plane.ts';

// The next single change for one KdcCluster, as a pure function of what was observed. The
// reconciler executes it, folds the result into its observation and asks again until `done`
// (or `wait`/`invalid`), so each rule here is read and tested on its own.

export interface ObservedCluster {
  namespace: string;
  name: string;
  generation: number;
  validation: Validation;
  organization?: string;
  tcp: TenantControlPlane | null;
  /** The labels its release's CLUSTER_SELECTOR reads, as the cluster carries them (shardLabels): the TCP must match. */
  shardLabels?: Readonly<Record<string, string | null>>;
  /** `status.keyId` of the etcd KMSKey: the Transit key its controller resolved (a migrated key keeps a legacy name). */
  etcdKeyId?: string;
  /** The KMSKey named `<cluster>-etcd`, if any. */
  autoKey: { spec?: { rotation?: { enabled?: boolean; interval?: string } } } | null;
  serviceAccountExists: boolean;
  /** Decoded data of `<cluster>-encryption-config`, undefined when absent. */
  secretData: Record<string, string> | undefined;
  preflight: Condition | undefined;
  /** status.encryption's record of what the written config encrypts and decrypts. */
  providerState?: ProviderState;
  /** The plugin instances and their Transit keys (status.encryption.pluginKeys, see plugin-keys.ts); empty: the spec's key alone. */
  pluginKeys?: readonly PluginKey[];
}

export type ClusterAction =
  | { kind: 'invalid' }
  | { kind: 'createTenantControlPlane'; object: TenantControlPlane }
  | { kind: 'labelTenantControlPlane'; labels: Record<string, string | null> }
  | { kind: 'createKmsKey'; object: ReturnType<typeof buildAutoKey> }
  | { kind: 'updateKmsKeySpec'; spec: KmsKeySpecInput }
  | { kind: 'createServiceAccount'; object: ReturnType<typeof buildPluginServiceAccount> }
  | { kind: 'writeEncryptionConfig'; object: ReturnType<typeof buildEncryptionConfigSecret>; exists: boolean }
  | { kind: 'waitForPreflight'; message: string; failed: boolean }
  | { kind: 'patchTenantControlPlane'; deployment: TcpDeployment; change: 'attach' | 'update' | 'detach' }
  | { kind: 'done' };

export function planCluster(o: ObservedCluster): ClusterAction {
  const v = o.validation;
  if (!v.ok) return { kind: 'invalid' };
  if (!o.tcp)
    return {
      kind: 'createTenantControlPlane',
      object: buildTenantControlPlane(o.namespace, o.name, v.spec, o.shardLabels),
    };
  const labels = shardLabelDrift(o.tcp, o.shardLabels);
  if (labels) return { kind: 'labelTenantControlPlane', labels };
  const current = o.tcp.spec.controlPlane.deployment;

  if (!v.spec.encryption?.etcd.enabled) {
    if (isAttached(o.tcp) && v.forceDisable)
      return {
        kind: 'patchTenantControlPlane',
        deployment: mergeEncryptionFields(current, null, o.name),
        change: 'detach',
      };
    return { kind: 'done' };
  }

  const providers = providersOf(o)!;
  if (disableComplete(providers, v.spec.encryption.etcd.disableRequested === true)) {
    // Every row is proven plaintext: the plugin goes; enabled: false is accepted from then on.
    if (isAttached(o.tcp))
      return {
        kind: 'patchTenantControlPlane',
        deployment: mergeEncryptionFields(current, null, o.name),
        change: 'detach',
      };
    return { kind: 'done' };
  }

  const names = clusterNames(o.name);
  if (v.etcdKeyRef === names.autoEtcdKey) {
    if (!o.autoKey) return { kind: 'createKmsKey', object: buildAutoKey(o.namespace, o.name, v.spec) };
    if (autoKeyRotationDrift(o.autoKey.spec, v.spec))
      return { kind: 'updateKmsKeySpec', spec: desiredAutoKeySpec(v.spec) };
  }
  if (!o.serviceAccountExists)
    return { kind: 'createServiceAccount', object: buildPluginServiceAccount(o.namespace, o.name, o.shardLabels) };
  const platform = v.platform!;
  const plugins = configuredKeys(o.pluginKeys ?? []);
  const instances = plugins.length
    ? plugins
    : [{ slot: 'a' as const, transitKey: kmsKeyTransitName(o.namespace, v.etcdKeyRef!, o.etcdKeyId) }];
  const data = desiredSecretData(
    providers,
    platform.openBaoCaBundle,
    instances.map((p) => p.slot),
  );
  if (!isDeepStrictEqual(o.secretData, data)) {
    return {
      kind: 'writeEncryptionConfig',
      object: buildEncryptionConfigSecret(o.namespace, o.name, data),
      exists: o.secretData !== undefined,
    };
  }
  if (o.preflight?.status !== 'True' || o.preflight.observedGeneration !== o.generation) {
    const failed = o.preflight?.status === 'False';
    return {
      kind: 'waitForPreflight',
      failed,
      message: failed
        ? `KMS pre-flight failed: ${o.preflight!.message}`
        : 'waiting for the KMS pre-flight of the OpenBao policy and role',
    };
  }
  const fields = buildEncryptionFields({
    namespace: o.namespace,
    cluster: o.name,
    pluginImage: platform.kmsPluginImage,
    openBaoUrl: platform.openBaoUrl,
    legacyOpenBaoUrls: legacyOpenBaoUrls(current, platform.openBaoUrl),
    openBaoNamespace: o.organization,
    hasCaBundle: Boolean(platform.openBaoCaBundle),
    plugins: instances.map(({ slot, transitKey }) => ({ slot, transitKey })),
    configHash: contentHash(data),
  });
  const next = mergeEncryptionFields(current, fields, o.name);
  if (!isDeepStrictEqual(next, current ?? {}))
    return { kind: 'patchTenantControlPlane', deployment: next, change: isAttached(o.tcp) ? 'update' : 'attach' };
  return { kind: 'done' };
}

/** What the EncryptionConfiguration should encrypt and decrypt now (undefined: encryption is off or the spec refused). */
export function providersOf(
  o: Pick<ObservedCluster, 'validation' | 'tcp' | 'providerState'>,
): DesiredProviders | undefined {
  const v = o.validation;
  if (!v.ok || !v.spec.encryption?.etcd.enabled) return undefined;
  const etcd = v.spec.encryption.etcd;
  return desiredProviders({
    resources: etcd.resources,
    disableRequested: etcd.disableRequested === true,
    attached: o.tcp !== null && isAttached(o.tcp),
    state: o.providerState,
  });
}
