import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, isAlreadyExists, at, RESOURCES } from '@kdc/shared';
import { CHART_DIR, helmRun, imageValues } from './chart.ts';
import { controllerOpenBaoToken } from './encryption-reconciler.ts';
import type { ShippedImages } from './images.ts';
import type { PlatformState } from './platform.ts';

// The product installed the way docs/runbook.md tells an operator: the controller's OpenBao token
// in a Secret, then `helm install --wait` of our chart with every image pinned to the digest we
// built. The local runner (with `deployments: true`) then runs the two controllers from their images.

export const PRODUCT_NAMESPACE = 'kube-dc-system';

export interface ProductRelease {
  /** helm with this release's kubeconfig. */
  helm(...args: string[]): Promise<string>;
  /** The values it was installed with (`--set ...`), for an upgrade that keeps them. */
  values: string[];
}

export async function installProduct(input: {
  state: PlatformState;
  shipped: ShippedImages;
  /** Where the CA file goes. */
  dir: string;
  /** More `--set` values (test timings, replicas). */
  set?: Record<string, string>;
  release?: string;
}): Promise<ProductRelease> {
  const { state } = input;
  const kube = KubeClient.fromFile(state.management.kubeconfig);
  await kube
    .create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PRODUCT_NAMESPACE } })
    .catch((error: unknown) => {
      if (!isAlreadyExists(error)) throw error;
    });
  await kube.create(at(RESOURCES.secret, PRODUCT_NAMESPACE), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'kdc-openbao-token' },
    stringData: { token: await controllerOpenBaoToken(state) },
  });
  mkdirSync(input.dir, { recursive: true });
  const caFile = join(input.dir, 'openbao-ca.pem');
  writeFileSync(caFile, state.openbao.caPem);
  const set = {
    ...imageValues(input.shipped.built),
    'openBao.url': state.openbao.url,
    'openBao.tokenSecret.name': 'kdc-openbao-token',
    ...input.set,
  };
  const values = [
    ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
    '--set-file',
    `openBao.caBundle=${caFile}`,
  ];
  const helm = (...args: string[]) => helmRun(state.management.kubeconfig, args);
  await helm(
    'install',
    input.release ?? 'kdc',
    CHART_DIR,
    '-n',
    PRODUCT_NAMESPACE,
    '--wait',
    '--timeout',
    '5m',
    ...values,
  );
  return { helm, values };
}
