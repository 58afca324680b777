import { LABELS, clusterNames, presentShardLabels } from '@kdc/shared';

/**
 * `<cluster>-kms-plugin`: the TCP pods run as it, so their projected token is the plugin's identity.
 * `shard` (shardLabels): so that a sharded release's ServiceAccount cache sees it.
 */
export function buildPluginServiceAccount(
  namespace: string,
  cluster: string,
  shard: Readonly<Record<string, string | null>> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: clusterNames(cluster).kmsPluginServiceAccount,
      namespace,
      labels: { ...presentShardLabels(shard), [LABELS.kdcCluster]: cluster },
    },
    // The plugin needs no Kubernetes API access; its token is only presented to OpenBao.
    automountServiceAccountToken: false,
  };
}
