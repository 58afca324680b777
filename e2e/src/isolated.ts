import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, OPENBAO_K8S_AUTH_MOUNT, RESOURCES } from '@kdc/shared';
import { applyCrds, kamajiCrds, platformCrds } from './crds.ts';
import { startKubeApiserver, type KubeApiserver } from './kube-apiserver.ts';
import { configureKubernetesAuth, startOpenBao, type OpenBaoServer } from './openbao.ts';
import { createCA } from './pki.ts';
import { reviewerToken, type PlatformState } from './platform.ts';

/**
 * A management apiserver (on its own etcd prefix, with the CRDs and the controllers' namespace)
 * and, if asked, an OpenBao of its own with Kubernetes auth against it: for tests that stop,
 * stall or own these servers without disturbing the test files running beside them. `state` is
 * the platform with both swapped in, for the process starters.
 */
export interface IsolatedManagement {
  api: KubeApiserver;
  kube: KubeClient;
  bao?: OpenBaoServer;
  state: PlatformState;
  stop(): Promise<void>;
}

/**
 * `crds`: which CRDs it serves from the start; default ours and Kamaji's, as on a management
 * cluster (both controllers watch TenantControlPlanes). A test that installs ours with the chart
 * asks for Kamaji's alone.
 */
export async function isolatedManagement(
  p: PlatformState,
  name: string,
  options: { openbao?: boolean; crds?: { kdc?: boolean; kamaji?: boolean } } = {},
): Promise<IsolatedManagement> {
  const dir = join(p.dir, name);
  const logDir = join(p.logDir, name);
  mkdirSync(dir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const [api, bao] = await Promise.all([
    startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir,
      logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: `/${name}`,
      name: `${name}-management`,
    }),
    options.openbao
      ? startOpenBao({ binary: p.binaries.vault, dir, logDir, ca: createCA(join(dir, 'pki'), name) })
      : undefined,
  ]);
  const kube = KubeClient.fromFile(api.kubeconfig);
  await applyCrds(kube, [
    ...((options.crds?.kdc ?? true) ? platformCrds() : []),
    ...((options.crds?.kamaji ?? true) ? kamajiCrds() : []),
  ]);
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-dc-system' } });
  if (bao)
    await configureKubernetesAuth(bao, {
      mount: OPENBAO_K8S_AUTH_MOUNT,
      kubernetesHost: api.url,
      caPem: api.ca.certPem,
      reviewerJwt: await reviewerToken(kube),
    });
  const state: PlatformState = {
    ...p,
    management: {
      ...p.management,
      url: api.url,
      kubeconfig: api.kubeconfig,
      caPem: api.ca.certPem,
      serviceAccountIssuer: api.serviceAccountIssuer,
    },
    ...(bao
      ? { openbao: { ...p.openbao, url: bao.url, caPem: bao.caPem, rootToken: bao.rootToken, auditLog: bao.auditLog } }
      : {}),
  };
  return {
    api,
    kube,
    bao,
    state,
    stop: async () => {
      await api.stop();
      await bao?.stop();
    },
  };
}
