import { CORE, KubeClient, LABELS, TCP_PATCH, clusterNames, type KubeObject, type TenantControlPlane } from '@kdc/shared';
import type { TenantObservation } from './status.ts';

// The tenant side of a cluster, read the way an operator would check it: the TCP's status, the
// tenant apiserver's own KMS health check through the admin kubeconfig, the sidecar's readiness
// on the control-plane pods, and the key version the plugin publishes on its metrics port.

const ADMIN_KUBECONFIG_KEY = 'admin.conf';

interface Pod extends KubeObject {
  status?: { podIP?: string; initContainerStatuses?: { name: string; ready?: boolean }[] };
}

export interface TenantObserverOptions {
  /** Reads plugin metrics; the default fetches http://<podIP>:<port>/metrics. */
  fetchMetrics?: (podIP: string, port: number) => Promise<string>;
  timeoutMs?: number;
}

export function tenantObserver(management: KubeClient, options: TenantObserverOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 3000;
  const clients = new Map<string, { version: string; client: KubeClient }>();
  const fetchMetrics = options.fetchMetrics ?? (async (ip: string, port: number) => {
    const res = await fetch(`http://${ip}:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`metrics answered ${res.status}`);
    return res.text();
  });

  async function tenantClient(namespace: string, secretName: string): Promise<KubeClient | undefined> {
    const secret = await management.getOrNull<KubeObject & { data?: Record<string, string> }>(CORE('secrets', namespace, secretName));
    const encoded = secret?.data?.[ADMIN_KUBECONFIG_KEY];
    if (!secret || !encoded) return undefined;
    const key = `${namespace}/${secretName}`;
    const cached = clients.get(key);
    if (cached && cached.version === secret.metadata?.resourceVersion) return cached.client;
    const client = KubeClient.fromString(Buffer.from(encoded, 'base64').toString('utf8'));
    clients.set(key, { version: secret.metadata?.resourceVersion ?? '', client });
    return client;
  }

  return async function observe(namespace: string, cluster: string, tcp: TenantControlPlane): Promise<TenantObservation> {
    const status = tcp.status as { kubernetesResources?: { version?: { status?: string } }; kubeconfig?: { admin?: { secretName?: string } } } | undefined;
    if (status?.kubernetesResources?.version?.status !== 'Ready') {
      return { controlPlaneReady: false, problem: `TenantControlPlane ${tcp.metadata.name} is ${status?.kubernetesResources?.version?.status ?? 'not reporting yet'}` };
    }
    const observation: TenantObservation = { controlPlaneReady: true };
    const secretName = status.kubeconfig?.admin?.secretName;
    const client = secretName ? await tenantClient(namespace, secretName) : undefined;
    if (!client) return { ...observation, problem: 'the admin kubeconfig of the control plane is not available yet' };
    try {
      const answer = await client.request<string>('GET', '/readyz/kms-providers', { accept: 'text/plain', timeoutMs });
      observation.kmsProvidersHealthy = String(answer).trim() === 'ok';
    } catch (error) {
      observation.kmsProvidersHealthy = false;
      observation.problem = `the tenant apiserver reports its KMS provider unhealthy: ${(error as Error).message.slice(0, 200)}`;
    }
    const pods = await management.list<Pod>(CORE('pods', namespace), { labelSelector: `${LABELS.kamajiName}=${clusterNames(cluster).tenantControlPlane}` });
    if (pods.items.length) {
      const sidecars = pods.items.map((p) => p.status?.initContainerStatuses?.find((c) => c.name === TCP_PATCH.pluginContainer));
      observation.sidecarReady = sidecars.every((s) => s?.ready === true);
      if (!observation.sidecarReady) observation.problem ??= `the ${TCP_PATCH.pluginContainer} sidecar is not ready on every control-plane pod`;
      const ip = pods.items.find((p, i) => sidecars[i]?.ready && p.status?.podIP)?.status?.podIP;
      if (ip) {
        try {
          const match = /^kms_plugin_key_version (\d+)/m.exec(await fetchMetrics(ip, TCP_PATCH.pluginMetricsPort));
          if (match) observation.keyVersion = Number(match[1]);
        } catch {
          // The version is informative; readiness already says whether the plugin works.
        }
      }
    }
    return observation;
  };
}
