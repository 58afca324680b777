import { LABELS, TCP_PATCH, clusterNames, type PluginSlot } from '@kdc/shared';
import { renderEncryptionConfiguration, type Providers } from './encryption-config.ts';

/** `<cluster>-encryption-config`: the EncryptionConfiguration file, and the OpenBao CA bundle if any. */
export function desiredSecretData(
  providers: Providers,
  caBundle: string | undefined,
  slots?: readonly PluginSlot[],
): Record<string, string> {
  return {
    [TCP_PATCH.encryptionConfigKey]: renderEncryptionConfiguration(providers, slots),
    ...(caBundle ? { [TCP_PATCH.caKey]: caBundle } : {}),
  };
}

export function buildEncryptionConfigSecret(namespace: string, cluster: string, data: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: clusterNames(cluster).encryptionConfigSecret,
      namespace,
      labels: { [LABELS.kdcCluster]: cluster },
    },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}
