import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OPENBAO_AUDIENCE,
  KubeClient,
  OpenBaoClient,
  clusterNames,
  openBaoAccessNames,
  transitKeyName,
  requestServiceAccountToken,
  at,
  RESOURCES,
} from '@kdc/shared';
import { writeClusterAccess } from './cluster-access.ts';
import { startKmsPlugin, writeKmsEncryptionConfig, type KmsPluginProcess } from './kms.ts';
import { startKubeApiserver, type KubeApiserver } from './kube-apiserver.ts';
import { randomBytes } from 'node:crypto';
import type { PlatformState } from './platform.ts';

export interface OpenBaoTarget {
  url: string;
  caPem: string;
  rootToken: string;
}

export interface KmsTenant {
  cluster: string;
  namespace: string;
  transitKey: string;
  role: string;
  dir: string;
  tokenFile: string;
  caFile: string;
  root: OpenBaoClient;
  plugin: KmsPluginProcess;
  apiserver: KubeApiserver;
  tenant: KubeClient;
  pluginArgs: string[];
  /** Mints a fresh projected-style token into tokenFile (kubelet's job in a pod). */
  refreshToken(): Promise<void>;
  restartPlugin(extraArgs?: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Everything a KMS-encrypted tenant needs, made the way the platform makes it (SPEC 3.3): a
 * Transit key, the least-privilege policy, the Kubernetes-auth role bound to the plugin's
 * ServiceAccount (audience openbao), the plugin on a socket, and a tenant kube-apiserver whose
 * kms v2 provider points at it.
 */
const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

export async function kmsTenant(
  p: PlatformState,
  input: { prefix: string; openbao?: OpenBaoTarget; pluginArgs?: string[]; role?: string; startApiserver?: boolean },
): Promise<KmsTenant> {
  const bao = input.openbao ?? { url: p.openbao.url, caPem: p.openbao.caPem, rootToken: p.openbao.rootToken };
  const root = new OpenBaoClient({ endpoint: bao.url, caBundle: bao.caPem, token: bao.rootToken, timeoutMs: 10_000 });
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  const namespace = unique(input.prefix);
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const cluster = unique('c');
  const names = clusterNames(cluster);
  const transitKey = transitKeyName(namespace, names.autoEtcdKey);
  await root.transit().createKey(transitKey, { type: 'aes256-gcm96', exportable: false });
  await writeClusterAccess(root, namespace, cluster, 'plugin');
  await kube.create(at(RESOURCES.serviceAccount, namespace), {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: names.kmsPluginServiceAccount },
  });

  const dir = join(p.dir, cluster);
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, 'openbao-token');
  const caFile = join(dir, 'openbao-ca.pem');
  writeFileSync(caFile, bao.caPem);
  const refreshToken = async () =>
    writeFileSync(
      tokenFile,
      await requestServiceAccountToken(kube, namespace, names.kmsPluginServiceAccount, [OPENBAO_AUDIENCE], 3600),
      { mode: 0o600 },
    );
  await refreshToken();

  const role = input.role ?? openBaoAccessNames(namespace, cluster).pluginRole;
  const pluginArgs = [
    `--openbao-addr=${bao.url}`,
    `--openbao-ca-file=${caFile}`,
    `--transit-key=${transitKey}`,
    '--auth-method=kubernetes',
    `--auth-role=${role}`,
    `--token-file=${tokenFile}`,
    '--health-interval=2s',
    '--health-stale-after=6s',
    ...(input.pluginArgs ?? []),
  ];
  let plugin = await startKmsPlugin({
    dir,
    logDir: p.logDir,
    name: `${cluster}-kms-plugin`,
    args: pluginArgs,
    waitHealthy: role === openBaoAccessNames(namespace, cluster).pluginRole,
  });

  let apiserver: KubeApiserver | undefined;
  if (input.startApiserver ?? true) {
    const configFile = join(dir, 'encryption-config.yaml');
    writeKmsEncryptionConfig(configFile, plugin.socket);
    apiserver = await startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: `/${cluster}`,
      name: `${cluster}-apiserver`,
      extraArgs: [`--encryption-provider-config=${configFile}`],
    });
  }
  return {
    cluster,
    namespace,
    transitKey,
    role,
    dir,
    tokenFile,
    caFile,
    root,
    pluginArgs,
    get plugin() {
      return plugin;
    },
    apiserver: apiserver!,
    tenant: apiserver ? KubeClient.fromFile(apiserver.kubeconfig) : (undefined as never),
    refreshToken,
    restartPlugin: async (extraArgs = []) => {
      await plugin.stop();
      plugin = await startKmsPlugin({
        dir,
        logDir: p.logDir,
        name: `${cluster}-kms-plugin`,
        args: [...pluginArgs, ...extraArgs],
      });
    },
    stop: async () => {
      await apiserver?.stop();
      await plugin.stop();
    },
  };
}

export const etcdKey = (tenant: KmsTenant, resource: string, namespace: string, name: string) =>
  `/${tenant.cluster}/${resource}/${namespace}/${name}`;
