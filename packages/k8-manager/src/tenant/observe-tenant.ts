import {
  ANNOTATIONS,
  KMS_PLUGIN_CONTAINERS,
  LABELS,
  TenantApiClient,
  kmsPluginSlot,
  TenantKubeconfigError,
  TenantRequestError,
  clusterNames,
  controlPlaneUrl,
  parseTenantKubeconfig,
  podGet,
  type KubeClient,
  type KubeObject,
  type PluginSlot,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import type { ReplicaView } from '../migration/rollout.ts';

// The tenant side of a cluster, read the way an operator would check it: the TCP's status, the
// tenant apiserver's own KMS health check, the sidecar's readiness on the control-plane pods, and
// the key version the plugin publishes on its probe port.
//
// The admin kubeconfig Secret sits in the tenant's namespace, where the tenant can rewrite it, so
// only its inline CA and credentials are used (parseTenantKubeconfig: no exec, no files), and
// only towards the address Kamaji reports in the TCP status (which the tenant cannot write). What
// a tenant endpoint answers is never copied into status: only a status code or an error class.

export interface TenantObservation {
  /** TCP reports its control plane Ready. */
  controlPlaneReady: boolean;
  /** The tenant apiserver's /readyz/kms-providers answered ok. */
  kmsProvidersHealthy?: boolean;
  /** Every control-plane pod reports the kms-plugin sidecar ready. */
  sidecarReady?: boolean;
  /** Transit version behind the plugin's key_id (kms_plugin_key_version). */
  keyVersion?: number;
  /** Why the tenant side could not be observed, for the condition message. */
  problem?: string;
  /** The condition reason for `problem` when a more precise one than KMSPluginNotReady applies. */
  reason?: string;
  /** Each control-plane replica (config hash, sidecar, key_id): the migration waits for all of them. */
  replicas?: ReplicaView[];
  /** The tenant apiserver at the platform's address, with the admin credentials (re-writes go through it). */
  client?: TenantApiClient;
}

const ADMIN_KUBECONFIG_KEY = 'admin.conf';
const MAX_READYZ_BYTES = 16 * 1024;
const MAX_KEY_VERSION_BYTES = 32;
/** A key_id is at most 1 KiB (SPEC 4); ours are 45 bytes. */
const MAX_KEY_ID_BYTES = 1024;

interface Pod extends KubeObject {
  status?: { podIP?: string; initContainerStatuses?: { name: string; ready?: boolean }[] };
}

type TcpStatus = {
  controlPlaneEndpoint?: string;
  kubernetesResources?: { version?: { status?: string } };
  kubeconfig?: { admin?: { secretName?: string } };
};

export interface TenantObserverOptions {
  /** Reads the plugin's key version; the default asks http://<podIP>:<probe port>/key-version. */
  fetchKeyVersion?: (podIP: string, port: number) => Promise<number | undefined>;
  /** Reads the plugin's published key_id; the default asks http://<podIP>:<probe port>/key-id. */
  fetchKeyId?: (podIP: string, port: number) => Promise<string | undefined>;
  timeoutMs?: number;
}

type Client = { client: TenantApiClient } | { refused: string };

async function keyVersionFromProbePort(podIP: string, port: number, timeoutMs: number): Promise<number | undefined> {
  const host = podIP.includes(':') ? `[${podIP}]` : podIP;
  const answer = await podGet(new URL(`http://${host}:${port}/key-version`), {
    timeoutMs,
    maxBytes: MAX_KEY_VERSION_BYTES,
  });
  const match = answer.status === 200 ? /^(\d{1,9})\n?$/.exec(answer.body) : null;
  return match ? Number(match[1]) : undefined;
}

async function keyIdFromProbePort(podIP: string, port: number, timeoutMs: number): Promise<string | undefined> {
  const host = podIP.includes(':') ? `[${podIP}]` : podIP;
  const answer = await podGet(new URL(`http://${host}:${port}/key-id`), { timeoutMs, maxBytes: MAX_KEY_ID_BYTES });
  // Only a key_id of the shape kube-apiserver accepts is used (printable, no spaces).
  const match = answer.status === 200 ? /^([\x21-\x7e]{1,1024})\n?$/.exec(answer.body) : null;
  return match?.[1];
}

export function tenantObserver(management: KubeClient, options: TenantObserverOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 3000;
  const clients = new Map<string, { version: string; client: Client }>();
  const fetchKeyVersion =
    options.fetchKeyVersion ?? ((ip: string, port: number) => keyVersionFromProbePort(ip, port, timeoutMs));
  const fetchKeyId = options.fetchKeyId ?? ((ip: string, port: number) => keyIdFromProbePort(ip, port, timeoutMs));

  async function tenantClient(namespace: string, secretName: string, server: URL): Promise<Client | undefined> {
    const secret = await management.getOrNull<KubeObject & { data?: Record<string, string> }>(
      at(RESOURCES.secret, namespace, secretName),
    );
    const encoded = secret?.data?.[ADMIN_KUBECONFIG_KEY];
    if (!secret || !encoded) return undefined;
    const key = `${namespace}/${secretName}`;
    const version = `${secret.metadata?.resourceVersion ?? ''}@${server.host}`;
    const cached = clients.get(key);
    if (cached?.version === version) return cached.client;
    let client: Client;
    try {
      client = {
        client: new TenantApiClient(server, parseTenantKubeconfig(Buffer.from(encoded, 'base64').toString('utf8'))),
      };
    } catch (error) {
      if (!(error instanceof TenantKubeconfigError)) throw error;
      client = { refused: `the admin kubeconfig Secret ${secretName} is refused: ${error.message}` };
    }
    clients.set(key, { version, client });
    return client;
  }

  async function kmsProviders(
    client: TenantApiClient,
  ): Promise<Pick<TenantObservation, 'kmsProvidersHealthy' | 'problem' | 'reason'>> {
    try {
      const answer = await client.get('/readyz/kms-providers', {
        accept: 'text/plain',
        timeoutMs,
        maxBytes: MAX_READYZ_BYTES,
      });
      if (answer.status === 200 && answer.body.trim() === 'ok') return { kmsProvidersHealthy: true };
      return {
        kmsProvidersHealthy: false,
        problem: `the tenant apiserver reports its KMS provider unhealthy (/readyz/kms-providers answered HTTP ${answer.status})`,
      };
    } catch (error) {
      if (!(error instanceof TenantRequestError)) throw error;
      return {
        kmsProvidersHealthy: false,
        reason: 'TenantApiserverUnreachable',
        problem: `the tenant apiserver at ${client.server.host} could not be asked for its KMS health: ${error.message}`,
      };
    }
  }

  /** `writer`: the slot of the plugin instance that encrypts (a key switch runs two; plugin-keys.ts). */
  return async function observe(
    namespace: string,
    cluster: string,
    tcp: TenantControlPlane,
    writer: PluginSlot = 'a',
  ): Promise<TenantObservation> {
    const writerPlugin = kmsPluginSlot(writer);
    const status = tcp.status as TcpStatus | undefined;
    if (status?.kubernetesResources?.version?.status !== 'Ready') {
      return {
        controlPlaneReady: false,
        problem: `TenantControlPlane ${tcp.metadata.name} is ${status?.kubernetesResources?.version?.status ?? 'not reporting yet'}`,
      };
    }
    const observation: TenantObservation = { controlPlaneReady: true };
    const server = controlPlaneUrl(status.controlPlaneEndpoint);
    if (!server)
      return {
        ...observation,
        problem: `TenantControlPlane ${tcp.metadata.name} reports no usable status.controlPlaneEndpoint yet`,
      };
    const secretName = status.kubeconfig?.admin?.secretName;
    const client = secretName ? await tenantClient(namespace, secretName, server) : undefined;
    if (!client) return { ...observation, problem: 'the admin kubeconfig of the control plane is not available yet' };
    if ('refused' in client)
      return { ...observation, kmsProvidersHealthy: false, reason: 'TenantKubeconfigRefused', problem: client.refused };
    Object.assign(observation, await kmsProviders(client.client), { client: client.client });

    const pods = await management.list<Pod>(at(RESOURCES.pod, namespace), {
      labelSelector: `${LABELS.kamajiName}=${clusterNames(cluster).tenantControlPlane}`,
    });
    if (pods.items.length) {
      // Ready: the writer's sidecar, and every other plugin instance the pod runs (a key switch's reader).
      const sidecars = pods.items.map((p) => {
        const ours = p.status?.initContainerStatuses?.filter((c) => KMS_PLUGIN_CONTAINERS.includes(c.name)) ?? [];
        return { ready: ours.some((c) => c.name === writerPlugin.container) && ours.every((c) => c.ready === true) };
      });
      observation.sidecarReady = sidecars.every((s) => s.ready);
      if (!observation.sidecarReady)
        observation.problem ??= `the ${writerPlugin.container} sidecar is not ready on every control-plane pod`;
      const ip = pods.items.find((p, i) => sidecars[i]?.ready && p.status?.podIP)?.status?.podIP;
      if (ip) {
        try {
          observation.keyVersion = await fetchKeyVersion(ip, writerPlugin.probePort);
        } catch {
          // The version is informative; readiness already says whether the plugin works.
        }
      }
      // Each replica as the migration judges the rollout: its config hash, its sidecar, its key_id.
      observation.replicas = await Promise.all(
        pods.items.map(async (pod, i) => {
          const ready = sidecars[i]?.ready === true;
          let keyId: string | undefined;
          if (ready && pod.status?.podIP)
            keyId = await fetchKeyId(pod.status.podIP, writerPlugin.probePort).catch(() => undefined);
          return {
            pod: pod.metadata?.name ?? '',
            configHash: pod.metadata?.annotations?.[ANNOTATIONS.encryptionConfigHash],
            sidecarReady: ready,
            ...(keyId ? { keyId } : {}),
          };
        }),
      );
    }
    return observation;
  };
}
