import { LABELS, clusterNames } from '@kdc/shared';

/** `<cluster>-kms-plugin`: the TCP pods run as it, so their projected token is the plugin's identity. */
export function buildPluginServiceAccount(namespace: string, cluster: string) {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: clusterNames(cluster).kmsPluginServiceAccount,
      namespace,
      labels: { [LABELS.kdcCluster]: cluster },
    },
    // The plugin needs no Kubernetes API access; its token is only presented to OpenBao.
    automountServiceAccountToken: false,
  };
}
