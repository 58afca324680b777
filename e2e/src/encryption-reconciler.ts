import { fileURLToPath } from 'node:url';
import { startControllerProcess, type ControllerProcess } from './controller-process.ts';
import type { PlatformState } from './platform.ts';

/** KdcClusters with this label are handled only by the instances their test starts. */
export const ISOLATED_LABEL = 'kdc-e2e/isolated';

export const ENCRYPTION_RECONCILER_MAIN = fileURLToPath(new URL('../../packages/encryption-reconciler/src/main.ts', import.meta.url));

export type ReconcilerProcess = ControllerProcess;

/** Runs the real encryption-reconciler program against the platform. */
export async function startEncryptionReconciler(p: PlatformState, input: { name: string; leaseNamespace: string; env?: Record<string, string> }): Promise<ReconcilerProcess> {
  return startControllerProcess(p, {
    name: input.name,
    main: ENCRYPTION_RECONCILER_MAIN,
    identity: 'encryption-reconciler',
    leaseNamespace: input.leaseNamespace,
    env: {
      OPENBAO_TOKEN: p.openbao.rootToken,
      // Test processes share one Lease: whichever leads must behave the same, with test timings.
      RESYNC_PERIOD: '5s',
      KMSKEY_DELETION_COUNTDOWN: '20s',
      // The leader serves every test file's objects at once (hundreds in the steady-state tests);
      // the work is OpenBao round trips, so more workers keep one file from queueing behind another.
      WORKERS: '12',
      // Tests that need controllers with another configuration label their clusters isolated.
      CLUSTER_SELECTOR: `!${ISOLATED_LABEL}`,
      ...input.env,
    },
  });
}
