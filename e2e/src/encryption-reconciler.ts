import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KMS_PLUGIN_IMAGE } from './images.ts';
import { startControllerProcess, type ControllerProcess } from './controller-process.ts';
import type { PlatformState } from './platform.ts';

/** KdcClusters with this label are handled only by the instances their test starts. */
export const ISOLATED_LABEL = 'kdc-e2e/isolated';

const MAIN = fileURLToPath(new URL('../../packages/encryption-reconciler/src/main.ts', import.meta.url));

export type ReconcilerProcess = ControllerProcess;

/** Runs the real encryption-reconciler program against the platform. */
export async function startEncryptionReconciler(p: PlatformState, input: { name: string; leaseNamespace: string; env?: Record<string, string> }): Promise<ReconcilerProcess> {
  const caFile = join(p.dir, 'openbao-ca.pem');
  writeFileSync(caFile, p.openbao.caPem);
  return startControllerProcess(p, {
    name: input.name,
    main: MAIN,
    env: {
      OPENBAO_URL: p.openbao.url,
      OPENBAO_TOKEN: p.openbao.rootToken,
      OPENBAO_CA_BUNDLE: caFile,
      KMS_PLUGIN_IMAGE,
      POD_NAMESPACE: input.leaseNamespace,
      // Test processes share one Lease: whichever leads must behave the same, with test timings.
      RESYNC_PERIOD: '5s',
      KMSKEY_DELETION_COUNTDOWN: '20s',
      // Tests that need controllers with another configuration label their clusters isolated.
      CLUSTER_SELECTOR: `!${ISOLATED_LABEL}`,
      ...input.env,
    },
  });
}
